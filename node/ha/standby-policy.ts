/**
 * What a standby does with a request it must not serve: forward it to the active over the
 * cluster channel, or answer 307 to the active's api_addr, or 503 when no leader is known.
 * The order is upstream's: `X-Vault-No-Request-Forwarding` → 307; no leader → 503
 * ("local node not active but active cluster node not found"); forwarding off or clustering
 * disabled → 307; forward, and on failure log, count and fall back to 307. A request without a
 * body that the active did not serve (503 "not served": stepping down, draining, its Redis failing
 * over) is held and retried within `failoverWaitMs` first, and one that never reached a leader
 * that has since been replaced goes to the new one: the shared hold loop (shared/forward/hold.ts)
 * with a standby's profile (`standbyProfile` in shared/forward/policy.ts).
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LwError, MESSAGES } from '../../shared/errors';
import { ClientGone } from '../../shared/forward/client-gone';
import { type HoldAdapter, HoldLoop, type HoldRequest } from '../../shared/forward/hold';
import { hasBody, outcomeUnknownError, standbyProfile } from '../../shared/forward/policy';
import { upstreamHeaders } from '../../shared/http/headers';
import { type AnyResponse, sendError, sendJson } from '../../shared/http/respond';
import type { ForwardAttempt } from '../../shared/leader/leader-client';
import type { Leader, LeaderWatcher } from '../../shared/leader/leader-watcher';
import type { NodeMetrics } from '../../shared/telemetry/metrics';
import type { AnyRequest } from '../api/request';

/** Seconds a client should wait before retrying when no leader is known. */
const NO_LEADER_RETRY_AFTER_S = 1;

/** Builds the 307 target: api_addr's scheme and host, plus the original path and raw query. */
export function redirectLocation(apiAddr: string, url: string): string {
  const base = new URL(apiAddr);
  return `${base.protocol}//${base.host}${url.startsWith('/') ? url : `/${url}`}`;
}

export interface StandbyPolicyOptions {
  watcher: LeaderWatcher;
  forwarding: boolean;
  /** How long a request the active did not serve is held and retried (LEADERWAY_FAILOVER_WAIT). */
  failoverWaitMs: number;
  tlsApi: boolean;
  log: Logger;
  metrics: NodeMetrics;
}

/** One request a standby forwards. */
interface Forwarded extends HoldRequest {
  readonly req: AnyRequest;
  readonly res: AnyResponse;
  readonly url: string;
  readonly headers: string[];
}

/** A body streamed straight through: never kept, so never sent twice. */
const STREAMED = { replayable: () => false };

export class StandbyPolicy {
  private readonly hold: HoldLoop<Leader, Forwarded>;

  constructor(private readonly o: StandbyPolicyOptions) {
    this.hold = new HoldLoop(standbyProfile(o.failoverWaitMs), o.watcher, this.adapter());
  }

  /** What the hold loop asks of a standby: its attempts over the cluster channel, and metrics. */
  private adapter(): HoldAdapter<Leader, Forwarded> {
    const { metrics } = this.o;
    return {
      attempt: (f, leader, _n, admissionWaitMs): ForwardAttempt => ({
        method: f.method,
        path: f.url,
        headers: f.headers,
        body: f.body ? (f.req as unknown as Readable) : null,
        res: f.res,
        interceptRedirects: false,
        gone: f.gone,
        admissionWaitMs,
        span: { name: 'lw.forward', attributes: { 'lw.leader.epoch': leader.ad.epoch } },
      }),
      attempted: (_f, outcome) => metrics.forwarded.inc({ outcome: outcome.kind }),
      resending: (_f, previous) => metrics.forwardFailures.inc({ kind: previous.kind }),
    };
  }

  async handle(req: AnyRequest, res: AnyResponse, url: string): Promise<void> {
    const leader = this.o.watcher.current();
    if (!leader) {
      throw new LwError('LW_ERR_NO_LEADER', MESSAGES.noActiveNode, { retryAfter: NO_LEADER_RETRY_AFTER_S });
    }
    const noForward = req.headers['x-vault-no-request-forwarding'];
    const client = leader.client;
    if (typeof noForward === 'string' && noForward !== '') {
      this.redirect(res, leader.ad.api_addr, url, 'requested');
      return;
    }
    if (!this.o.forwarding || !client) {
      this.redirect(res, leader.ad.api_addr, url, 'forwarding-off');
      return;
    }
    const headers = upstreamHeaders(req.headers, {
      remoteAddress: req.socket?.remoteAddress ?? '',
      proto: this.o.tlsApi ? 'https' : 'http',
      host: String(req.headers.host ?? req.headers[':authority'] ?? ''),
      // The standby is a hop of its own: the client's X-Forwarded-For is not ours to vouch for.
      trustClientForwarded: false,
    });
    const f: Forwarded = {
      method: req.method ?? 'GET',
      body: hasBody(req.headers) ? STREAMED : null,
      gone: new ClientGone(res),
      startedAt: performance.now(),
      req,
      res,
      url,
      headers,
    };
    const end = await this.hold.run(f, leader);
    const current = end.leader ?? leader;
    if (end.kind === 'busy') {
      this.redirect(res, current.ad.api_addr, url, 'busy');
      return;
    }
    if (end.kind === 'done') return;
    const outcome = end.outcome as Exclude<typeof end.outcome, null>;
    this.o.metrics.forwardFailures.inc({ kind: outcome.kind });
    // Upstream hid forwarding failures behind a silent 307 (openbao#3899); we log them.
    this.o.log.warn(
      { outcome: outcome.kind, error: 'error' in outcome ? outcome.error : undefined },
      'forwarding failed; redirecting',
    );
    if (res.headersSent) return;
    // The active may have applied it: a 307 would make the client send it again.
    if (end.kind === 'unknown') {
      sendError(res, outcomeUnknownError());
      return;
    }
    this.redirect(res, current.ad.api_addr, url, 'forward-failed');
  }

  private redirect(res: AnyResponse, apiAddr: string, url: string, reason: string): void {
    this.o.metrics.redirects.inc({ reason });
    if (!apiAddr) {
      sendError(res, new LwError('LW_ERR_NO_LEADER', 'no active Vault instance found', { retryAfter: 1 }));
      return;
    }
    sendJson(res, 307, undefined, { location: redirectLocation(apiAddr, url) });
  }
}
