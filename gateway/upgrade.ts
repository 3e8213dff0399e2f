/**
 * WebSocket (and other Upgrade) requests are proxied to the leader too — upstream's standbys
 * could only 307 them (vault#20553). One request goes to the leader, once: a 101 is relayed with
 * only the headers an upgrade needs, then bytes flow both ways; any other answer is streamed back
 * (with backpressure, so nothing is buffered) and the connection closed.
 */
import { type IncomingHttpHeaders, type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LwError } from '../shared/errors';
import { downstreamHeaders } from '../shared/http/headers';
import { rawErrorResponse } from '../shared/http/respond';
import type { Cancellation } from '../shared/leader/admission';
import type { Leader } from '../shared/leader/leader-watcher';

/** The flat header list without `expect` (undici refuses it; Node already answered 100-continue). */
function dropExpect(flat: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2)
    if (flat[i] !== 'expect') out.push(flat[i] as string, flat[i + 1] as string);
  return out;
}

/** A response head: the status line and the headers a client may see (never internal ones). */
function head(status: number, headers: IncomingHttpHeaders, extra: Record<string, string>): string {
  let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  const all = { ...downstreamHeaders(headers as Record<string, string | string[] | undefined>), ...extra };
  for (const [k, v] of Object.entries(all)) {
    for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
  }
  return `${out}\r\n`;
}

const CLIENT_GONE = 'client went away';

/**
 * The client's socket as a Cancellation for the wait for a pool place: it went away once the
 * socket closed (or if it already had).
 */
class SocketGone implements Cancellation {
  aborted: boolean;
  private notify: (() => void) | undefined;

  constructor(socket: Duplex) {
    this.aborted = socket.destroyed;
    socket.once('close', () => {
      this.aborted = true;
      const fn = this.notify;
      this.notify = undefined;
      fn?.();
    });
  }

  onAbort(fn: (() => void) | undefined): void {
    this.notify = fn;
  }
}

/**
 * Relays the leader's answer to one upgrade request onto the client's socket. Its pool place is
 * given back however the exchange ends: switched, answered, failed, or the client gone at any
 * point (before the request left, while the answer streams).
 */
class UpgradeRelay implements Dispatcher.DispatchHandler {
  private answered = false;

  constructor(
    private readonly socket: Duplex,
    private readonly head: Buffer,
    /** Gives the leader-pool place back: the leader's answer is over. */
    private readonly release: () => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // The client may have gone while this request waited for a connection to the leader: its
    // 'close' is then past, and the leader's answer would wait for a 'drain' that never comes,
    // holding its pool place for the leader's lifetime (issue 29).
    if (this.socket.destroyed) {
      controller.abort(new Error(CLIENT_GONE));
      return;
    }
    this.socket.once('close', () => {
      if (!controller.aborted) controller.abort(new Error(CLIENT_GONE));
    });
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    upstream: Duplex,
  ): void {
    this.answered = true;
    this.release();
    const { socket } = this;
    socket.write(
      head(statusCode, headers, { connection: 'Upgrade', upgrade: String(headers.upgrade ?? 'websocket') }),
    );
    if (this.head.length > 0) upstream.write(this.head);
    upstream.pipe(socket);
    socket.pipe(upstream);
    const destroyBoth = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.once('error', destroyBoth);
    socket.once('error', destroyBoth);
    upstream.once('close', () => socket.destroy());
    socket.once('close', () => upstream.destroy());
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // The leader did not switch protocols (403 without a token, 404 for a path without a
    // WebSocket): pass its answer on rather than hiding it behind a 502.
    this.answered = true;
    this.socket.write(head(statusCode, headers, { connection: 'close' }));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.socket.destroyed) {
      controller.abort(new Error(CLIENT_GONE));
      return;
    }
    if (!this.socket.write(chunk)) {
      controller.pause();
      this.socket.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.release();
    this.socket.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, _err: Error): void {
    this.release();
    if (this.answered || !this.socket.writable) this.socket.destroy();
    else this.socket.end(rawErrorResponse(new LwError('LW_ERR_UPSTREAM', 'the leader refused the upgrade')));
  }
}

/** How long an upgrade may wait for a place in the leader pool before it is refused. */
const UPGRADE_ADMISSION_WAIT_MS = 5_000;

/** Relays one upgrade to `leader`; refuses with 503 when there is none or it is saturated. */
export async function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  leader: Leader | null,
  forwarded: string[],
): Promise<void> {
  // Reset before we got here: nobody to answer, nothing to take.
  if (socket.destroyed) return;
  if (!leader?.client) {
    socket.end(
      rawErrorResponse(new LwError('LW_ERR_NO_LEADER', 'no active node to upgrade to', { retryAfter: 1 })),
    );
    return;
  }
  const protocol = String(req.headers.upgrade ?? 'websocket');
  // Upgrade and Connection are hop-by-hop, so upstreamHeaders dropped them; undici adds both
  // from `upgrade`.
  const sent = await leader.client.upgrade(
    { path: req.url ?? '/', method: 'GET', headers: dropExpect(forwarded), upgrade: protocol },
    (release) => new UpgradeRelay(socket, head, release),
    UPGRADE_ADMISSION_WAIT_MS,
    new SocketGone(socket),
  );
  if (sent === 'busy')
    socket.end(
      rawErrorResponse(
        new LwError('LW_ERR_OVERLOADED', 'the leader has too many requests in flight; retry', {
          retryAfter: 1,
        }),
      ),
    );
}
