/**
 * What stalled TLS handshakes leave behind in a process's memory, by allocator: a bare Node https
 * server (2 s handshake timeout, nothing of leaderway's) takes four rounds of 2,000 connections
 * that send the start of a ClientHello and stop; after each round, once all are closed and 6 s
 * have passed, its RSS is read. Run once with glibc's malloc and once with jemalloc preloaded as
 * the image does (Debian's libjemalloc2). It is why the Dockerfile preloads jemalloc.
 *
 *   node --import tsx bench/handshake-memory.ts
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stalledHandshakes } from '../test/helpers/abuse';
import { writeApiCert } from '../test/helpers/api-cert';

const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
/** As the Dockerfile sets it. */
const JEMALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0';
const ROUNDS = 4;
const PER_ROUND = 2_000;
const SETTLE_MS = 6_000;
const MIB = 1024 * 1024;

/** The server, run as a child: `node bench/handshake-memory.ts serve <cert> <key>`. */
function serve(certFile: string, keyFile: string): void {
  const https = require('node:https') as typeof import('node:https');
  const server = https.createServer(
    { cert: readFileSync(certFile), key: readFileSync(keyFile), handshakeTimeout: 2_000 },
    (_req, res) => res.end('ok'),
  );
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as net.AddressInfo).port));
}

const rss = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

async function measure(label: string, env: NodeJS.ProcessEnv, cert: { certFile: string; keyFile: string }) {
  const child = fork(__filename, ['serve', cert.certFile, cert.keyFile], {
    env: { ...process.env, ...env },
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((r) => child.once('message', (m) => r(m as number)));
  const pid = child.pid as number;
  const row = [`${(rss(pid) / MIB).toFixed(0)}`];
  for (let round = 0; round < ROUNDS; round++) {
    const closed = await stalledHandshakes(port, PER_ROUND);
    await Promise.all(closed);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    row.push((rss(pid) / MIB).toFixed(0));
  }
  child.kill();
  console.log(`| ${label} | ${row.join(' | ')} |`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lw-hs-'));
  try {
    const cert = await writeApiCert(dir);
    console.log(
      `| allocator | RSS MiB idle | ${Array.from({ length: ROUNDS }, (_, i) => `after round ${i + 1}`).join(' | ')} |`,
    );
    console.log(`| --- | --- | ${Array.from({ length: ROUNDS }, () => '---').join(' | ')} |`);
    await measure('glibc', {}, cert);
    if (existsSync(JEMALLOC))
      await measure('jemalloc', { LD_PRELOAD: JEMALLOC, MALLOC_CONF: JEMALLOC_CONF }, cert);
    else console.log(`(no ${JEMALLOC}: apt-get install libjemalloc2 for the second row)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') serve(process.argv[3] as string, process.argv[4] as string);
else void main();
