/**
 * The gateway's body admission, accounted in milliseconds with fake streams and a fake clock
 * (issue 29): the replay budget's lanes and per-address / per-connection shares, every byte
 * returned exactly once however a body ends, the upload lane's per-address places served in
 * turn, and an upgrade's pool place given back whenever its client goes away.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Duplex, Readable } from 'node:stream';
import { describe, it, mock } from 'node:test';
import type { Dispatcher } from 'undici';
import { proxyUpgrade } from '../../gateway/upgrade';
import { addressGroup } from '../../shared/http/headers';
import {
  DEFAULT_REPLAY_LIMITS,
  ReplayBudget,
  type ReplayBudgetLimits,
  SMALL_BODY_BYTES,
} from '../../shared/http/replay-budget';
import { ReplayableBody } from '../../shared/http/replayable-body';
import { Admission, type Cancellation } from '../../shared/leader/admission';
import type { Leader } from '../../shared/leader/leader-watcher';

const KIB = 1024;
const MIB = 1024 * KIB;

/** The gateway's limits at a thousandth of the size: 64 KiB in all, 16 KiB reserved for small bodies. */
const LIMITS: ReplayBudgetLimits = {
  total: 64 * KIB,
  smallReserve: 16 * KIB,
  perAddress: { small: 4 * KIB, large: 6 * KIB },
  perConnection: 8 * KIB,
};

/** A body of `n` bytes arriving in one chunk. */
const bytes = (n: number) => Readable.from([Buffer.alloc(n, 0x61)]);

/** A client stream that sends `first` and then never sends more (until `end()` or `fail()`). */
function stalled(first: Buffer) {
  let push!: (b: Buffer | null) => void;
  let fail!: (e: Error) => void;
  async function* source(): AsyncGenerator<Buffer> {
    yield first;
    for (;;) {
      const next = await new Promise<Buffer | null>((resolve, reject) => {
        push = resolve;
        fail = reject;
      });
      if (next === null) return;
      yield next;
    }
  }
  return {
    source: source(),
    end: () => push(null),
    fail: (e: Error) => fail(e),
    send: (b: Buffer) => push(b),
  };
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ReplayBudget: lanes and shares', () => {
  it('large bodies cannot take the small reserve: the report’s attack leaves room for every small body', async () => {
    const budget = new ReplayBudget(LIMITS);
    // Issue 29, scaled: 64 bodies at the cap held one byte short, from 8 addresses.
    const held: ReplayableBody[] = [];
    let copied = 0;
    for (let i = 0; i < 64; i++) {
      const b = new ReplayableBody(bytes(KIB - 1), {
        budget,
        lane: 'large',
        client: `10.0.0.${i % 8}`,
        cap: KIB,
      });
      if (await b.prefetch()) copied++;
      held.push(b);
    }
    assert.equal(
      budget.held('large'),
      6 * 8 * (KIB - 1),
      'each address stopped at its share of the large lane',
    );
    assert.ok(copied < 64, 'the rest stream (not replayable), they do not take more');
    assert.equal(budget.held('small'), 0);
    // A login or a KV write from anyone — an attacking address too — still gets its copy.
    for (const client of ['10.0.0.0', '192.0.2.1']) {
      const login = new ReplayableBody(bytes(330), { budget, lane: 'small', client, cap: SMALL_BODY_BYTES });
      assert.equal(await login.prefetch(), true, `a small body from ${client} is read whole`);
      login.dispose();
    }
    for (const b of held) b.dispose();
    assert.equal(budget.held(), 0);
  });

  it('one address has a quarter of the reserve, then draws on the large lane; other addresses keep theirs', () => {
    const budget = new ReplayBudget(LIMITS);
    const conn = () => ({});
    const a = Array.from({ length: 6 }, () => budget.claim('small', 'A', conn()));
    for (const c of a.slice(0, 4)) assert.equal(c.take(KIB), true);
    assert.equal(budget.heldBy('A', 'small'), 4 * KIB, 'its share of the reserve');
    assert.equal(a[4]?.take(KIB), true, 'past it: the large lane');
    assert.equal(budget.heldBy('A', 'large'), KIB);
    const b = budget.claim('small', 'B', conn());
    assert.equal(b.take(4 * KIB), true, 'B still has its whole share of the reserve');
    assert.equal(budget.heldBy('B', 'small'), 4 * KIB);
    // A large body never touches the reserve, even when it has room.
    const big = budget.claim('large', 'C', conn());
    assert.equal(big.take(6 * KIB), true);
    assert.equal(big.take(1), false, 'C’s large share is spent, and the reserve is not its to use');
    for (const c of [...a, b, big]) c.release();
    assert.equal(budget.held(), 0);
    assert.equal(budget.heldBy('A', 'small') + budget.heldBy('A', 'large'), 0, 'the address is forgotten');
  });

  it('one connection holds at most its share, across lanes and pipelined bodies', () => {
    const budget = new ReplayBudget(LIMITS);
    const socket = {};
    const first = budget.claim('large', 'A', socket);
    assert.equal(first.take(6 * KIB), true);
    const second = budget.claim('small', 'A', socket);
    assert.equal(second.take(2 * KIB), true);
    assert.equal(second.take(1), false, 'the connection’s 8 KiB are spent');
    assert.equal(budget.heldOn(socket), 8 * KIB);
    assert.equal(
      budget.claim('small', 'A', {}).take(KIB),
      true,
      'another connection of the same address still can',
    );
    first.release();
    assert.equal(second.take(KIB), true, 'room again once the first body ended');
  });

  it('a claim gives back every byte once, and takes nothing after', () => {
    const budget = new ReplayBudget(LIMITS);
    const socket = {};
    const c = budget.claim('small', 'A', socket);
    assert.equal(c.take(3 * KIB), true);
    assert.equal(c.take(2 * KIB), true, 'spills into the large lane');
    c.release();
    c.release();
    assert.equal(budget.held(), 0);
    assert.equal(budget.heldOn(socket), 0);
    assert.equal(c.take(1), false, 'a released claim takes nothing');
    assert.equal(budget.held(), 0);
  });
});

