/**
 * Unauthenticated abuse, as issues 16 and 29 measured it, and a light client load beside it:
 *  - `hugeInits`: concurrent `PUT sys/init` with 32 MiB bodies (sent as fast as the server reads);
 *  - `slowBodies`: connections that declare a body and send it a byte at a time;
 *  - `heldBodies`: bodies sent whole but one byte short, then held (issue 29: 1 MiB each);
 *  - `slowLogins`: AppRole logins whose body trickles in (a node reads a login's body);
 *  - `lightReads`, `legitWrites`: a few clients reading one secret, or writing ~330-byte KV
 *    values and logging in, in a loop, every latency kept.
 * Shared by the security tests (memory bound, service continues, nothing leaks) and the bench
 * (latency ratios). `gatewayHoldings` reads what a gateway's requests hold from its metrics.
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { metricSum } from './http';

/** A running attack: `stop()` ends it and reports what the server answered. */
export interface Attack {
  stop(): Promise<{ statuses: number[]; errors: number }>;
}

/** `count` concurrent PUT sys/init, each with a `bytes`-long JSON body. */
export function hugeInits(baseUrl: string, count: number, bytes: number): Attack {
  const abort = new AbortController();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const body = () =>
    Readable.from(
      (function* () {
        yield Buffer.from('{"pad":"');
        const fill = bytes - 10;
        for (let sent = 0; sent < fill; sent += chunk.length)
          yield chunk.subarray(0, Math.min(chunk.length, fill - sent));
        yield Buffer.from('"}');
      })(),
    );
  const runs = Array.from({ length: count }, async () => {
    const r = await request(`${baseUrl}/v1/sys/init`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'content-length': String(bytes) },
      body: body(),
      signal: abort.signal,
    });
    await r.body.dump();
    return r.statusCode;
  });
  return {
    async stop() {
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([
        Promise.allSettled(runs),
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), 30_000);
        }),
      ]);
      clearTimeout(timer);
      abort.abort();
      const done = settled ?? (await Promise.allSettled(runs));
      return {
        statuses: done.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])),
        errors: done.filter((s) => s.status === 'rejected').length,
      };
    },
  };
}

/** `count` connections that each declare a `declared`-byte body and send one byte every `everyMs`. */
export async function slowBodies(
  port: number,
  count: number,
  declared = 4096,
  everyMs = 500,
): Promise<Attack> {
  const sockets: net.Socket[] = [];
  const statuses: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => errors++);
    s.on('data', (d: Buffer) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'));
      if (m) statuses.push(Number(m[1]));
    });
    await new Promise<void>((r) => {
      s.once('connect', () => r());
      s.once('error', () => r());
    });
    s.write(
      `POST /v1/secret/data/slow-${i} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
        `content-length: ${declared}\r\n\r\n{`,
    );
    sockets.push(s);
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (s.writable) s.write('"');
  }, everyMs);
  return {
    async stop() {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
      return { statuses, errors };
    },
  };
}

/** Opens a raw connection to 127.0.0.1:`port`, from `localAddress` (another loopback address) if given. */
async function connect(port: number, localAddress?: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => undefined);
  await new Promise<void>((r) => {
    s.once('connect', () => r());
    s.once('error', () => r());
  });
  return s;
}

/** Raw connections an attack holds open; `stop()` resets them all. */
export interface HeldConnections {
  readonly sockets: net.Socket[];
  stop(): void;
}

/** Header lines for `headers` (e.g. an X-Forwarded-For a trusted proxy would add). */
function headerLines(headers: Record<string, string> = {}): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

/**
 * `count` KV writes (no token) that declare `size` bytes and send all but the last, then hold
 * the connection: connection i comes from `addresses[i % n]` (loopback addresses: 127.0.0.2, ...).
 */
export async function heldBodies(
  port: number,
  count: number,
  o: { addresses?: string[]; size?: number; headers?: Record<string, string> } = {},
): Promise<HeldConnections> {
  const size = o.size ?? 1024 * 1024;
  const body = Buffer.alloc(size - 1, 0x61);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const s = await connect(port, o.addresses?.[i % o.addresses.length]);
    s.write(
      `POST /v1/secret/data/held-${i} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
        `${headerLines(o.headers)}content-length: ${size}\r\n\r\n`,
    );
    s.write(body);
    sockets.push(s);
  }
  return {
    sockets,
    stop() {
      for (const s of sockets) s.resetAndDestroy();
    },
  };
}

/**
 * `count` AppRole logins whose body trickles in, a byte every `everyMs`: with a length (a small
 * body the gateway reads whole before sending it on) or chunked (a body of unknown size, which
 * streams to the leader once its address has no room left in the replay budget).
 */
