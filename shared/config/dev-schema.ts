/** Options of `leaderway dev` (the local cluster `npm start` runs). */
import type { Schema } from './load';

export const devSchema = {
  root_token: {
    doc: 'Root token of the dev cluster (default: a random one, printed at start).',
    format: String,
    default: '',
    env: 'LEADERWAY_DEV_ROOT_TOKEN',
    sensitive: true,
  },
  nodes: {
    doc: 'How many nodes to run (1-5).',
    format: 'nat',
    default: 3,
    env: 'LEADERWAY_DEV_NODES',
  },
  node_port: {
    doc: 'API port of the first node; node i listens on node_port + 10*i (its cluster port is the API port + 1).',
    format: 'port',
    default: 8200,
    env: 'LEADERWAY_DEV_NODE_PORT',
  },
  gateway_addr: {
    doc: 'Address of the gateway (the cluster’s entry point; every node’s api_addr).',
    format: 'host-port',
    default: '127.0.0.1:8300',
    env: 'LEADERWAY_DEV_GATEWAY_ADDR',
  },
  log_level: {
    doc: 'Log level of the nodes and the gateway.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'warn',
    env: 'LEADERWAY_LOG_LEVEL',
  },
} satisfies Schema;

export interface DevConfig {
  root_token: string;
  nodes: number;
  node_port: number;
  gateway_addr: string;
  log_level: string;
}