describe('ReplayableBody: bytes come back however the body ends', () => {
  it('a client that goes away mid-body: prefetch rejects, dispose returns what it held', async () => {
    const budget = new ReplayBudget(LIMITS);
    const client = stalled(Buffer.alloc(3 * KIB));
    const body = new ReplayableBody(client.source, {
      budget,
      lane: 'small',
      client: 'A',
      cap: SMALL_BODY_BYTES,
    });
    const read = body.prefetch();
    await tick();
    assert.equal(budget.held(), 3 * KIB, 'what arrived is held');
    client.fail(new Error('aborted'));
    await assert.rejects(read);
    body.dispose();
    assert.equal(budget.held(), 0);
  });

  it('an attempt still streaming after the request ended copies nothing more', async () => {
    const budget = new ReplayBudget(LIMITS);
    const client = stalled(Buffer.alloc(KIB));
    const body = new ReplayableBody(client.source, { budget, lane: 'large', client: 'A', cap: 4 * KIB });
    const attempt = body.stream();
    attempt.on('data', () => undefined);
    attempt.on('error', () => undefined);
    await tick();
    assert.equal(budget.held(), KIB);
    body.dispose(); // the request ended (the leader answered early, the client reset...)
    client.send(Buffer.alloc(KIB)); // ...and a late chunk still arrives for the old attempt
    await tick();
    assert.equal(budget.held(), 0, 'nothing taken after dispose, so nothing is left to return');
    client.end();
  });
});

