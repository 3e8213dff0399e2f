/**
 * The two adapters over the hold loop answer each ending as before: the gateway with 503s (no
 * leader, outcome unknown, send it again, overloaded) and its metrics hooks; a standby with 503 or
 * 307 (requested, forwarding-off, busy, forward-failed), its counters and its warning. Scripted
 * watcher and leaders, no sockets; the hold is kept short (waits are real but a few ms).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList } from 'node:net';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { GatewayProxy } from '../../gateway/proxy';
import type { AnyRequest } from '../../node/api/request';
import { StandbyPolicy } from '../../node/ha/standby-policy';
import type { ForwardOutcome } from '../../shared/forward/outcome';
import type { LeaderWatcher } from '../../shared/leader/leader-watcher';
import type { NodeMetrics } from '../../shared/telemetry/metrics';

const HOLD_MS = 30;

/** A leader whose attempts answer `steps` in turn (then served). */
function leader(uuid: string, steps: ForwardOutcome[] = [], channel = true) {
  const sent: { method: string; admissionWaitMs: number }[] = [];
  return {
    sent,
    ad: { uuid, epoch: 1, api_addr: `https://${uuid.toLowerCase()}.example:8200` },
    client: channel
      ? {
          async forward(a: { method: string; admissionWaitMs: number }): Promise<ForwardOutcome> {
            sent.push({ method: a.method, admissionWaitMs: a.admissionWaitMs });
            return steps.shift() ?? { kind: 'served', status: 200 };
          },
        }
      : null,
  };
}
type FakeLeader = ReturnType<typeof leader>;

/** A watcher that knows `l` (or none) and never sees a change. */
function watcher(l: FakeLeader | null) {
  let refreshes = 0;
  const w = {
    current: () => l,
    waitFor: (ms: number, notUuid?: string) =>
      l && l.ad.uuid !== notUuid
        ? Promise.resolve(l)
        : new Promise<null>((resolve) => setTimeout(() => resolve(null), ms)),
    refresh: async () => {
      refreshes++;
    },
    get refreshes() {
      return refreshes;
    },
  };
  return w;
}

/** A response that records what was written. */
function response() {
  const res = Object.assign(new EventEmitter(), {
    headersSent: false,
    writableFinished: false,
    status: 0,
    headers: {} as Record<string, string>,
    body: '',
    writeHead(status: number, headers: Record<string, string>) {
      res.status = status;
      res.headers = headers;
      res.headersSent = true;
      return res;
    },
    write(chunk: string) {
      res.body += chunk;
      return true;
    },
    end(chunk?: string) {
      if (chunk) res.body += chunk;
      res.writableFinished = true;
    },
    destroy() {},
  });
  return res;
}

function counter() {
  const calls: Record<string, string>[] = [];
  return { calls, inc: (labels: Record<string, string>) => calls.push(labels) };
}

function standby(l: FakeLeader | null, forwarding = true) {
  const metrics = { forwarded: counter(), forwardFailures: counter(), redirects: counter() };
  const warnings: unknown[] = [];
  const policy = new StandbyPolicy({
    watcher: watcher(l) as unknown as LeaderWatcher,
    forwarding,
    failoverWaitMs: HOLD_MS,
    tlsApi: true,
    log: { warn: (o: unknown) => warnings.push(o) } as unknown as Logger,
    metrics: metrics as unknown as NodeMetrics,
  });
  const send = async (method: string, headers: Record<string, string> = {}) => {
    const res = response();
    const req = { method, headers: { host: 'standby', ...headers }, socket: { remoteAddress: '10.0.0.9' } };
    await policy.handle(
      req as unknown as AnyRequest,
      res as unknown as ServerResponse,
      '/v1/secret/data/x?y=1',
    );
    return res;
  };
  return { metrics, warnings, send };
}

const NOT_SERVED: ForwardOutcome = { kind: 'not-served', status: 503, code: 'LW_ERR_NOT_ACTIVE' };
const MAYBE_SENT: ForwardOutcome = { kind: 'maybe-sent', error: 'ECONNRESET' };

