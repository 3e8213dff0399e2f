/**
 * A sealed node's two guards around init, in-process on the in-memory backend with reads of the
 * root key counted and held at will: the unseal loop does not undo an unseal that `sys/init` made
 * while the loop's first look at storage was in flight (which started HA a second time), and
 * `initializedNow` (unauthenticated: GET and PUT sys/init) shares one storage read among
 * concurrent callers and keeps a yes once seen, until the node reseals on a storage that lost its
 * root key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import pino from 'pino';
import { sealOf } from '../../node/api/node-api';
import { initialize, ROOT_KEY_PATH } from '../../node/barrier/seal';
import { NodeServer } from '../../node/node-server';
import { nodeSettings } from '../../node/settings';
import { loadConfig } from '../../shared/config/load';
import { type NodeConfig, nodeSchema } from '../../shared/config/node-schema';
import type { LockHolder } from '../../shared/storage/backend';
import { InmemBackend, InmemHABackend, InmemStore } from '../../shared/storage/inmem';

/** The unseal loop looks at storage again this long after a look that did not unseal (UNSEAL_POLL_MS). */
const UNSEAL_POLL_MS = 1_000;

const SEAL_KEY = randomBytes(32).toString('base64');

/** A read of the root key held by `holdNext`. */
interface HeldRead {
  /** Resolves when the read has been made. */
  arrived: Promise<void>;
  /** Delivers the answer. */
  release: () => void;
}

/**
 * The in-memory backend with its reads of the root key (what `unseal` and `isInitialized` look
 * at) counted, and the next ones held on request.
 */
class GatedBackend extends InmemBackend {
  rootReads = 0;
  private readonly releases = new Set<() => void>();
  private readonly holds: { answerAtCall: boolean; arrive: () => void; gate: Promise<void> }[] = [];

  /**
   * Holds the next read of the root key until `release()`. `answerAtCall`: the answer is what
   * storage held when the read was made (a reply that arrives late); otherwise, at release.
   */
  holdNext(answerAtCall: boolean): HeldRead {
    let arrive!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => {
      arrive = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    this.holds.push({ answerAtCall, arrive, gate });
    this.releases.add(release);
    return { arrived, release };
  }

  /** Releases every read held, so that the node can close after a failed assertion. */
  releaseAll(): void {
    for (const release of this.releases) release();
  }

  override async get(path: string): Promise<Buffer | null> {
    if (path !== ROOT_KEY_PATH) return super.get(path);
    this.rootReads += 1;
    const hold = this.holds.shift();
    if (!hold) return super.get(path);
    const early = hold.answerAtCall ? await super.get(path) : null;
    hold.arrive();
    await hold.gate;
    return hold.answerAtCall ? early : super.get(path);
  }
}

/**
 * The in-memory HA backend, whose calls never answer once the node has closed it: HA machinery
 * the node lost track of (started twice) then waits forever instead of retrying on timers, which
 * would keep the test process from exiting when the first test fails (the loop's guard gone).
 */
class HaltingHABackend extends InmemHABackend {
  private halted = false;

  private unlessHalted<T>(call: () => Promise<T>): Promise<T> {
    return this.halted ? new Promise<T>(() => {}) : call();
  }

  override acquire(value: string, ttlMs: number): Promise<number | null> {
    return this.unlessHalted(() => super.acquire(value, ttlMs));
  }

  override renew(value: string, ttlMs: number): Promise<boolean> {
    return this.unlessHalted(() => super.renew(value, ttlMs));
  }

  override release(value: string): Promise<boolean> {
    return this.unlessHalted(() => super.release(value));
  }

  override holder(): Promise<LockHolder | null> {
    return this.unlessHalted(() => super.holder());
  }

  override close(): Promise<void> {
    this.halted = true;
    return super.close();
  }
}

interface LogLine {
  msg: string;
  from?: string;
  to?: string;
}

const running: { node: NodeServer; data: GatedBackend }[] = [];
afterEach(async () => {
  await Promise.all(
    running.splice(0).map(({ node, data }) => {
      data.releaseAll();
      return node.close();
    }),
  );
});

/**
 * A node started on a fresh uninitialized store (no cluster listener, API on an ephemeral
 * loopback port), with its unseal loop's first look at storage held (`look`; `answerAtCall`
 * as for `holdNext`), its data backend and its log.
 */
async function startedNode(answerAtCall: boolean) {
  const store = new InmemStore();
  const settings = nodeSettings(
    await loadConfig<NodeConfig>(nodeSchema, {
      env: {},
      useConfigFile: false,
      overrides: {
        listener: { address: '127.0.0.1:0' },
        storage: { type: 'inmem' },
        seal: { key: SEAL_KEY },
        advertisement_key: randomBytes(32).toString('base64'),
        advertisement_signing_key: randomBytes(32).toString('base64'),
        api_addr: 'http://127.0.0.1:8200',
        disable_clustering: true,
        node_id: 'node-1',
        log_level: 'info',
        shutdown_timeout: '1s',
      },
    }),
  );
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as LogLine) });
  const data = new GatedBackend(store);
  const node = new NodeServer(settings, {
    data,
    ha: new HaltingHABackend(store),
    split: false,
    log,
    gateways: null,
  });
  running.push({ node, data });
  const look = data.holdNext(answerAtCall);
  await node.start();
  await look.arrived;
  return { store, node, data, lines, look };
}

