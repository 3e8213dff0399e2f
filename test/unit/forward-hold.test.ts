/**
 * The one hold loop (shared/forward/hold.ts) with the gateway's and a standby's profiles, driven
 * by a scripted leader watcher and scripted leader clients on a simulated clock: a leader wait
 * moves the clock instead of sleeping, so every path — leader waits, backoff, avoiding the failed
 * leader, the deadline, the attempt cap, a client gone, busy, a body that cannot be sent again, a
 * leader change during a hold — runs in microseconds.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ClientGone } from '../../shared/forward/client-gone';
import { type HoldAdapter, HoldLoop, type HoldRequest, type LeaderSource } from '../../shared/forward/hold';
import type { ForwardOutcome } from '../../shared/forward/outcome';
import { gatewayProfile, type HoldProfile, standbyProfile } from '../../shared/forward/policy';
import type { ForwardAttempt } from '../../shared/leader/leader-client';

const HOLD_MS = 10_000;

const SERVED: ForwardOutcome = { kind: 'served', status: 200 };
const NOT_SERVED: ForwardOutcome = { kind: 'not-served', status: 503, code: 'LW_ERR_NOT_ACTIVE' };
const NOT_SENT: ForwardOutcome = { kind: 'not-sent', error: 'ECONNREFUSED' };
const MAYBE_SENT: ForwardOutcome = { kind: 'maybe-sent', error: 'ECONNRESET' };
const REDIRECT: ForwardOutcome = { kind: 'redirect', location: 'https://gw/v1/x' };
const BUSY: ForwardOutcome = { kind: 'busy' };

/** Everything that happened, in order, on the simulated clock. */
type Event =
  | { at: number; attempt: string; n: number; admissionWaitMs: number }
  | { at: number; wait: number; avoid: string | undefined }
  | { at: number; hook: string; detail?: string };

/** One scripted step of a leader: an outcome, optionally taking time or doing something first. */
type Step = ForwardOutcome | { outcome: ForwardOutcome; takesMs?: number; before?: () => void };

interface FakeLeader {
  ad: { uuid: string; epoch: number };
  client: { forward(a: ForwardAttempt): Promise<ForwardOutcome> } | null;
}

/** A cluster on a simulated clock: leaders with scripted answers and a scripted succession. */
class World implements LeaderSource<FakeLeader> {
  t = 0;
  readonly events: Event[] = [];
  private leader: FakeLeader | null = null;
  /** Leader changes to come, by time. */
  private changes: { at: number; leader: FakeLeader | null }[] = [];
  /** When the client leaves during a leader wait (simulated time). */
  private goneAt: { at: number; leave: () => void } | undefined;

  /** A leader whose attempts answer `steps` in turn (then `served`). */
  node(uuid: string, steps: Step[] = [], channel = true): FakeLeader {
    const world = this;
    return {
      ad: { uuid, epoch: 1 },
      client: channel
        ? {
            async forward(a: ForwardAttempt) {
              const step = steps.shift() ?? SERVED;
              const s = 'kind' in step ? { outcome: step } : step;
              world.events.push({
                at: world.t,
                attempt: uuid,
                n: Number(a.span.attributes['lw.attempt'] ?? 0),
                admissionWaitMs: a.admissionWaitMs,
              });
              s.before?.();
              world.t += s.takesMs ?? 0;
              return s.outcome;
            },
          }
        : null,
    };
  }

  set(leader: FakeLeader | null): this {
    this.leader = leader;
    return this;
  }

  /** `leader` becomes the leader at simulated time `at`. */
  at(at: number, leader: FakeLeader | null): this {
    this.changes.push({ at, leader });
    this.changes.sort((a, b) => a.at - b.at);
    return this;
  }

  /** The client leaves at simulated time `at` (noticed during a leader wait). */
  leaveAt(at: number, leave: () => void): this {
    this.goneAt = { at, leave };
    return this;
  }

  private apply(until: number): void {
    while (this.changes.length > 0 && (this.changes[0] as { at: number }).at <= until) {
      this.leader = (this.changes.shift() as { leader: FakeLeader | null }).leader;
    }
  }

  current(): FakeLeader | null {
    this.apply(this.t);
    return this.leader;
  }