describe('the standby adapter', () => {
  it('no leader: 503 at once (thrown for the API to answer)', async () => {
    const s = standby(null);
    await assert.rejects(s.send('GET'), { code: 'LW_ERR_NO_LEADER', status: 503, retryAfter: 1 });
  });

  it('X-Vault-No-Request-Forwarding, forwarding off, no cluster channel: 307 to the active, no attempt', async () => {
    for (const [s, headers, reason] of [
      [standby(leader('A')), { 'x-vault-no-request-forwarding': 'true' }, 'requested'],
      [standby(leader('A'), false), {}, 'forwarding-off'],
      [standby(leader('A', [], false)), {}, 'forwarding-off'],
    ] as const) {
      const res = await s.send('GET', headers);
      assert.equal(res.status, 307);
      assert.equal(res.headers.location, 'https://a.example:8200/v1/secret/data/x?y=1');
      assert.deepEqual(s.metrics.redirects.calls, [{ reason }]);
      assert.deepEqual(s.metrics.forwarded.calls, []);
    }
  });

  it('busy: 307 busy, nothing counted as forwarded', async () => {
    const s = standby(leader('A', [{ kind: 'busy' }]));
    const res = await s.send('GET');
    assert.equal(res.status, 307);
    assert.deepEqual(s.metrics.redirects.calls, [{ reason: 'busy' }]);
    assert.deepEqual(s.metrics.forwarded.calls, []);
    assert.deepEqual(s.warnings, []);
  });

  it('a write that may have run: 503 outcome unknown, counted and logged', async () => {
    const s = standby(leader('A', [MAYBE_SENT]));
    const res = await s.send('POST');
    assert.equal(res.status, 503);
    assert.match(res.body, /outcome is unknown/);
    assert.deepEqual(s.metrics.forwarded.calls, [{ outcome: 'maybe-sent' }]);
    assert.deepEqual(s.metrics.forwardFailures.calls, [{ kind: 'maybe-sent' }]);
    assert.deepEqual(s.warnings, [{ outcome: 'maybe-sent', error: 'ECONNRESET' }]);
  });

  it('not served until the hold ends: retried on the same active, then 307 forward-failed; one failure counted per attempt', async () => {
    const a = leader(
      'A',
      Array.from({ length: 50 }, () => NOT_SERVED),
    );
    const s = standby(a);
    const res = await s.send('DELETE');
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, 'https://a.example:8200/v1/secret/data/x?y=1');
    assert.deepEqual(s.metrics.redirects.calls, [{ reason: 'forward-failed' }]);
    assert.ok(a.sent.length >= 2, `held and retried (${a.sent.length} attempts)`);
    assert.equal(s.metrics.forwarded.calls.length, a.sent.length);
    assert.equal(s.metrics.forwardFailures.calls.length, a.sent.length);
    assert.ok(a.sent.every((x) => x.admissionWaitMs === 5_000));
    assert.equal(s.warnings.length, 1);
  });

  it('a request with a body: one attempt, then 307 forward-failed', async () => {
    const a = leader('A', [NOT_SERVED]);
    const s = standby(a);
    const res = await s.send('POST', { 'content-length': '2' });
    assert.equal(res.status, 307);
    assert.equal(a.sent.length, 1);
  });
});

function gateway(l: FakeLeader | null) {
  const events: string[] = [];
  const w = watcher(l);
  const proxy = new GatewayProxy({
    watcher: w as unknown as LeaderWatcher,
    trustedProxies: new BlockList(),
    tls: true,
    failoverWaitMs: HOLD_MS,
    upstreamConnections: 16,
    hooks: {
      onAttempt: (kind, uuid) => events.push(`attempt:${uuid}:${kind}`),
      onRetry: (reason) => events.push(`retry:${reason}`),
      onLeaderWait: () => events.push('leader-wait'),
      onUnknownOutcome: (error) => events.push(`unknown:${error}`),
      onNoLeader: () => events.push('no-leader'),
      onShed: (reason) => events.push(`shed:${reason}`),
    },
  });
  const send = async (method: string) => {
    const res = response();
    const req = { method, url: '/v1/kv/x', headers: { host: 'gw' }, socket: { remoteAddress: '10.0.0.7' } };
    await proxy.handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    return res;
  };
  return { events, send, watcher: w };
}

describe('the gateway adapter', () => {
  it('no leader within the hold: 503 no leader after waiting, counted', async () => {
    const g = gateway(null);
    const res = await g.send('GET');
    assert.equal(res.status, 503);
    assert.match(res.body, /active cluster node not found/);
    assert.equal(res.headers['retry-after'], '1');
    assert.deepEqual(g.events, ['leader-wait', 'no-leader']);
  });

  it('a write that may have run: 503 outcome unknown', async () => {
    const g = gateway(leader('A', [MAYBE_SENT]));
    const res = await g.send('PUT');
    assert.equal(res.status, 503);
    assert.match(res.body, /outcome is unknown/);
    assert.deepEqual(g.events, ['attempt:A:maybe-sent', 'unknown:ECONNRESET']);
  });

  it('busy: 503 overloaded (shed)', async () => {
    const g = gateway(leader('A', [{ kind: 'busy' }]));
    const res = await g.send('GET');
    assert.equal(res.status, 503);
    assert.deepEqual(g.events, ['shed:overloaded']);
  });

  it('not served, then served by the same leader after the backoff: retried, counted, the watcher refreshed', async () => {
    const g = gateway(leader('A', [NOT_SERVED]));
    const res = await g.send('POST');
    assert.equal(res.status, 0, 'the leader answered (the fake writes nothing)');
    assert.deepEqual(g.events, [
      'attempt:A:not-served',
      'retry:not-served',
      'leader-wait',
      'attempt:A:served',
    ]);
    assert.equal(g.watcher.refreshes, 1);
  });

  it('a leader without a cluster channel: 503 no leader at once', async () => {
    const g = gateway(leader('A', [], false));
    const res = await g.send('GET');
    assert.equal(res.status, 503);
    assert.deepEqual(g.events, ['no-leader']);
  });
});
