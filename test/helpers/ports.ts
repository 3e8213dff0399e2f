/**
 * Free loopback ports for test processes.
 *
 * Ports come from below the kernel's ephemeral range (32768–60999 on Linux): a port the kernel
 * hands out itself (`listen(0)`) is free only until some process makes an outgoing connection —
 * a node's or gateway's own Redis connection can take it between our check and its listen
 * (seen: a gateway failing with EADDRINUSE on the port it was given). Ports below the range are
 * never picked for outgoing connections.
 */
import * as net from 'node:net';

const LOW = 20_000;
const HIGH = 32_000;
/** Ports handed out by this process: never twice, even if the first taker has not listened yet. */
const handedOut = new Set<number>();

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port outside the ephemeral range that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1_000; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await tryListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${LOW}-${HIGH}`);
}

/** Distinct free ports (e.g. API and cluster). */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) out.push(await freePort());
  return out;
}