  async waitFor(timeoutMs: number, notUuid?: string, signal?: AbortSignal): Promise<FakeLeader | null> {
    const ok = (l: FakeLeader | null): l is FakeLeader => l !== null && l.ad.uuid !== notUuid;
    this.events.push({ at: this.t, wait: timeoutMs, avoid: notUuid });
    if (ok(this.current())) return this.leader;
    const until = this.t + timeoutMs;
    for (;;) {
      const change = this.changes[0];
      const gone = this.goneAt && this.goneAt.at <= until ? this.goneAt : undefined;
      if (gone && (!change || gone.at <= change.at)) {
        this.t = gone.at;
        this.goneAt = undefined;
        gone.leave();
        assert.equal(signal?.aborted, true, 'the wait is given the client-gone signal');
        return null;
      }
      if (!change || change.at > until) break;
      this.t = change.at;
      this.apply(this.t);
      if (ok(this.leader)) return this.leader;
    }
    this.t = until;
    return null;
  }
}

/** A request as the loop sees it, with a response the test can close. */
function request(method: string, body: HoldRequest['body'] = null) {
  const res = Object.assign(new EventEmitter(), { writableFinished: false });
  const r: HoldRequest = { method, body, gone: new ClientGone(res), startedAt: 0 };
  return { r, leave: () => res.emit('close') };
}

/** The real loop over `world` with `profile`, recording its hooks. */
function loop(world: World, profile: HoldProfile) {
  const adapter: HoldAdapter<FakeLeader, HoldRequest> = {
    attempt: (r, _leader, n, admissionWaitMs) =>
      ({
        method: r.method,
        path: '/v1/secret/data/x',
        headers: [],
        body: null,
        res: {} as ForwardAttempt['res'],
        interceptRedirects: true,
        gone: r.gone,
        admissionWaitMs,
        span: { name: 'test', attributes: { 'lw.attempt': n } },
      }) as ForwardAttempt,
    attempted: (_r, outcome, leader) =>
      world.events.push({ at: world.t, hook: 'attempted', detail: `${leader.ad.uuid}:${outcome.kind}` }),
    retrying: (_r, outcome) => world.events.push({ at: world.t, hook: 'retrying', detail: outcome.kind }),
    resending: (_r, previous, leader) =>
      world.events.push({ at: world.t, hook: 'resending', detail: `${leader.ad.uuid}:${previous.kind}` }),
    waiting: async (_r, avoiding, wait) => {
      world.events.push({ at: world.t, hook: 'waiting', detail: String(avoiding) });
      return wait();
    },
  };
  return new HoldLoop(profile, world, adapter, () => world.t);
}

const attempts = (w: World) => w.events.flatMap((e) => ('attempt' in e ? [`${e.attempt}@${e.at}`] : []));
const waits = (w: World) =>
  w.events.flatMap((e) => ('wait' in e ? [`${e.wait}${e.avoid ? `!${e.avoid}` : ''}`] : []));
const hooks = (w: World, name: string) =>
  w.events.flatMap((e) => ('hook' in e && e.hook === name ? [e.detail] : []));

const GATEWAY = gatewayProfile(HOLD_MS);
const STANDBY = standbyProfile(HOLD_MS);

