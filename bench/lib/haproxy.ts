/**
 * HAProxy in front of the three nodes, configured as Vault's documentation recommends: every node
 * is a server, `option httpchk GET /v1/sys/health` with `http-check expect status 200` so only
 * the active node is "up", HAProxy's default check timing (`inter 2s fall 3 rise 2`), and TLS to
 * the nodes (`ssl verify none`). Runs in the foreground (-db) from a generated config.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { sleep } from './stats';

const HAPROXY_BIN = '/usr/sbin/haproxy';
/** Enough for 5,000 client connections plus backend ones; HAProxy needs ~2 fds per connection (ulimit -n is 20,000 here). */
const MAX_CONN = 8_000;
/** HAProxy gets this long to bind before we give up. */
const START_TIMEOUT_MS = 10_000;

/** A backend server; `options` replaces the default `check ssl verify none`. */
export interface HAProxyServer {
  name: string;
  port: number;
  options?: string;
}

/** A running HAProxy. */
export interface HAProxy {
  readonly url: string;
  readonly pid: number;
  readonly config: string;
  /** Server name → status (UP, DOWN, "UP 1/2", ...) from the stats socket. */
  serverStates(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** Vault's recommended health check: only the active node answers 200. */
export const ACTIVE_ONLY_CHECK = '/v1/sys/health';
/** Standbys answer 200 too (`standbyok`): round-robin over every unsealed node, for standby reads. */
export const STANDBY_OK_CHECK = '/v1/sys/health?standbyok=true';

/** The generated configuration (kept in the results so a reader can rerun it by hand). */
export function haproxyConfig(o: {
  port: number;
  socket: string;
  servers: HAProxyServer[];
  /** The health check's path (default ACTIVE_ONLY_CHECK); HAProxy's default balance is roundrobin. */
  healthCheck?: string;
}): string {
  return [
    'global',
    `  maxconn ${MAX_CONN}`,
    `  stats socket ${o.socket} mode 600 level admin`,
    '',
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '',
    'frontend vault_fe',
    `  bind 127.0.0.1:${o.port}`,
    '  default_backend vault',
    '',
    'backend vault',
    `  option httpchk GET ${o.healthCheck ?? ACTIVE_ONLY_CHECK}`,
    '  http-check expect status 200',
    ...o.servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} ${s.options ?? 'check ssl verify none'}`),
    '',
  ].join('\n');
}

function query(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let out = '';
    c.setTimeout(2_000, () => c.destroy(new Error('stats socket timeout')));
    c.on('connect', () => c.write(`${command}\n`));
    c.on('data', (d) => {
      out += d.toString();
    });
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

/** Starts HAProxy on `port` with the nodes' API ports. */
export async function startHAProxy(o: {
  dir: string;
  port: number;
  servers: HAProxyServer[];
  /** Distinguishes the files of a second HAProxy in the same directory. */
  tag?: string;
  healthCheck?: string;
}): Promise<HAProxy> {
  const tag = o.tag ?? 'haproxy';
  const socket = path.join(o.dir, `${tag}.sock`);
  const config = haproxyConfig({ port: o.port, socket, servers: o.servers, healthCheck: o.healthCheck });
  const cfgFile = path.join(o.dir, `${tag}.cfg`);
  writeFileSync(cfgFile, config);
  const child: ChildProcess = spawn(HAPROXY_BIN, ['-db', '-f', cfgFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    if (s) createInterface({ input: s }).on('line', (l) => lines.push(l));
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.once('exit', () => child.kill('SIGKILL'));
  const haproxy: HAProxy = {
    url: `http://127.0.0.1:${o.port}`,
    pid: child.pid ?? -1,
    config,
    async serverStates() {
      const csv = await query(socket, 'show stat');
      const rows = csv.split('\n').filter((l) => l && !l.startsWith('#'));
      const header = (csv.split('\n')[0] ?? '').replace(/^# /, '').split(',');
      const sv = header.indexOf('svname');
      const st = header.indexOf('status');
      const out: Record<string, string> = {};
      for (const r of rows) {
        const f = r.split(',');
        const name = f[sv] ?? '';
        if (name !== 'FRONTEND' && name !== 'BACKEND') out[name] = f[st] ?? '';
      }
      return out;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${lines.join('\n')}`);
    try {
      await haproxy.serverStates();
      return haproxy;
    } catch {
      if (Date.now() > deadline) {
        await haproxy.stop();
        throw new Error(`haproxy did not start:\n${lines.join('\n')}`);
      }
      await sleep(50);
    }
  }
}
