/**
 * The forwarding decision (shared/forward/policy.ts `next`) and the error classification
 * (shared/forward/outcome.ts `classify`), as pure functions: every outcome kind × method class ×
 * profile, the body rules, the deadline and the backoff. The hold loop that carries them out is
 * tested in forward-hold.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, type ForwardOutcome, LEADER_RETIRED } from '../../shared/forward/outcome';
import {
  type AttemptState,
  type Decision,
  gatewayProfile,
  type HeldRequest,
  type HoldProfile,
  hasBody,
  next,
  standbyProfile,
} from '../../shared/forward/policy';

const HOLD_MS = 10_000;
const GATEWAY = gatewayProfile(HOLD_MS);
const STANDBY = standbyProfile(HOLD_MS);

const OUTCOMES: Record<ForwardOutcome['kind'], ForwardOutcome> = {
  served: { kind: 'served', status: 200 },
  'not-served': { kind: 'not-served', status: 503, code: 'LW_ERR_NOT_ACTIVE' },
  redirect: { kind: 'redirect', location: 'https://gw/v1/x' },
  'not-sent': { kind: 'not-sent', error: 'ECONNREFUSED' },
  'maybe-sent': { kind: 'maybe-sent', error: 'ECONNRESET' },
  broken: { kind: 'broken', error: 'ECONNRESET' },
  busy: { kind: 'busy' },
  aborted: { kind: 'aborted' },
};

function request(method: string, over: Partial<HeldRequest> = {}): HeldRequest {
  return { method, body: 'none', gone: false, ...over };
}

function attempt(profile: HoldProfile, over: Partial<AttemptState> = {}): AttemptState {
  return {
    leader: 'A',
    deadline: HOLD_MS,
    backoffMs: profile.backoff.firstMs,
    holding: profile.holdFrom === 'start',
    ...over,
  };
}

/** The decision at time 0 (well inside the hold). */
function decide(
  profile: HoldProfile,
  kind: ForwardOutcome['kind'],
  method = 'GET',
  req: Partial<HeldRequest> = {},
  at: Partial<AttemptState> = {},
  now = 0,
): Decision {
  return next(OUTCOMES[kind], request(method, req), attempt(profile, at), now, profile);
}

