/**
 * What a standby does with a request it must not serve: forward it to the active over the
 * cluster channel, or answer 307 to the active's api_addr, or 503 when no leader is known.
 * The order is upstream's: `X-Vault-No-Request-Forwarding` → 307; no leader → 503
 * ("local node not active but active cluster node not found"); forwarding off or clustering
 * disabled → 307; forward, and on failure log, count and fall back to 307.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LwError, MESSAGES } from '../../shared/errors';
import { upstreamHeaders } from '../../shared/http/headers';
import { type AnyResponse, sendError, sendJson } from '../../shared/http/respond';
import type { LeaderWatcher } from '../../shared/leader/leader-watcher';
import { type ProxyOutcome, proxyOnce } from '../../shared/leader/proxy-request';
import type { NodeMetrics } from '../../shared/telemetry/metrics';
import { endSpan, startClientSpan } from '../../shared/telemetry/tracing';
import type { AnyRequest } from '../api/request';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'LIST']);

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
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    const headers = upstreamHeaders(req.headers, {
      remoteAddress: req.socket?.remoteAddress ?? '',
      proto: this.o.tlsApi ? 'https' : 'http',
      host: String(req.headers.host ?? req.headers[':authority'] ?? ''),
      // The standby is a hop of its own: the client's X-Forwarded-For is not ours to vouch for.
      trustClientForwarded: false,
    });
    const span = startClientSpan('lw.forward', { 'lw.leader.epoch': leader.ad.epoch }, headers);
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const admitted = await client.admission.enter(abort.signal, ADMISSION_WAIT_MS);
    if (admitted === 'aborted') return;
    if (admitted === 'timeout') {
      endSpan(span, 'busy', true);
      this.redirect(res, leader.ad.api_addr, url, 'busy');
      return;
    }
    let outcome: ProxyOutcome;
    try {
      outcome = await proxyOnce(client.pool, {
        method: req.method ?? 'GET',
        path: url,
        headers,
        body: hasBody ? (req as unknown as Readable) : null,
        res,
        interceptRedirects: false,
        signal: abort.signal,
      });
    } finally {
      client.admission.leave();
    }
    endSpan(
      span,
      outcome.kind,
      outcome.kind !== 'served',
      outcome.kind === 'served' ? { 'http.response.status_code': outcome.status } : {},
    );
    this.o.metrics.forwarded.inc({ outcome: outcome.kind });
    if (outcome.kind === 'served' || outcome.kind === 'broken' || abort.signal.aborted) return;
    this.o.metrics.forwardFailures.inc({ kind: outcome.kind });
    // Upstream hid forwarding failures behind a silent 307 (openbao#3899); we log them.
    this.o.log.warn(
      { outcome: outcome.kind, error: 'error' in outcome ? outcome.error : undefined },
      'forwarding failed; redirecting',
    );
    if (outcome.kind === 'maybe-sent') {
      if (res.headersSent) return;
      // The active may have applied it: a 307 would make the client send it again.
      if (!IDEMPOTENT.has(req.method ?? 'GET')) {
        sendError(
          res,
          new LwError(
            'LW_ERR_OUTCOME_UNKNOWN',
            'the active node failed while handling this request; its outcome is unknown: check before retrying',
            { retryAfter: 1 },
          ),
        );
        return;
      }
    }
    this.redirect(res, leader.ad.api_addr, url, 'forward-failed');
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