describe('the hold loop, gateway profile', () => {
  it('served at once: one attempt to the known leader, no wait, the whole hold to wait for a place', async () => {
    const w = new World();
    w.set(w.node('A'));
    const { r } = request('POST');
    const end = await loop(w, GATEWAY).run(r, null);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0']);
    assert.deepEqual(waits(w), []);
    assert.equal(w.events[0] && 'admissionWaitMs' in w.events[0] && w.events[0].admissionWaitMs, HOLD_MS);
    assert.deepEqual(hooks(w, 'attempted'), ['A:served']);
  });

  it('no leader known: waits for one (a traced wait) and sends to it when it appears', async () => {
    const w = new World();
    w.at(1_500, w.node('A'));
    const { r } = request('POST');
    const end = await loop(w, GATEWAY).run(r, null);
    assert.equal(end.kind, 'done');
    assert.deepEqual(hooks(w, 'waiting'), ['false']);
    assert.deepEqual(waits(w), [String(HOLD_MS)]);
    assert.deepEqual(attempts(w), ['A@1500']);
    // The place in the pool is waited for only until the hold ends.
    const a = w.events.find((e) => 'attempt' in e);
    assert.equal(a && 'admissionWaitMs' in a && a.admissionWaitMs, HOLD_MS - 1_500);
  });

  it('no leader within the hold: gives up (503 no leader) at the deadline, without an attempt', async () => {
    const w = new World();
    const { r } = request('GET');
    const end = await loop(w, GATEWAY).run(r, null);
    assert.deepEqual([end.kind, end.outcome, end.leader], ['give-up', null, null]);
    assert.equal(w.t, HOLD_MS);
    assert.deepEqual(attempts(w), []);
  });

  for (const [name, outcome] of [
    ['not-served', NOT_SERVED],
    ['not-sent', NOT_SENT],
    ['a redirect', REDIRECT],
  ] as const) {
    it(`${name}, any method: retried on the next leader, which appears during the backoff`, async () => {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const w = new World();
        const b = w.node('B');
        w.set(w.node('A', [outcome])).at(60, b);
        const { r } = request(method);
        const end = await loop(w, GATEWAY).run(r, null);
        assert.equal(end.kind, 'done', method);
        assert.equal(end.leader, b);
        assert.deepEqual(attempts(w), ['A@0', 'B@60']);
        assert.deepEqual(waits(w), ['100!A']);
        assert.deepEqual(hooks(w, 'retrying'), [outcome.kind]);
        assert.deepEqual(hooks(w, 'waiting'), ['true']);
      }
    });
  }

  it('a leader that keeps refusing: retried itself after 100, 200, 250, 250 ms, until the deadline', async () => {
    const w = new World();
    w.set(
      w.node(
        'A',
        Array.from({ length: 100 }, () => NOT_SERVED),
      ),
    );
    const { r } = request('PUT');
    const end = await loop(w, GATEWAY).run(r, null);
    assert.equal(end.kind, 'give-up');
    assert.deepEqual(end.outcome, NOT_SERVED);
    assert.deepEqual(waits(w).slice(0, 5), ['100!A', '200!A', '250!A', '250!A', '250!A']);
    // 0, 100, 300, 550, then every 250 ms to 9800; the wait after it is cut at the deadline and
    // the same leader gets one last attempt there, whose refusal ends the hold.
    const sent = attempts(w);
    assert.deepEqual(sent.slice(-2), ['A@9800', `A@${HOLD_MS}`]);
    assert.equal(sent.length, 4 + (9_800 - 550) / 250 + 1);
  });

  it('maybe-sent: a non-idempotent request gets "outcome unknown" at once; an idempotent one is retried', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const w = new World();
      w.set(w.node('A', [MAYBE_SENT]));
      const end = await loop(w, GATEWAY).run(request(method).r, null);
      assert.equal(end.kind, 'unknown', method);
      assert.deepEqual(end.outcome, MAYBE_SENT);
      assert.deepEqual(attempts(w), ['A@0']);
    }
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'LIST']) {
      const w = new World();
      w.set(w.node('A', [MAYBE_SENT]));
      const end = await loop(w, GATEWAY).run(request(method).r, null);
      assert.equal(end.kind, 'done', method);
      assert.deepEqual(attempts(w), ['A@0', 'A@100']);
    }
  });

  it('busy: shed at once (no retry, no attempt counted)', async () => {
    const w = new World();
    w.set(w.node('A', [BUSY]));
    const end = await loop(w, GATEWAY).run(request('GET').r, null);
    assert.equal(end.kind, 'busy');
    assert.deepEqual(hooks(w, 'attempted'), []);
  });

  it('a body: retried while its copy holds it all; "send it again" once it does not', async () => {
    let replayable = true;
    const body = { replayable: () => replayable };
    const w = new World();
    w.set(w.node('A', [NOT_SERVED, { outcome: NOT_SERVED, before: () => (replayable = false) }]));
    const end = await loop(w, GATEWAY).run(request('POST', body).r, null);
    assert.equal(end.kind, 'resend');
    assert.deepEqual(attempts(w), ['A@0', 'A@100']);
  });

  it('the attempt cap: 64 attempts, then 503 no leader, however fast leaders come and go', async () => {
    const w = new World();
    const a = w.node(
      'A',
      Array.from({ length: 100 }, () => NOT_SENT),
    );
    const b = w.node(
      'B',
      Array.from({ length: 100 }, () => NOT_SENT),
    );
    // Every attempt takes 1 ms and the other leader is always known by then: no waits at all.
    const flip = (l: typeof a, other: typeof a) => {
      const forward = (l.client as NonNullable<typeof a.client>).forward;
      (l.client as NonNullable<typeof a.client>).forward = async (x) => {
        const o = await forward(x);
        w.t += 1;
        w.set(other);
        return o;
      };
    };
    flip(a, b);
    flip(b, a);
    w.set(a);
    const end = await loop(w, GATEWAY).run(request('GET').r, null);
    assert.equal(end.kind, 'give-up');
    assert.equal(attempts(w).length, 64);
    assert.deepEqual(waits(w), []);
    // Each failed attempt was a retry decision, the 64th included (counted as today).
    assert.equal(hooks(w, 'retrying').length, 64);
  });

  it('the client leaves during an attempt: done, nothing more is sent', async () => {
    const w = new World();
    const { r, leave } = request('GET');
    w.set(w.node('A', [{ outcome: NOT_SENT, before: leave }]));
    const end = await loop(w, GATEWAY).run(r, null);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0']);
    assert.deepEqual(hooks(w, 'retrying'), []);
  });

  it('the client leaves during a leader wait: done, no attempt, no "no leader"', async () => {
    const w = new World();
    const { r, leave } = request('GET');
    w.leaveAt(700, leave).at(5_000, w.node('A'));
    const end = await loop(w, GATEWAY).run(r, null);
    assert.equal(end.kind, 'done');
    assert.equal(w.t, 700);
    assert.deepEqual(attempts(w), []);
  });

  it('a leader change during a hold: the held request goes to the new leader, not back to the old', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SERVED, NOT_SERVED]);
    w.set(a).at(180, null).at(900, w.node('B'));
    const end = await loop(w, GATEWAY).run(request('POST').r, null);
    assert.equal(end.kind, 'done');
    // A refused at 0; retried at 100 (no other leader); refused; the lock is released at 180
    // and B takes it at 900: the request waits for it rather than fail.
    assert.deepEqual(attempts(w), ['A@0', 'A@100', 'B@900']);
    assert.deepEqual(waits(w), ['100!A', '200!A', String(HOLD_MS - 300)]);
  });

  it('a leader without a cluster channel: 503 no leader at once, nothing sent', async () => {
    const w = new World();
    w.set(w.node('A', [], false));
    const end = await loop(w, GATEWAY).run(request('GET').r, null);
    assert.deepEqual([end.kind, end.outcome], ['give-up', null]);
    assert.deepEqual(attempts(w), []);
    // At once: nothing is waited for.
    assert.equal(w.t, 0);
    assert.deepEqual(waits(w), []);
  });

  it('the hold counts from the request’s arrival (an upload place waited for included)', async () => {
    const w = new World();
    w.t = 4_000;
    const { r } = request('GET');
    const end = await loop(w, GATEWAY).run({ ...r, startedAt: 1_000 }, null);
    assert.equal(end.kind, 'give-up');
    assert.equal(w.t, 1_000 + HOLD_MS);
  });
});