describe('next(): what follows an attempt', () => {
  it('served, broken or aborted: done, on both paths, whatever the method', () => {
    for (const profile of [GATEWAY, STANDBY])
      for (const kind of ['served', 'broken', 'aborted'] as const)
        for (const method of ['GET', 'POST', 'LIST', 'DELETE'])
          assert.equal(decide(profile, kind, method).kind, 'done', `${kind} ${method}`);
  });

  it('busy ends as busy, before anything else (even with the client gone)', () => {
    for (const profile of [GATEWAY, STANDBY]) {
      assert.equal(decide(profile, 'busy', 'POST').kind, 'busy');
      assert.equal(decide(profile, 'busy', 'GET', { gone: true }).kind, 'busy');
    }
  });

  it('a client gone: done, whatever the outcome', () => {
    for (const profile of [GATEWAY, STANDBY])
      for (const kind of ['not-served', 'not-sent', 'redirect', 'maybe-sent'] as const)
        assert.equal(decide(profile, kind, 'POST', { gone: true }).kind, 'done', kind);
  });

  it('maybe-sent: a non-idempotent request is "outcome unknown" on both paths, even past the deadline', () => {
    for (const profile of [GATEWAY, STANDBY])
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        assert.equal(decide(profile, 'maybe-sent', method).kind, 'unknown');
        assert.equal(decide(profile, 'maybe-sent', method, {}, {}, HOLD_MS + 1).kind, 'unknown');
      }
  });

  it('maybe-sent, idempotent: the gateway retries it, a standby does not', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'LIST']) {
      assert.equal(decide(GATEWAY, 'maybe-sent', method).kind, 'retry', method);
      assert.equal(decide(STANDBY, 'maybe-sent', method).kind, 'give-up', method);
    }
  });

  it('the gateway holds not-served, not-sent and redirect for any method: avoid the leader, back off, else wait for any', () => {
    for (const kind of ['not-served', 'not-sent', 'redirect'] as const)
      for (const method of ['GET', 'POST', 'DELETE']) {
        const d = decide(GATEWAY, kind, method);
        assert.deepEqual(d, {
          kind: 'retry',
          avoid: 'A',
          waitMs: 100,
          otherwise: 'wait',
          backoffMs: 200,
          holding: true,
        });
      }
  });

  it('a standby holds once the active answered not-served: then not-served and not-sent are retried on another leader, else the same', () => {
    assert.deepEqual(decide(STANDBY, 'not-served', 'POST'), {
      kind: 'retry',
      avoid: 'A',
      waitMs: 50,
      otherwise: 'same',
      backoffMs: 100,
      holding: true,
    });
    assert.deepEqual(decide(STANDBY, 'not-sent', 'POST', {}, { holding: true, backoffMs: 100 }), {
      kind: 'retry',
      avoid: 'A',
      waitMs: 100,
      otherwise: 'same',
      backoffMs: 200,
      holding: true,
    });
  });

  it('a standby not yet holding retries a not-sent only on a newer leader, without waiting or backing off', () => {
    assert.deepEqual(decide(STANDBY, 'not-sent', 'POST'), {
      kind: 'retry',
      avoid: 'A',
      waitMs: 0,
      otherwise: 'give-up',
      backoffMs: 50,
      holding: false,
    });
  });

  it('a standby gives up on a redirect (it passes 307s on) and on an idempotent maybe-sent while holding', () => {
    assert.equal(decide(STANDBY, 'redirect').kind, 'give-up');
    assert.equal(decide(STANDBY, 'maybe-sent', 'GET', {}, { holding: true }).kind, 'give-up');
  });

  it('bodies: the gateway retries a kept one and asks for a body it could not keep again; a standby never retries one', () => {
    for (const kind of ['not-served', 'not-sent', 'redirect'] as const) {
      assert.equal(decide(GATEWAY, kind, 'POST', { body: 'replayable' }).kind, 'retry');
      assert.equal(decide(GATEWAY, kind, 'POST', { body: 'spent' }).kind, 'resend');
      assert.equal(decide(STANDBY, kind, 'POST', { body: 'replayable' }).kind, 'give-up');
      assert.equal(decide(STANDBY, kind, 'POST', { body: 'spent' }).kind, 'give-up');
    }
    // A body does not hide a possibly-run request: that is still "outcome unknown".
    assert.equal(decide(GATEWAY, 'maybe-sent', 'POST', { body: 'spent' }).kind, 'unknown');
    assert.equal(decide(STANDBY, 'maybe-sent', 'POST', { body: 'spent' }).kind, 'unknown');
    assert.equal(decide(GATEWAY, 'maybe-sent', 'GET', { body: 'spent' }).kind, 'resend');
  });

  it('at the deadline, what could be retried is given up', () => {
    for (const profile of [GATEWAY, STANDBY])
      for (const kind of ['not-served', 'not-sent'] as const) {
        assert.equal(decide(profile, kind, 'GET', {}, {}, HOLD_MS).kind, 'give-up', kind);
        assert.equal(decide(profile, kind, 'GET', {}, {}, HOLD_MS - 1).kind, 'retry', kind);
      }
  });

  it('backoff: the gateway waits 100, 200, 250, 250 ms for another leader; a standby 50, 100, 200, 250', () => {
    for (const [profile, expected] of [
      [GATEWAY, [100, 200, 250, 250]],
      [STANDBY, [50, 100, 200, 250]],
    ] as const) {
      let state = attempt(profile);
      const waits: number[] = [];
      for (let i = 0; i < 4; i++) {
        const d = next(OUTCOMES['not-served'], request('GET'), state, 0, profile);
        assert.equal(d.kind, 'retry');
        if (d.kind !== 'retry') return;
        waits.push(d.waitMs);
        state = { ...state, backoffMs: d.backoffMs, holding: d.holding };
      }
      assert.deepEqual(waits, expected);
    }
  });

  it('the profiles: what each path retries, how long it waits for a place, how many attempts', () => {
    assert.equal(GATEWAY.holdMs, HOLD_MS);
    assert.equal(GATEWAY.admissionWaitMs, 'rest-of-hold');
    assert.equal(GATEWAY.maxAttempts, 64);
    assert.equal(STANDBY.admissionWaitMs, 5_000);
    assert.equal(STANDBY.maxAttempts, Number.POSITIVE_INFINITY);
    assert.deepEqual([...GATEWAY.retried].sort(), ['maybe-sent', 'not-sent', 'not-served', 'redirect']);
    assert.deepEqual([...STANDBY.retried].sort(), ['not-sent', 'not-served']);
  });
});

describe('hasBody', () => {
  it('a body is declared by a non-zero length or any transfer-encoding', () => {
    assert.equal(hasBody({}), false);
    assert.equal(hasBody({ 'content-length': '0' }), false);
    assert.equal(hasBody({ 'content-length': '5' }), true);
    assert.equal(hasBody({ 'transfer-encoding': 'chunked' }), true);
  });
});

describe('classify(): a transport error before any answer byte', () => {
  const err = (code: unknown, cause?: unknown) =>
    Object.assign(new Error('x'), { code }, cause === undefined ? {} : { cause });

  it('not sent: refused, unreachable, unresolvable, connect timeout, pool closed or destroyed, TLS failures', () => {
    for (const code of [
      'ECONNREFUSED',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EADDRNOTAVAIL',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_DESTROYED',
      'UND_ERR_CLOSED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_HAS_EXPIRED',
    ])
      assert.deepEqual(classify(err(code)), { kind: 'not-sent', error: code });
  });

  it('maybe sent: a reset or timeout after sending, a retired pool, anything unknown', () => {
    for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', LEADER_RETIRED])
      assert.deepEqual(classify(err(code)), { kind: 'maybe-sent', error: code });
    assert.deepEqual(classify(new Error('x')), { kind: 'maybe-sent', error: 'Error' });
    assert.deepEqual(classify(null), { kind: 'maybe-sent', error: 'UNKNOWN' });
  });

  it("the cause's code decides; a numeric code (DOMException) is not a code", () => {
    assert.equal(classify(err('UND_ERR_SOCKET', { code: 'ECONNREFUSED' })).kind, 'not-sent');
    const abort = new DOMException('aborted', 'AbortError');
    assert.deepEqual(classify(abort), { kind: 'maybe-sent', error: 'AbortError' });
  });
});
