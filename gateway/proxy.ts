/**
 * The gateway's data path: every request goes straight to the leader over mutual TLS, and a
 * failover is a pause, not an error.
 *
 * Retry policy (bounded by `failoverWaitMs` and MAX_ATTEMPTS):
 *  - no leader known → wait for one;
 *  - the leader refused it unserved (503 + x-leaderway-not-served: not active, draining, fenced)
 *    or it never reached the leader (connect refused, TLS failure) → wait for the next leader (or
 *    a short backoff) and retry, whatever the method;
 *  - the connection failed after the request may have reached the leader → retry only idempotent
 *    methods (GET, HEAD, OPTIONS, LIST); others get 503 "outcome unknown";
 *  - a 307 from a node (it points at us: the nodes' api_addr is the gateway) is never passed on:
 *    re-resolve and retry, so no redirect loop can form.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { isIP, type Socket } from 'node:net';
import { LwError, MESSAGES } from '../shared/errors';
import { addressGroup, clientAddressOf, type ForwardedInfo, upstreamHeaders } from '../shared/http/headers';
import { replayBudget, SMALL_BODY_BYTES } from '../shared/http/replay-budget';
import { DEFAULT_REPLAY_CAP, ReplayableBody } from '../shared/http/replayable-body';
import { sendError } from '../shared/http/respond';
import { Admission } from '../shared/leader/admission';
import {
  afterAttempt,
  ClientGone,
  hasBody,
  outcomeUnknownError,
  RETRY_BACKOFF_MAX_MS,
  RETRY_BACKOFF_MS,
} from '../shared/leader/forward-policy';
import type { Leader, LeaderWatcher } from '../shared/leader/leader-watcher';
import type { ProxyOutcome } from '../shared/leader/proxy-request';
import type { GatewayHoldings } from '../shared/telemetry/metrics';
import { type Span, traced } from '../shared/telemetry/tracing';

/**
 * Attempts per request, whatever the outcomes; keeps a pathological cluster from looping. Enough
 * to retry at the backoff cap for the whole default failover wait (10 s).
 */
const MAX_ATTEMPTS = 64;

/** The part of the leader pool that requests still receiving their body may hold. */
const UPLOAD_SHARE = 1 / 8;
/**
 * The part of the upload lane one client address may hold (4 of 16 places with the default
 * pool), so it takes at least four addresses to fill it; the rest of an address's streaming
 * requests wait, and waiting addresses are served in turn.
 */
const UPLOAD_ADDRESS_SHARE = 1 / 4;

/**
 * The body's declared length, or null when it sends none (chunked): that body is large, since
 * its size is unknown until it ends.
 */