export async function slowLogins(
  port: number,
  count: number,
  o: { localAddress?: string; chunked?: boolean; headers?: Record<string, string>; everyMs?: number } = {},
): Promise<HeldConnections> {
  const sockets: net.Socket[] = [];
  const framing = o.chunked ? 'transfer-encoding: chunked\r\n' : 'content-length: 120\r\n';
  for (let i = 0; i < count; i++) {
    const s = await connect(port, o.localAddress);
    s.write(
      `POST /v1/auth/approle/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
        `${headerLines(o.headers)}${framing}\r\n${o.chunked ? '1\r\n{\r\n' : '{'}`,
    );
    sockets.push(s);
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (s.writable) s.write(o.chunked ? '1\r\n \r\n' : ' ');
  }, o.everyMs ?? 500);
  return {
    sockets,
    stop() {
      clearInterval(drip);
      for (const s of sockets) s.resetAndDestroy();
    },
  };
}

/** What a gateway's requests hold, from its metrics listener (see GatewayHoldings). */
export interface Holdings {
  replayBytes: number;
  bodiesReceiving: number;
  uploadsInUse: number;
  uploadsWaiting: number;
  poolInUse: number;
  poolWaiting: number;
}

/** Reads a gateway's holdings from `metricsUrl` (`http://host:port` of its metrics listener). */
export async function gatewayHoldings(metricsUrl: string): Promise<Holdings> {
  const r = await request(`${metricsUrl}/metrics`);
  const text = await r.body.text();
  const sum = (name: string, labels = '') => metricSum(text, name, labels);
  return {
    replayBytes: sum('leaderway_gateway_replay_bytes'),
    bodiesReceiving: sum('leaderway_gateway_bodies_receiving'),
    uploadsInUse: sum('leaderway_gateway_upload_places', 'state="in_use"'),
    uploadsWaiting: sum('leaderway_gateway_upload_places', 'state="waiting"'),
    poolInUse: sum('leaderway_gateway_leader_pool_places', 'state="in_use"'),
    poolWaiting: sum('leaderway_gateway_leader_pool_places', 'state="waiting"'),
  };
}

/** An AppRole identity a legitimate client logs in with. */
export interface AppRoleLogin {
  roleId: string;
  secretId: string;
}

/**
 * `clients` loops, each writing a ~330-byte KV value and then (with `login`) logging in with
 * AppRole, for `durationMs`, from `localAddress` if given; every latency (ms) and every failure.
 */
export async function legitWrites(
  baseUrl: string,
  token: string,
  durationMs: number,
  o: { clients?: number; localAddress?: string; login?: AppRoleLogin; headers?: Record<string, string> } = {},
): Promise<{ latencies: number[]; failures: string[] }> {
  const latencies: number[] = [];
  const failures: string[] = [];
  const dispatcher = o.localAddress ? new Agent({ connect: { localAddress: o.localAddress } }) : undefined;
  const end = performance.now() + durationMs;
  const value = 'v'.repeat(300);
  const one = async (path: string, headers: Record<string, string>, body: string) => {
    const t = performance.now();
    try {
      const r = await request(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...o.headers, ...headers },
        body,
        dispatcher,
      });
      const text = await r.body.text();
      if (r.statusCode !== 200) failures.push(`${path}: ${r.statusCode} ${text.slice(0, 120)}`);
      else latencies.push(performance.now() - t);
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message}`);
    }
  };
  await Promise.all(
    Array.from({ length: o.clients ?? 2 }, async (_, i) => {
      while (performance.now() < end) {
        await one(
          `/v1/secret/data/legit-${i}`,
          { 'x-vault-token': token },
          JSON.stringify({ data: { value } }),
        );
        if (o.login)
          await one(
            '/v1/auth/approle/login',
            {},
            JSON.stringify({ role_id: o.login.roleId, secret_id: o.login.secretId }),
          );
      }
    }),
  );
  await dispatcher?.close();
  return { latencies, failures };
}

/** `clients` loops reading `path` for `durationMs`; every latency (ms) and every failure. */
export async function lightReads(
  baseUrl: string,
  path: string,
  token: string,
  durationMs: number,
  clients = 4,
): Promise<{ latencies: number[]; failures: string[] }> {
  const latencies: number[] = [];
  const failures: string[] = [];
  const end = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const r = await request(`${baseUrl}${path}`, { headers: { 'x-vault-token': token } });
          await r.body.dump();
          if (r.statusCode !== 200) failures.push(`status ${r.statusCode}`);
          else latencies.push(performance.now() - t);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    }),
  );
  return { latencies, failures };
}

/** The `q` quantile of `xs` (nearest rank). */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

/** Resident set size of `pid` (bytes), from /proc. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb * 1024;
}

/** Samples `rssOf(pid)` every `everyMs` until `stop()`, which returns the peak. */
export function rssPeak(pid: number, everyMs = 50): { stop(): number } {
  let peak = rssOf(pid);
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      // The process exited: keep the peak seen.
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      return peak;
    },
  };
}

/** The first bytes of a TLS ClientHello record: enough to start a handshake, never to finish it. */
export const HELLO_START = Buffer.from([0x16, 0x03, 0x01]);

/** `count` connections to `port` that start a TLS handshake and stop; resolves each one's close. */
export async function stalledHandshakes(port: number, count: number): Promise<Array<Promise<void>>> {
  const closed: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    closed.push(new Promise((r) => s.once('close', () => r())));
    await new Promise((r) => s.once('connect', r));
    s.write(HELLO_START);
  }
  return closed;
}
