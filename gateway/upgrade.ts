/**
 * WebSocket (and other Upgrade) requests are proxied to the leader too — upstream's standbys
 * could only 307 them (vault#20553). The 101 answer is relayed, then bytes flow both ways.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Leader } from '../shared/leader/leader-watcher';

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ errors: [message] });
  socket.end(
    `HTTP/1.1 ${status} ${status === 503 ? 'Service Unavailable' : 'Bad Gateway'}\r\ncontent-type: application/json\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Relays one upgrade to `leader`; refuses with 503 when there is none. */
export async function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  leader: Leader | null,
  forwarded: string[],
): Promise<void> {
  if (!leader?.client) {
    refuse(socket, 503, 'no active node to upgrade to');
    return;
  }
  // Upgrade and Connection are hop-by-hop, so upstreamHeaders dropped them; an upgrade needs them.
  const headers = [
    ...forwarded,
    'connection',
    'upgrade',
    'upgrade',
    String(req.headers.upgrade ?? 'websocket'),
  ];
  let upstream: { headers: Record<string, string | string[] | undefined>; socket: Duplex };
  try {
    upstream = (await leader.client.pool.upgrade({
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers,
      protocol: String(req.headers.upgrade ?? 'websocket'),
    })) as unknown as typeof upstream;
  } catch {
    refuse(socket, 502, 'the leader refused the upgrade');
    return;
  }
  let response = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) response += `${k}: ${one}\r\n`;
  }
  socket.write(`${response}\r\n`);
  if (head.length > 0) upstream.socket.write(head);
  upstream.socket.pipe(socket);
  socket.pipe(upstream.socket);
  const destroyBoth = () => {
    socket.destroy();
    upstream.socket.destroy();
  };
  upstream.socket.once('error', destroyBoth);
  socket.once('error', destroyBoth);
  upstream.socket.once('close', () => socket.destroy());
  socket.once('close', () => upstream.socket.destroy());
}