describe('the hold loop, standby profile', () => {
  it('served: one attempt, a fixed 5 s wait for a place', async () => {
    const w = new World();
    const a = w.node('A');
    w.set(a);
    const end = await loop(w, STANDBY).run(request('POST').r, a);
    assert.equal(end.kind, 'done');
    const e = w.events.find((x) => 'attempt' in x);
    assert.equal(e && 'admissionWaitMs' in e && e.admissionWaitMs, 5_000);
  });

  it('not-served: held, retried on the same active after 50, 100, 200, 250 ms, then the new leader', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SERVED, NOT_SERVED, NOT_SERVED, NOT_SERVED]);
    w.set(a).at(500, w.node('B'));
    const end = await loop(w, STANDBY).run(request('DELETE').r, a);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0', 'A@50', 'A@150', 'A@350', 'B@500']);
    assert.deepEqual(waits(w), ['50!A', '100!A', '200!A', '250!A']);
    // Each retry is counted as it goes out (forwardFailures), with what the previous attempt got.
    assert.deepEqual(hooks(w, 'resending'), ['A:not-served', 'A:not-served', 'A:not-served', 'B:not-served']);
  });

  it('while held, no leader known: the same active is tried again (it says "not served" itself)', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SERVED]);
    w.set(a).at(10, null);
    const end = await loop(w, STANDBY).run(request('GET').r, a);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0', 'A@50']);
  });

  it('while held, a not-sent is retried too', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SERVED, NOT_SENT]);
    w.set(a);
    const end = await loop(w, STANDBY).run(request('POST').r, a);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0', 'A@50', 'A@150']);
  });

  it('not-sent before any not-served: retried only on a newer leader known now, without waiting', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SENT]);
    const b = w.node('B');
    w.set(b);
    const end = await loop(w, STANDBY).run(request('POST').r, a);
    assert.equal(end.kind, 'done');
    assert.equal(end.leader, b);
    assert.deepEqual(attempts(w), ['A@0', 'B@0']);
    assert.deepEqual(waits(w), []);

    const w2 = new World();
    const a2 = w2.node('A', [NOT_SENT]);
    w2.set(a2).at(100, w2.node('B'));
    const end2 = await loop(w2, STANDBY).run(request('POST').r, a2);
    assert.deepEqual([end2.kind, end2.leader], ['give-up', a2]);
    assert.deepEqual(attempts(w2), ['A@0']);
    assert.deepEqual(waits(w2), []);
  });

  it('a request with a body gets exactly one attempt, whatever happens', async () => {
    for (const outcome of [NOT_SERVED, NOT_SENT]) {
      const w = new World();
      const a = w.node('A', [outcome]);
      w.set(w.node('B'));
      const end = await loop(w, STANDBY).run(request('POST', { replayable: () => false }).r, a);
      assert.equal(end.kind, 'give-up');
      assert.deepEqual(attempts(w), ['A@0']);
    }
    const w = new World();
    const a = w.node('A', [MAYBE_SENT]);
    const end = await loop(w, STANDBY).run(request('POST', { replayable: () => false }).r, a);
    assert.equal(end.kind, 'unknown');
  });

  it('maybe-sent: "outcome unknown" for a write, a 307 (give-up) for a read, never retried', async () => {
    for (const [method, kind] of [
      ['POST', 'unknown'],
      ['GET', 'give-up'],
      ['LIST', 'give-up'],
    ] as const) {
      const w = new World();
      const a = w.node('A', [MAYBE_SENT]);
      w.set(w.node('B'));
      const end = await loop(w, STANDBY).run(request(method).r, a);
      assert.equal(end.kind, kind, method);
      assert.deepEqual(attempts(w), ['A@0']);
    }
  });

  it('busy: ends as busy (a 307), not retried', async () => {
    const w = new World();
    const a = w.node('A', [BUSY]);
    const end = await loop(w, STANDBY).run(request('GET').r, a);
    assert.deepEqual([end.kind, end.leader], ['busy', a]);
    assert.deepEqual(hooks(w, 'attempted'), []);
  });

  it('held until the deadline, then given up (a 307 to the last leader tried)', async () => {
    const w = new World();
    const a = w.node(
      'A',
      Array.from({ length: 100 }, () => ({ outcome: NOT_SERVED, takesMs: 10 })),
    );
    w.set(a);
    const end = await loop(w, STANDBY).run(request('GET').r, a);
    assert.deepEqual([end.kind, end.leader], ['give-up', a]);
    assert.ok(w.t >= HOLD_MS && w.t < HOLD_MS + 260, String(w.t));
  });

  it('the client leaves during a hold: done', async () => {
    const w = new World();
    const { r, leave } = request('GET');
    const a = w.node('A', [NOT_SERVED]);
    w.set(a).leaveAt(20, leave);
    const end = await loop(w, STANDBY).run(r, a);
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['A@0']);
    assert.deepEqual(hooks(w, 'resending'), []);
  });

  it('a leader without a cluster channel found while held: counted as not sent, never attempted', async () => {
    const w = new World();
    const a = w.node('A', [NOT_SERVED]);
    const c = w.node('C', [], false);
    const d = w.node('D');
    w.set(a).at(10, c).at(300, d);
    const end = await loop(w, STANDBY).run(request('GET').r, a);
    assert.equal(end.kind, 'done');
    assert.equal(end.leader, d);
    assert.deepEqual(attempts(w), ['A@0', 'D@300']);
    assert.deepEqual(hooks(w, 'attempted'), ['A:not-served', 'D:served']);
    // C is tried (as not sent) until D appears: a new leader, else the same one.
    assert.deepEqual(hooks(w, 'resending'), ['C:not-served', 'C:not-sent', 'D:not-sent']);
  });
});

