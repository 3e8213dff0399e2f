/**
 * The gateway's data path: every request goes straight to the leader over mutual TLS, and a
 * failover is a pause, not an error.
 *
 * Retry policy (bounded by `failoverWaitMs` and GATEWAY_MAX_ATTEMPTS), carried out by the shared
 * hold loop (shared/forward/hold.ts) with `gatewayProfile` (shared/forward/policy.ts):
 *  - no leader known → wait for one;
 *  - the leader refused it unserved (503 + x-leaderway-not-served: not active, draining, fenced)
 *    or it never reached the leader (connect refused, TLS failure) → wait for the next leader (or
 *    a short backoff) and retry, whatever the method;
 *  - the connection failed after the request may have reached the leader → retry only idempotent
 *    methods (GET, HEAD, OPTIONS, LIST); others get 503 "outcome unknown";
 *  - a 307 from a node (it points at us: the nodes' api_addr is the gateway) is never passed on:
 *    re-resolve and retry, so no redirect loop can form.
 *
 * With spread routing (`reads`, LEADERWAY_GATEWAY_READ_ROUTING=spread) a read (router.ts
 * `spreadable`) may go first to a standby the router picks; the hold loop then carries on as
 * above, so a read the standby did not serve, or that did not reach it, is retried on the leader
 * (the standby is the leader to avoid).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { isIP, type Socket } from 'node:net';
import { LwError } from '../shared/errors';
import { ClientGone } from '../shared/forward/client-gone';
import { type HoldAdapter, type HoldEnd, HoldLoop, type HoldRequest } from '../shared/forward/hold';
import type { ProxyOutcome } from '../shared/forward/outcome';
import {
  gatewayProfile,
  hasBody,
  noLeaderError,
  outcomeUnknownError,
  resendError,
} from '../shared/forward/policy';
import { addressGroup, clientAddressOf, type ForwardedInfo, upstreamHeaders } from '../shared/http/headers';
import { replayBudget, SMALL_BODY_BYTES } from '../shared/http/replay-budget';
import { DEFAULT_REPLAY_CAP, ReplayableBody } from '../shared/http/replayable-body';
import { sendError } from '../shared/http/respond';
import { Admission } from '../shared/leader/admission';
import type { ForwardAttempt } from '../shared/leader/leader-client';
import type { Leader, LeaderWatcher } from '../shared/leader/leader-watcher';
import type { GatewayHoldings } from '../shared/telemetry/metrics';
import { type Span, traced } from '../shared/telemetry/tracing';
import { isStandby, type ReadRouter } from './read-router';
import { spreadable } from './router';

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
  /** A read (spread routing) was served, by the active or a standby. */
  onReadServed?(target: 'active' | 'standby'): void;
  /** A read a standby did not serve (by outcome) goes to the active. */
  onReadFallback?(outcome: string): void;
}

export interface ProxyOptions {
  watcher: LeaderWatcher;
  trustedProxies: BlockList;
  tls: boolean;
  failoverWaitMs: number;
  /** The leader pool's size (LEADERWAY_UPSTREAM_CONNECTIONS). */
  upstreamConnections: number;
  /** Spread routing: where reads go (null: everything to the leader). */
  reads?: ReadRouter | null;
  hooks?: ProxyHooks;
}