/** Polls `predicate` every 5 ms until it holds (fails after `timeoutMs`). */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Another node initializes `store` (with the same seal key). */
async function initializeElsewhere(store: InmemStore): Promise<void> {
  await initialize(new InmemBackend(store), Buffer.from(SEAL_KEY, 'base64'), () => []);
}

describe('NodeServer: init while sealed', () => {
  it('an init answered during the unseal loop’s first look at storage is not undone, and HA starts once', async () => {
    // The loop's first look finds no root key, and its answer is delivered only after the init.
    const { node, lines, look } = await startedNode(true);
    // sys/init, as the route does it: refused when initialized, else initialize (which unseals).
    assert.equal(await node.initializedNow(), false);
    await node.initialize();
    assert.equal(sealOf(node.state()), 'unsealed');

    look.release();
    await tick();
    assert.equal(sealOf(node.state()), 'unsealed', 'the late "uninitialized" sealed the node again');
    const transitions = lines.filter((l) => l.msg === 'node status').map((l) => `${l.from}→${l.to}`);
    assert.ok(!transitions.slice(1).some((t) => t.endsWith('→sealed')), transitions.join(', '));

    // Past the loop's next look: nothing unsealed the node a second time (a second elector,
    // watcher and heartbeats running beside the first).
    await new Promise((r) => setTimeout(r, UNSEAL_POLL_MS + 200));
    assert.equal(lines.filter((l) => l.msg === 'unsealed').length, 1);
  });

  it('concurrent initializedNow callers share one storage read; a no is not kept', async () => {
    // The unseal loop's first look stays in flight throughout: only initializedNow reads.
    const { store, node, data, look } = await startedNode(false);
    assert.equal(data.rootReads, 1);

    const shared = data.holdNext(false);
    const answers = Array.from({ length: 20 }, () => node.initializedNow());
    await shared.arrived;
    await tick();
    assert.equal(data.rootReads, 2, 'one read for twenty callers');
    shared.release();
    assert.deepEqual(await Promise.all(answers), Array(20).fill(false));

    // Once the shared read has answered, the next caller reads again.
    assert.equal(await node.initializedNow(), false);
    assert.equal(data.rootReads, 3);

    // Let the loop end its look on an initialized storage (close() waits for the loop).
    await initializeElsewhere(store);
    look.release();
  });

  it('initializedNow keeps a yes: no more reads, and a storage that reads uninitialized again changes nothing', async () => {
    const { store, node, data, look } = await startedNode(false);
    await initializeElsewhere(store);
    assert.equal(await node.initializedNow(), true);
    assert.equal(data.rootReads, 2);

    // The root key no longer reads (a lagging replica, a failover): still initialized, unread.
    const other = new InmemBackend(store);
    const rootKey = await other.get(ROOT_KEY_PATH);
    await other.delete(ROOT_KEY_PATH);
    assert.equal(await node.initializedNow(), true);
    assert.equal(await node.initializedNow(), true);
    assert.equal(data.rootReads, 2);

    await other.put(ROOT_KEY_PATH, rootKey as Buffer);
    look.release();
  });

  it('a node that reseals (its storage lost the root key) forgets the yes: sys/init is accepted again', async () => {
    const { store, node, data, look } = await startedNode(false);
    await initializeElsewhere(store);
    assert.equal(await node.initializedNow(), true);

    // The loop unseals; the elector wins the lock at once and, becoming active, looks for the root key.
    const activation = data.holdNext(false);
    look.release();
    await activation.arrived;
    // Meanwhile Redis lost its data: the node seals again and waits for an init.
    await new InmemBackend(store).delete(ROOT_KEY_PATH);
    activation.release();
    await waitFor('sealed, uninitialized', () => sealOf(node.state()) === 'uninitialized');

    assert.equal(await node.initializedNow(), false, 'GET sys/init says initialized, sys/seal-status not');
    await node.initialize();
    assert.equal(sealOf(node.state()), 'unsealed');
  });
});