describe('the hold loop, gateway profile, a read started on a standby (spread routing)', () => {
  it('served by the standby: nothing is sent to the active', async () => {
    const w = new World();
    w.set(w.node('A'));
    const end = await loop(w, GATEWAY).run(request('GET').r, w.node('S'));
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['S@0']);
  });

  it('not served, not reached or reset on the standby: retried on the active at once, without a wait', async () => {
    for (const failure of [NOT_SERVED, NOT_SENT, MAYBE_SENT]) {
      const w = new World();
      w.set(w.node('A'));
      const end = await loop(w, GATEWAY).run(request('GET').r, w.node('S', [failure]));
      assert.equal(end.kind, 'done', failure.kind);
      assert.deepEqual(attempts(w), ['S@0', 'A@0'], failure.kind);
      assert.deepEqual(waits(w), [], failure.kind);
      assert.deepEqual(hooks(w, 'resending'), [`A:${failure.kind}`]);
    }
  });

  it('the standby unreachable during a failover: held until the next leader, as any request', async () => {
    const w = new World();
    w.at(2_000, w.node('B'));
    const end = await loop(w, GATEWAY).run(request('GET').r, w.node('S', [NOT_SENT]));
    assert.equal(end.kind, 'done');
    assert.deepEqual(attempts(w), ['S@0', 'B@2000']);
  });
});
