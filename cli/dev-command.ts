/**
 * `leaderway dev`: a whole cluster in one process, for trying leaderway out — 3 nodes on one
 * in-memory HA store (each with its own API port and a real mTLS cluster listener) and a gateway
 * in front, every node's api_addr set to the gateway. Keys are random per run; nothing persists.
 * Metrics are where production has them: on metrics listeners (a node's API port + 2, the
 * gateway's port + 1), not on the API listeners, which answer an anonymous /metrics 403.
 */
import { randomBytes } from 'node:crypto';
import { GatewayServer } from '../gateway/gateway-server';
import { gatewaySettings } from '../gateway/settings';
import { newToken } from '../node/auth/token-store';
import { GatewayTrust } from '../node/ha/gateway-trust';
import { NodeServer } from '../node/node-server';
import { nodeSettings } from '../node/settings';
import { type DevConfig, devSchema } from '../shared/config/dev-schema';
import { formatHostPort, parseHostPort } from '../shared/config/formats';
import { type GatewayConfig, gatewaySchema } from '../shared/config/gateway-schema';
import { ConfigError, loadConfig } from '../shared/config/load';
import { type NodeConfig, nodeSchema } from '../shared/config/node-schema';
import { signingKeyFromSeed } from '../shared/crypto/signing';
import { InmemStore } from '../shared/storage/inmem';
import { openStorage } from '../shared/storage/open';
import { createLogger } from '../shared/telemetry/logger';
import { writeGatewayPki } from './gateway-pki';
import { type Closable, closeOnSignals, exitOnConfigError, reloadOnSighup } from './run';

export async function devCommand(): Promise<void> {
  let dev: DevConfig;
  try {
    dev = await loadConfig<DevConfig>(devSchema, { useConfigFile: false });
    if (dev.nodes < 1 || dev.nodes > 5) throw new ConfigError('nodes (LEADERWAY_DEV_NODES): must be 1 to 5');
  } catch (err) {
    exitOnConfigError(err);
  }
  const rootToken = dev.root_token || newToken();
  const sealKey = randomBytes(32).toString('base64');
  const adKey = randomBytes(32).toString('base64');
  const seed = randomBytes(32);
  const signingKey = seed.toString('base64');
  const verifyKey = signingKeyFromSeed(seed).publicRaw.toString('base64');
  // The gateway's client certificate and the CA the nodes trust it by, in a directory that goes
  // when the process does.
  const files = await writeGatewayPki('leaderway-dev-');
  const gw = parseHostPort(dev.gateway_addr);
  const gatewayUrl = `http://${dev.gateway_addr}`;
  const store = new InmemStore();
  const nodes: NodeServer[] = [];
  for (let i = 0; i < dev.nodes; i++) {
    const port = dev.node_port + 10 * i;
    const s = nodeSettings(
      await loadConfig<NodeConfig>(nodeSchema, {
        env: {},
        useConfigFile: false,
        overrides: {
          listener: { address: `127.0.0.1:${port}` },
          metrics_address: `127.0.0.1:${port + 2}`,
          storage: { type: 'inmem' },
          seal: { key: sealKey },
          advertisement_key: adKey,
          advertisement_signing_key: signingKey,
          gateway_ca_file: files.caFile,
          api_addr: gatewayUrl,
          cluster_addr: `https://127.0.0.1:${port + 1}`,
          node_id: `node-${i + 1}`,
          log_level: dev.log_level,
          lock_ttl: '2s',
          step_down_cooldown: '2s',
          shutdown_timeout: '2s',
        },
      }),
    );
    const storage = openStorage(s.storage, null, { lockCommandTimeoutMs: s.lockTtlMs / 3, inmem: store });
    const log = createLogger({ service: 'leaderway-node', nodeId: s.nodeId, level: s.logLevel });
    const gateways = s.gateways ? new GatewayTrust(s.gateways, log) : null;
    nodes.push(new NodeServer(s, { ...storage, log, gateways, devRootToken: rootToken }));
  }
  const gs = gatewaySettings(
    await loadConfig<GatewayConfig>(gatewaySchema, {
      env: {},
      useConfigFile: false,
      overrides: {
        listener: { address: dev.gateway_addr },
        metrics_address: gw ? formatHostPort({ host: gw.host, port: gw.port + 1 }) : '',
        advertisement_key: adKey,
        advertisement_verify_key: verifyKey,
        identity: { cert_file: files.certFile, key_file: files.keyFile },
        node_id: 'gateway',
        log_level: dev.log_level,
        drain_delay: '0s',
      },
    }),
  );
  const gwStorage = openStorage({ type: 'inmem', redisUrl: '', prefix: 'leaderway' }, null, {
    lockCommandTimeoutMs: 1000,
    inmem: store,
  });
  const gateway = new GatewayServer(gs, {
    ...gwStorage,
    log: createLogger({ service: 'leaderway-gateway', nodeId: 'gateway', level: dev.log_level }),
  });
  const parts: Closable[] = [gateway, ...nodes];
  reloadOnSighup([...nodes, gateway]);
  closeOnSignals(parts, () => process.stdout.write('\nleaderway dev: shutting down\n'));
  for (const n of nodes) await n.start();
  await gateway.start();
  const leader = await gateway.watcher.waitFor(10_000);
  const lines = [
    '',
    '==> leaderway dev cluster is running (in-memory storage: nothing is kept after exit)',
    '',
    `    Gateway:    ${gatewayUrl}   <- point clients here`,
    ...nodes.map(
      (n, i) =>
        `    Node ${i + 1}:     http://${formatHostPort(n.address())}${leader?.ad.node_id === `node-${i + 1}` ? '   (active)' : '   (standby)'}`,
    ),
    `    Root token: ${rootToken}`,
    '',
    '    Metrics (Prometheus text, no token):',
    ...[
      ['gateway', gateway.metricsAddress()] as const,
      ...nodes.map((n, i) => [`node ${i + 1}`, n.metricsAddress()] as const),
    ].map(([name, a]) => `      ${`${name}:`.padEnd(9)} http://${a ? formatHostPort(a) : '?'}/metrics`),
    '',
    '    Try:',
    `      export VAULT_ADDR=${gatewayUrl} VAULT_TOKEN=${rootToken}`,
    `      curl -s -H "X-Vault-Token: $VAULT_TOKEN" -X POST -d '{"data":{"password":"s3cr3t"}}' $VAULT_ADDR/v1/secret/data/app`,
    `      curl -s -H "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/secret/data/app`,
    `      curl -s $VAULT_ADDR/v1/sys/leader`,
    `      curl -s -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/sys/metrics?format=prometheus"`,
    '',
    '    Ctrl-C stops the cluster.',
    '',
  ];
  if (!gw) throw new Error('unreachable: gateway address validated by the schema');
  process.stdout.write(lines.join('\n'));
}
