/**
 * WebSocket (and other Upgrade) requests are proxied to the leader too — upstream's standbys
 * could only 307 them (vault#20553). The 101 answer is relayed, then bytes flow both ways.
 */
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Leader } from '../shared/leader/leader-watcher';

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ errors: [message] });
  socket.end(
    `HTTP/1.1 ${status} ${status === 503 ? 'Service Unavailable' : 'Bad Gateway'}\r\ncontent-type: application/json\r\n` +
      `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** The flat header list without `expect` (undici refuses it; Node already answered 100-continue). */
function dropExpect(flat: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2)
    if (flat[i] !== 'expect') out.push(flat[i] as string, flat[i + 1] as string);
  return out;
}

/** Sends the request as a plain one (upgrade requests are GETs) and writes the answer to `socket`. */
async function relayPlain(
  req: IncomingMessage,
  socket: Duplex,
  leader: Leader,
  forwarded: string[],
): Promise<void> {
  if (!leader.client) return;
  try {
    const r = await leader.client.pool.request({
      path: req.url ?? '/',
      method: 'GET',
      headers: dropExpect(forwarded),
    });
    const body = Buffer.from(await r.body.arrayBuffer());
    let head = `HTTP/1.1 ${r.statusCode} ${STATUS_CODES[r.statusCode] ?? ''}\r\n`;
    for (const [k, v] of Object.entries(r.headers)) {
      if (v === undefined || k === 'connection' || k === 'transfer-encoding' || k === 'keep-alive') continue;
      if (k.startsWith('x-leaderway-')) continue;
      for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
    }
    socket.end(Buffer.concat([Buffer.from(`${head}connection: close\r\n\r\n`, 'latin1'), body]));
  } catch {
    refuse(socket, 502, 'the leader refused the upgrade');
  }
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
    // The leader did not switch protocols (e.g. 403 without a token, 404 for a path without a
    // WebSocket): relay its answer rather than hiding it behind a 502.
    await relayPlain(req, socket, leader, forwarded);
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
