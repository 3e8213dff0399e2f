/**
 * What a standby does with a request it must not serve: forward it to the active over the
 * cluster channel, or answer 307 to the active's api_addr, or 503 when no leader is known.
 * The order is upstream's: `X-Vault-No-Request-Forwarding` → 307; no leader → 503
 * ("local node not active but active cluster node not found"); forwarding off or clustering
 * disabled → 307; forward, and on failure log, count and fall back to 307. A request without a
 * body that the active did not serve (503 "not served": stepping down, draining, its Redis failing
 * over) is held and retried within `failoverWaitMs` first, and one that never reached a leader
 * that has since been replaced goes to the new one.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LwError, MESSAGES } from '../../shared/errors';
import { upstreamHeaders } from '../../shared/http/headers';
import { type AnyResponse, sendError, sendJson } from '../../shared/http/respond';
import {
  afterAttempt,
  ClientGone,
  type ForwardOutcome,
  hasBody,
  outcomeUnknownError,
  RETRY_BACKOFF_MAX_MS,
  RETRY_BACKOFF_MS,
} from '../../shared/leader/forward-policy';
import type { Leader, LeaderWatcher } from '../../shared/leader/leader-watcher';
import type { NodeMetrics } from '../../shared/telemetry/metrics';
import type { AnyRequest } from '../api/request';

/** How long a forwarded request may wait for a place in the pool before it is redirected. */
const ADMISSION_WAIT_MS = 5_000;

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

export class StandbyPolicy {
  constructor(private readonly o: StandbyPolicyOptions) {}

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
    const withBody = hasBody(req.headers);
    const headers = upstreamHeaders(req.headers, {
      remoteAddress: req.socket?.remoteAddress ?? '',
      proto: this.o.tlsApi ? 'https' : 'http',
      host: String(req.headers.host ?? req.headers[':authority'] ?? ''),
      // The standby is a hop of its own: the client's X-Forwarded-For is not ours to vouch for.
      trustClientForwarded: false,
    });
    const gone = new ClientGone(res);
    const deadline = performance.now() + this.o.failoverWaitMs;
    let current: Leader = leader;
    let backoff = RETRY_BACKOFF_MS;
    let outcome: ForwardOutcome;
    /** Set once the active answered "not served": it lives, so what follows is a pause. */
    let holding = false;
    for (;;) {
      outcome = await this.forwardOnce(req, res, url, current, headers, withBody, gone);
      if (withBody || gone.aborted || performance.now() >= deadline) break;
      let next: Leader | null = null;
      holding ||= outcome.kind === 'not-served';
      if (holding && (outcome.kind === 'not-served' || outcome.kind === 'not-sent')) {
        // The active answered but did not serve it (stepping down, draining, its Redis failing
        // over): nothing happened, so hold and retry, as the gateway does. A new leader, else the
        // same one again: with the store unreachable the watcher may stop vouching for it (and
        // retire its connections), but the active says "not served" itself while not active.
        const remaining = Math.max(0, deadline - performance.now());
        next =
          (await this.o.watcher.waitFor(Math.min(backoff, remaining), current.ad.uuid, gone.signal)) ??
          this.o.watcher.current() ??
          current;
        backoff = Math.min(RETRY_BACKOFF_MAX_MS, backoff * 2);
      } else if (outcome.kind === 'not-sent') {
        // Never reachable (a dead active, a wrong cluster address): retry only a newer leader.
        const now = this.o.watcher.current();
        if (now && now.ad.uuid !== current.ad.uuid) next = now;
      }
      if (!next || gone.aborted) break;
      this.o.metrics.forwardFailures.inc({ kind: outcome.kind });
      current = next;
    }
    if (outcome.kind === 'busy') {
      this.redirect(res, current.ad.api_addr, url, 'busy');
      return;
    }
    const next = afterAttempt(outcome, req.method ?? 'GET');
    if (next === 'done' || gone.aborted) return;
    this.o.metrics.forwardFailures.inc({ kind: outcome.kind });
    // Upstream hid forwarding failures behind a silent 307 (openbao#3899); we log them.
    this.o.log.warn(
      { outcome: outcome.kind, error: 'error' in outcome ? outcome.error : undefined },
      'forwarding failed; redirecting',
    );
    if (res.headersSent) return;
    // The active may have applied it: a 307 would make the client send it again.
    if (next === 'unknown') {
      sendError(res, outcomeUnknownError());
      return;
    }
    this.redirect(res, current.ad.api_addr, url, 'forward-failed');
  }

  /** One forward to `leader` over the cluster channel. */
  private async forwardOnce(
    req: AnyRequest,
    res: AnyResponse,
    url: string,
    leader: Leader,
    headers: string[],
    withBody: boolean,
    gone: ClientGone,
  ): Promise<ForwardOutcome> {
    const client = leader.client;
    if (!client) return { kind: 'not-sent', error: 'no cluster channel to the active' };
    const outcome = await client.forward({
      method: req.method ?? 'GET',
      path: url,
      headers,
      body: withBody ? (req as unknown as Readable) : null,
      res,
      interceptRedirects: false,
      gone,
      admissionWaitMs: ADMISSION_WAIT_MS,
      span: { name: 'lw.forward', attributes: { 'lw.leader.epoch': leader.ad.epoch } },
    });
    if (outcome.kind !== 'busy' && outcome.kind !== 'aborted')
      this.o.metrics.forwarded.inc({ outcome: outcome.kind });
    return outcome;
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
