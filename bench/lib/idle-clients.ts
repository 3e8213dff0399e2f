/**
 * Many mostly idle keep-alive client connections: each sends one KV read on connect and then
 * one every `everyMs` (inside the gateway's 5 s keep-alive), so the connection stays open and
 * has carried real proxied requests, as a load balancer's or an idle SDK's would.
 */
import * as net from 'node:net';

export interface IdleClients {
  /** Connections currently open. */
  open(): number;
  /** Connections that closed or failed before stop(). */
  dropped(): number;
  /** The last socket error seen, if any (why connections dropped). */
  lastError(): string | undefined;
  stop(): void;
}

/** Pause between opening connections, so the ramp does not look like a SYN flood. */
const OPEN_BATCH = 100;

/** Opens `count` connections to `port` and keeps them alive until `stop()`. */
export async function openIdleClients(o: {
  port: number;
  count: number;
  path: string;
  token: string;
  everyMs: number;
}): Promise<IdleClients> {
  const request = `GET ${o.path} HTTP/1.1\r\nhost: 127.0.0.1:${o.port}\r\nx-vault-token: ${o.token}\r\n\r\n`;
  const sockets = new Set<net.Socket>();
  let dropped = 0;
  let lastError: string | undefined;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      const s = net.connect(o.port, '127.0.0.1');
      s.on('connect', () => {
        sockets.add(s);
        s.write(request);
        // Stagger the periodic requests over the interval: the first comes after a random part
        // of it (never more than `everyMs` after the connect request), then one every `everyMs`.
        const send = () => s.writable && s.write(request);
        const first = setTimeout(
          () => {
            send();
            timers.push(setInterval(send, o.everyMs));
          },
          (i * 37) % o.everyMs,
        );
        timers.push(first);
        resolve();
      });
      s.on('data', () => {});
      s.on('error', (err: NodeJS.ErrnoException) => {
        lastError = err.code ?? err.message;
      });
      s.on('close', () => {
        if (sockets.delete(s) && !stopping) dropped++;
        resolve();
      });
    });
  for (let i = 0; i < o.count; i += OPEN_BATCH) {
    await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, o.count - i) }, (_, j) => connectOne(i + j)));
  }
  return {
    open: () => sockets.size,
    dropped: () => dropped,
    lastError: () => lastError,
    stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}