function trusted(list: BlockList, addr: string | undefined): boolean {
  if (!addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  return list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
}

/** One client request on its way through the gateway. */
interface Flight extends HoldRequest {
  readonly res: ServerResponse;
  readonly body: ReplayableBody | null;
  readonly url: string;
  /** The X-Forwarded-* view of the client connection, sent with every attempt. */
  readonly headers: string[];
  /** The request's server span: the parent of the leader wait and of every attempt. */
  readonly span: Span | undefined;
  /** A read that spread routing may send to a standby. */
  readonly read: boolean;
  /** Whether its last attempt went to a standby (then a retry is a fallback to the active). */
  lastOnStandby: boolean;
}

/** The trust decision for a connection, made once (BlockList.check allocates per call). */
const trustBySocket = new WeakMap<Socket, boolean>();

export class GatewayProxy {
  /** Requests whose body is still arriving from the client (see `run`). */
  private readonly uploads: Admission;
  private receiving = 0;
  private readonly hold: HoldLoop<Leader, Flight>;

  constructor(private readonly o: ProxyOptions) {
    const places = Math.max(1, Math.floor(o.upstreamConnections * UPLOAD_SHARE));
    this.uploads = new Admission(places, { perKey: Math.max(1, Math.floor(places * UPLOAD_ADDRESS_SHARE)) });
    this.hold = new HoldLoop(gatewayProfile(o.failoverWaitMs), o.watcher, this.adapter());
  }

  /** What the hold loop asks of the gateway: its attempts, metrics and the leader-wait span. */
  private adapter(): HoldAdapter<Leader, Flight> {
    const { hooks, watcher, reads } = this.o;
    return {
      attempt: (f, leader, n, admissionWaitMs): ForwardAttempt => ({
        method: f.method,
        path: f.url,
        headers: f.headers,
        body: f.body ? f.body.forAttempt() : null,
        res: f.res,
        // A 307 from a node points at us (the nodes' api_addr is the gateway): never passed on.
        interceptRedirects: true,
        gone: f.gone,
        admissionWaitMs,
        span: {
          name: 'lw.gateway.proxy',
          attributes: {
            'lw.attempt': n,
            'lw.leader.epoch': leader.ad.epoch,
            'lw.target': isStandby(leader) ? 'standby' : 'active',
          },
          parent: f.span,
        },
      }),
      attempted: (f, outcome, leader) => {
        hooks?.onAttempt?.(outcome.kind, leader.ad.uuid, 'error' in outcome ? outcome.error : undefined);
        const standby = isStandby(leader);
        f.lastOnStandby = standby;
        if (f.read && outcome.kind === 'served') hooks?.onReadServed?.(standby ? 'standby' : 'active');
        if (standby && (outcome.kind === 'not-sent' || outcome.kind === 'maybe-sent'))
          reads?.unreachable(leader);
      },
      retrying: (f, outcome) => {
        // A standby that did not serve a read says nothing about the leader: no leader re-read.
        if (f.lastOnStandby) hooks?.onReadFallback?.(outcome.kind);
        else {
          hooks?.onRetry?.(outcome.kind);
          void watcher.refresh();
        }
      },
      // No leader known, even with the store unreachable: a Redis failover is a pause like a
      // leader change, so the loop holds until the deadline rather than fail fast.
      waiting: (f, avoiding, wait) => {
        const started = performance.now();
        return traced(
          'lw.gateway.leader_wait',
          { 'lw.avoid': avoiding },
          async (waitSpan) => {
            const leader = await wait();
            hooks?.onLeaderWait?.(performance.now() - started);
            waitSpan?.setAttribute('lw.found', leader !== null);
            return leader;
          },
          undefined,
          f.span,
        );
      },
    };
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
    // The hold counts from here, the wait for an upload place included.
    const startedAt = performance.now();
    if (streamingFrom === null) return this.attempts(req, res, body, gone, startedAt, span);
    const admitted = await this.uploads.enter(gone, this.o.failoverWaitMs, streamingFrom);
    if (admitted === 'aborted') return;
    if (admitted === 'timeout') return this.shed(res, 'overloaded');
    try {
      await this.attempts(req, res, body, gone, startedAt, span);
    } finally {
      this.uploads.leave(streamingFrom);
    }
  }

  /** Tries leaders until one serves the request, the hold gives up, or its deadline; answers. */
  private async attempts(
    req: IncomingMessage,
    res: ServerResponse,
    body: ReplayableBody | null,
    gone: ClientGone,
    startedAt: number,
    span: Span | undefined,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const reads = this.o.reads;
    const read = reads != null && spreadable(method, url, req.headers);
    const f: Flight = {
      method,
      body,
      gone,
      startedAt,
      res,
      url,
      headers: this.forwardedHeaders(req),
      span,
      read,
      lastOnStandby: false,
    };
    // A read may start on a standby; null: the leader, as every other request.
    this.answer(f, await this.hold.run(f, read ? reads.choose() : null));
  }

  /** The gateway's answer for how a request ended. */
  private answer(f: Flight, end: HoldEnd<Leader>): void {
    const { res, gone } = f;
    switch (end.kind) {
      case 'done':
        return;
      case 'busy':
        this.shed(res, 'overloaded');
        return;
      case 'unknown': {
        const outcome = end.outcome as ProxyOutcome;
        this.o.hooks?.onUnknownOutcome?.('error' in outcome ? outcome.error : outcome.kind, f.span);
        sendError(res, outcomeUnknownError());
        return;
      }
      case 'resend':
        // Too large to have been kept for a replay, and part of it went to a leader that did not
        // run it (or, for an idempotent request, may have): the client must send it again.
        sendError(res, resendError());
        return;
      case 'give-up':
        if (gone.aborted || res.headersSent) return;
        this.o.hooks?.onNoLeader?.();
        sendError(res, noLeaderError());
        return;
    }
  }
}