function declaredLength(headers: IncomingMessage['headers']): number | null {
  if (headers['transfer-encoding'] !== undefined) return null;
  const n = Number(headers['content-length']);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Hooks for metrics. */
export interface ProxyHooks {
  /** After each attempt: its outcome, the leader it went to, and the error (when there was one). */
  onAttempt?(outcome: ProxyOutcome['kind'], leaderUuid: string, error: string | undefined): void;
  onRetry?(reason: string): void;
  onLeaderWait?(ms: number): void;
  onUnknownOutcome?(error: string, span: Span | undefined): void;
  onNoLeader?(): void;
  /** A request refused to protect the leader (see `leaderway_gateway_requests_shed_total`). */
  onShed?(reason: 'overloaded'): void;
}

export interface ProxyOptions {
  watcher: LeaderWatcher;
  trustedProxies: BlockList;
  tls: boolean;
  failoverWaitMs: number;
  /** The leader pool's size (LEADERWAY_UPSTREAM_CONNECTIONS). */
  upstreamConnections: number;
  hooks?: ProxyHooks;
}

function trusted(list: BlockList, addr: string | undefined): boolean {
  if (!addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  return list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
}

/** One client request on its way through the gateway. */
interface Flight {
  req: IncomingMessage;
  res: ServerResponse;
  body: ReplayableBody | null;
  gone: ClientGone;
  /** When the failover wait ends (performance.now() time). */
  deadline: number;
  /** The request's server span: the parent of the leader wait and of every attempt. */
  span: Span | undefined;
}

/** The trust decision for a connection, made once (BlockList.check allocates per call). */
const trustBySocket = new WeakMap<Socket, boolean>();

export class GatewayProxy {
  /** Requests whose body is still arriving from the client (see `run`). */
  private readonly uploads: Admission;
  private receiving = 0;

  constructor(private readonly o: ProxyOptions) {
    const places = Math.max(1, Math.floor(o.upstreamConnections * UPLOAD_SHARE));
    this.uploads = new Admission(places, { perKey: Math.max(1, Math.floor(places * UPLOAD_ADDRESS_SHARE)) });
  }

  /** What requests in progress hold (see GatewayHoldings), but the leader pool. */
  holdings(): Omit<GatewayHoldings, 'leaderPool'> {
    return {
      replayBytes: { small: replayBudget.held('small'), large: replayBudget.held('large') },
      bodiesReceiving: this.receiving,
      uploads: { inUse: this.uploads.inUse, waiting: this.uploads.queued },
    };
  }

  private shed(res: ServerResponse, reason: 'overloaded'): void {
    this.o.hooks?.onShed?.(reason);
    sendError(
      res,
      new LwError('LW_ERR_OVERLOADED', 'the leader has too many requests in flight; retry', {
        retryAfter: 1,
      }),
    );
  }

  private trustedPeer(socket: Socket): boolean {
    let t = trustBySocket.get(socket);
    if (t === undefined) {
      t = trusted(this.o.trustedProxies, socket.remoteAddress);
      trustBySocket.set(socket, t);
    }
    return t;
  }

  private forwardedInfo(req: IncomingMessage): ForwardedInfo {
    const remote = req.socket.remoteAddress ?? '';
    return {
      remoteAddress: remote.startsWith('::ffff:') ? remote.slice(7) : remote,
      proto: this.o.tls ? 'https' : 'http',
      host: req.headers.host ?? '',
      trustClientForwarded: this.trustedPeer(req.socket),
      isTrusted: (addr) => trusted(this.o.trustedProxies, addr),
    };
  }

  /** The X-Forwarded-* view of a client connection. */
  forwardedHeaders(req: IncomingMessage): string[] {
    return upstreamHeaders(req.headers, this.forwardedInfo(req));
  }

  /**
   * Finds a leader to try: the current one, or waits for one until `deadline`. After a failure
   * on `avoid` (still advertised), waits up to `backoffMs` for a different leader and otherwise
   * retries the same one — it may have recovered, and a dead leader's lock expires in one TTL.
   */
  private async leaderFor(f: Flight, avoid: string | undefined, backoffMs: number): Promise<Leader | null> {
    const { watcher } = this.o;
    const { deadline, gone } = f;
    const started = performance.now();
    const remaining = () => Math.max(0, deadline - performance.now());
    let leader = watcher.current();
    if (leader && leader.ad.uuid !== avoid) return leader;
    // No leader known, even with the store unreachable: a Redis failover is a pause like a
    // leader change, so hold until the deadline rather than fail fast.
    return traced(
      'lw.gateway.leader_wait',
      { 'lw.avoid': avoid !== undefined },
      async (waitSpan) => {
        if (leader) {
          leader =
            (await watcher.waitFor(Math.min(backoffMs, remaining()), avoid, gone.signal)) ??
            watcher.current();
        }
        if (!leader && !gone.aborted) leader = await watcher.waitFor(remaining(), undefined, gone.signal);
        this.o.hooks?.onLeaderWait?.(performance.now() - started);
        waitSpan?.setAttribute('lw.found', leader !== null);
        return leader;
      },
      undefined,
      f.span,
    );
  }

  /** Proxies one request; `span` is the request's server span (the parent of the attempts'). */
  async handle(req: IncomingMessage, res: ServerResponse, span?: Span): Promise<void> {
    if (!hasBody(req.headers)) return this.run(req, res, null, null, span);
    const xff = req.headers['x-forwarded-for'];
    // Per-client limits count against the address the leader is told (X-Forwarded-For): the
    // PROXY protocol source or a trusted proxy's claim where there is one.
    const client = addressGroup(
      clientAddressOf(Array.isArray(xff) ? xff.join(',') : xff, this.forwardedInfo(req)),
    );
    const declared = declaredLength(req.headers);
    const small = declared !== null && declared <= SMALL_BODY_BYTES;
    const body = new ReplayableBody(req, {
      lane: small ? 'small' : 'large',
      cap: small ? SMALL_BODY_BYTES : DEFAULT_REPLAY_CAP,
      client,
      connection: req.socket,
    });
    try {
      // A body that fits the copy is read whole before anything upstream is taken: a client
      // sending slowly holds its own connection (until the listener's read timeout), never a
      // place in the leader's pool. A small one draws on a reserve large bodies cannot touch, so
      // it is never held up behind large slow ones (replay-budget.ts).
      let whole: boolean;
      this.receiving++;
      try {
        whole = await body.prefetch();
      } catch {
        // The client went away, or the read timeout cut it off: nobody to answer.
        res.destroy();
        return;
      } finally {
        this.receiving--;
      }
      await this.run(req, res, body, whole ? null : client, span);
    } finally {
      body.dispose();
    }
  }

  /**
   * Proxies one request. `streamingFrom` (the client's address group) when its body is still
   * arriving from the client, so an attempt holds an upstream place for as long as the client
   * takes (bounded by the listener's read timeout); such requests first enter `uploads`, which
   * lets only a fraction of the pool be held that way, and a quarter of that by one address.
   */
  private async run(
    req: IncomingMessage,
    res: ServerResponse,
    body: ReplayableBody | null,
    streamingFrom: string | null,
    span: Span | undefined,
  ): Promise<void> {
    const gone = new ClientGone(res);
    const f: Flight = { req, res, body, gone, deadline: performance.now() + this.o.failoverWaitMs, span };
    if (streamingFrom === null) return this.attempts(f);
    const admitted = await this.uploads.enter(gone, this.o.failoverWaitMs, streamingFrom);
    if (admitted === 'aborted') return;
    if (admitted === 'timeout') return this.shed(res, 'overloaded');
    try {
      await this.attempts(f);
    } finally {
      this.uploads.leave(streamingFrom);
    }
  }

  /** Tries leaders until one serves the request, the retry policy gives up, or `deadline`. */
  private async attempts(f: Flight): Promise<void> {
    const { req, res, body, gone, deadline, span } = f;
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const headers = this.forwardedHeaders(req);
    let avoid: string | undefined;
    let backoff = RETRY_BACKOFF_MS;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && !gone.aborted; attempt++) {
      const leader = await this.leaderFor(f, avoid, backoff);
      if (gone.aborted) return;
      if (!leader?.client) break;
      const outcome = await leader.client.forward({
        method,
        path: url,
        headers,
        body: body ? body.forAttempt() : null,
        res,
        interceptRedirects: true,
        gone,
        admissionWaitMs: Math.max(0, deadline - performance.now()),
        span: {
          name: 'lw.gateway.proxy',
          attributes: { 'lw.attempt': attempt, 'lw.leader.epoch': leader.ad.epoch },
          parent: span,
        },
      });
      if (outcome.kind === 'busy') return this.shed(res, 'overloaded');
      if (outcome.kind === 'aborted') return;
      this.o.hooks?.onAttempt?.(outcome.kind, leader.ad.uuid, 'error' in outcome ? outcome.error : undefined);
      const next = afterAttempt(outcome, method);
      // Served, broken mid-response, or the client went away: nothing more to do.
      if (next === 'done' || gone.aborted) return;
      if (next === 'unknown') {
        this.o.hooks?.onUnknownOutcome?.('error' in outcome ? outcome.error : outcome.kind, span);
        sendError(res, outcomeUnknownError());
        return;
      }
      if (body !== null && !body.replayable()) {
        // Too large to have been kept for a replay, and part of it went to a leader that did not
        // run it (or, for an idempotent request, may have): the client must send it again.
        sendError(
          res,
          new LwError(
            'LW_ERR_NO_LEADER',
            'the leader changed while the request body was being sent; send it again',
            {
              retryAfter: 1,
            },
          ),
        );
        return;
      }
      if (performance.now() >= deadline) break;
      this.o.hooks?.onRetry?.(outcome.kind);
      avoid = leader.ad.uuid;
      backoff = Math.min(RETRY_BACKOFF_MAX_MS, backoff * 2);
      void this.o.watcher.refresh();
    }
    if (gone.aborted || res.headersSent) return;
    this.o.hooks?.onNoLeader?.();
    sendError(res, new LwError('LW_ERR_NO_LEADER', MESSAGES.noActiveNode, { retryAfter: 1 }));
  }
}