describe('Admission with a per-key limit (the upload lane)', () => {
  it('one key holds at most its places; the others still get in', async () => {
    const gate = new Admission(4, { perKey: 2 });
    assert.equal(await gate.enter(undefined, 1_000, 'A'), 'admitted');
    assert.equal(await gate.enter(undefined, 1_000, 'A'), 'admitted');
    const third = gate.enter(undefined, 1_000, 'A');
    assert.equal(gate.queued, 1, 'A waits at its limit though places are free');
    assert.equal(await gate.enter(undefined, 1_000, 'B'), 'admitted', 'B is not behind A');
    gate.leave('A');
    assert.equal(await third, 'admitted');
    assert.equal(gate.heldBy('A'), 2);
    for (const k of ['A', 'A', 'B']) gate.leave(k);
    assert.equal(gate.inUse, 0);
    assert.equal(gate.heldBy('A') + gate.heldBy('B'), 0);
  });

  it('waiting keys are served in turn, not in order of arrival', async () => {
    const gate = new Admission(1, { perKey: 1 });
    await gate.enter(undefined, 1_000, 'X');
    const order: string[] = [];
    const waits = [
      ...Array.from({ length: 3 }, (_, i) =>
        gate.enter(undefined, 1_000, 'A').then(() => order.push(`A${i}`)),
      ),
      gate.enter(undefined, 1_000, 'B').then(() => order.push('B0')),
    ];
    for (let i = 0; i < 4; i++) {
      gate.leave(i === 0 ? 'X' : (order[i - 1]?.[0] as string));
      await tick();
    }
    await Promise.all(waits);
    assert.deepEqual(order, ['A0', 'B0', 'A1', 'A2'], 'B’s one request did not wait behind all of A’s');
  });

  it('a wait ends at its bound or when the client goes, leaving the queue clean (fake clock)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const gate = new Admission(1, { perKey: 1 });
      await gate.enter(undefined, 1_000, 'A');
      const timedOut = gate.enter(undefined, 10_000, 'A');
      let notify: (() => void) | undefined;
      const cancel: Cancellation & { aborted: boolean } = {
        aborted: false,
        onAbort: (fn) => {
          notify = fn;
        },
      };
      const gone = gate.enter(cancel, 10_000, 'A');
      assert.equal(gate.queued, 2);
      mock.timers.tick(9_999);
      await tick();
      assert.equal(gate.queued, 2, 'not before its bound');
      cancel.aborted = true;
      notify?.();
      assert.equal(await gone, 'aborted');
      mock.timers.tick(1);
      assert.equal(await timedOut, 'timeout');
      assert.equal(gate.queued, 0);
      gate.leave('A');
      assert.equal(gate.inUse, 0);
      assert.equal(gate.heldBy('A'), 0);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('addressGroup: whose per-client limits an address counts against', () => {
  it('IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64, anything else as is', () => {
    const cases: Array<[string, string]> = [
      ['192.0.2.7', '192.0.2.7'],
      ['::ffff:192.0.2.7', '192.0.2.7'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
      ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
      ['fe80::1%eth0', 'fe80:0:0:0::/64'],
      ['64:ff9b::192.0.2.7', '64:ff9b:0:0::/64'],
      ['not-an-address', 'not-an-address'],
    ];
    for (const [addr, group] of cases) assert.equal(addressGroup(addr), group, addr);
  });
});

/** A client socket that records what the gateway writes to it. */
function clientSocket() {
  const written: string[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk.toString());
      cb();
    },
  });
  socket.on('error', () => undefined);
  return { socket, written };
}

/**
 * A leader whose pool admission the test drives: `upgrade` waits for `admit()` (or the client's
 * cancellation), then hands the test the relay and a controller whose abort ends the exchange as
 * undici does (onResponseError).
 */
function fakeLeader(o: { honourCancel?: boolean } = {}) {
  const honour = o.honourCancel ?? true;
  let admit!: (ok: boolean) => void;
  const state = {
    released: 0,
    relay: undefined as Dispatcher.DispatchHandler | undefined,
    controller: undefined as (Dispatcher.DispatchController & { aborted: boolean }) | undefined,
    admit: (ok = true) => admit(ok),
  };
  const client = {
    async upgrade(
      _opts: unknown,
      handler: (release: () => void) => Dispatcher.DispatchHandler,
      _waitMs: number,
      cancel?: Cancellation,
    ): Promise<'sent' | 'busy' | 'aborted'> {
      const ok = await new Promise<boolean | 'aborted'>((resolve) => {
        admit = resolve;
        if (!honour) return;
        cancel?.onAbort(() => resolve('aborted'));
        if (cancel?.aborted) resolve('aborted');
      });
      if (honour) cancel?.onAbort(undefined);
      if (ok === 'aborted') return 'aborted';
      if (!ok) return 'busy';
      let done = false;
      const relay = handler(() => {
        if (!done) state.released++;
        done = true;
      });
      const controller = {
        aborted: false,
        paused: false,
        reason: null,
        abort(err: Error) {
          if (this.aborted) return;
          this.aborted = true;
          relay.onResponseError?.(this as unknown as Dispatcher.DispatchController, err);
        },
        pause() {
          this.paused = true;
        },
        resume() {
          this.paused = false;
        },
      };
      state.relay = relay;
      state.controller = controller as unknown as Dispatcher.DispatchController & { aborted: boolean };
      return 'sent';
    },
  };
  return { leader: { ad: {}, client } as unknown as Leader, state };
}

const upgradeRequest = {
  url: '/v1/sys/events/subscribe',
  headers: { upgrade: 'websocket' },
} as unknown as IncomingMessage;

describe('upgrades give their pool place back however the client leaves', () => {
  it('gone while waiting for a place: the wait is cancelled, no place is taken', async () => {
    const { socket } = clientSocket();
    const { leader, state } = fakeLeader();
    const relayed = proxyUpgrade(upgradeRequest, socket, Buffer.alloc(0), leader, []);
    await tick();
    socket.destroy();
    const ended = await Promise.race([relayed.then(() => true), sleep(100).then(() => false)]);
    assert.ok(ended, 'the wait ended when the client went away');
    assert.equal(state.relay, undefined, 'nothing was sent to the leader');
  });

  it('gone before the request left (its close already past): aborted at start, place released', async () => {
    const { socket } = clientSocket();
    // Admitted first; the connection to the leader is made (onRequestStart) only after the
    // client's close was delivered.
    const { leader, state } = fakeLeader({ honourCancel: false });
    const relayed = proxyUpgrade(upgradeRequest, socket, Buffer.alloc(0), leader, []);
    state.admit();
    await relayed;
    socket.destroy();
    await tick();
    const relay = state.relay as Dispatcher.DispatchHandler;
    const c = state.controller as Dispatcher.DispatchController & { aborted: boolean };
    relay.onRequestStart?.(c, {});
    assert.equal(c.aborted, true, 'the relay saw the socket was gone');
    assert.equal(state.released, 1);
  });

  it('gone while the answer streams: aborted instead of waiting for a drain that never comes', async () => {
    const { socket, written } = clientSocket();
    const { leader, state } = fakeLeader();
    const relayed = proxyUpgrade(upgradeRequest, socket, Buffer.alloc(0), leader, []);
    state.admit();
    await relayed;
    const relay = state.relay as Dispatcher.DispatchHandler;
    const c = state.controller as Dispatcher.DispatchController & { aborted: boolean };
    relay.onRequestStart?.(c, {});
    relay.onResponseStart?.(c, 403, {}, '');
    assert.match(written.join(''), /^HTTP\/1\.1 403/);
    // Destroyed, its 'close' not yet delivered: the data must not wait for a 'drain'.
    socket.destroy();
    relay.onResponseData?.(c, Buffer.from('{"errors":["permission denied"]}'));
    assert.equal(c.aborted, true);
    assert.equal(state.released, 1);
    await tick();
    assert.equal(state.released, 1, 'released once, though the close came too');
  });

  it('answered and ended: released once', async () => {
    const { socket } = clientSocket();
    const { leader, state } = fakeLeader();
    const relayed = proxyUpgrade(upgradeRequest, socket, Buffer.alloc(0), leader, []);
    state.admit();
    await relayed;
    const relay = state.relay as Dispatcher.DispatchHandler;
    const c = state.controller as Dispatcher.DispatchController;
    relay.onRequestStart?.(c, {});
    relay.onResponseStart?.(c, 404, {}, '');
    relay.onResponseData?.(c, Buffer.from('{}'));
    relay.onResponseEnd?.(c, {});
    assert.equal(state.released, 1);
    socket.destroy();
    await tick();
    assert.equal(state.released, 1, 'a close after the end releases nothing more');
  });
});

describe('the gateway’s default limits', () => {
  it('64 MiB in all, 16 MiB of it for small bodies; a quarter of the reserve or an eighth of the rest per address', () => {
    assert.deepEqual(DEFAULT_REPLAY_LIMITS, {
      total: 64 * MIB,
      smallReserve: 16 * MIB,
      perAddress: { small: 4 * MIB, large: 6 * MIB },
      perConnection: MIB,
    });
  });
});
