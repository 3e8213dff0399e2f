/**
 * Unauthenticated abuse, as issue 16 measured it, and a light client load beside it:
 *  - `hugeInits`: concurrent `PUT sys/init` with 32 MiB bodies (sent as fast as the server reads);
 *  - `slowBodies`: connections that declare a body and send it a byte at a time;
 *  - `lightReads`: a few clients reading one secret in a loop, every latency kept.
 * Shared by the security test (memory bound, service continues) and the bench (latency ratio).
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';

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
