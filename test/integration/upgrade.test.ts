/**
 * The rolling upgrade from the previous release (unsigned advertisements carrying the leader's
 * key; gateways presenting it), as docs/runbook.md describes it, with the previous release's own
 * build: nodes first with LEADERWAY_ADVERTISEMENT_LEGACY=true while an old gateway keeps serving
 * a read/write load, then a new gateway, then nodes out of legacy mode — no request fails, and
 * the old-format advertisement is gone at the end.
 *
 * The previous release is built from git (a worktree at PREVIOUS_RELEASE sharing our
 * node_modules, about 10 s); without that commit (a shallow clone) the test is skipped, saying so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawRedis, waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Load, startLoad } from '../helpers/load';
import { freePorts } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

/** The last commit whose nodes write the unsigned format (before least-privilege gateways). */
const PREVIOUS_RELEASE = '05a9684';
const ROOT = path.resolve(__dirname, '..', '..');
const LOAD_WORKERS = 4;

function git(args: string[]): string {
  return execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function previousAvailable(): string | false {
  try {
    git(['cat-file', '-e', `${PREVIOUS_RELEASE}^{commit}`]);
    return false;
  } catch {
    return `commit ${PREVIOUS_RELEASE} (the previous release) is not in this clone (shallow?): the upgrade test needs it`;
  }
}

const skip = previousAvailable();

describe('rolling upgrade from unsigned advertisements', { skip }, () => {
  let dir = '';
  let oldBin = '';
  let redis: RedisServer;
  const keys = testKeys();
  const nodes: Proc[] = [];
  let gwOld: Proc | undefined;
  let gwNew: Proc | undefined;
  let oldPort = 0;
  let newPort = 0;
  let token = '';

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lw-previous-'));
    const tree = path.join(dir, 'tree');
    git(['worktree', 'add', '--detach', '--force', tree, PREVIOUS_RELEASE]);
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: tree,
        stdio: 'ignore',
      },
    );
    oldBin = path.join(tree, 'bin', 'leaderway');
    redis = await startRedis();
    [oldPort, newPort] = (await freePorts(2)) as [number, number];
  });

  after(async () => {
    await Promise.all([gwOld, gwNew, ...nodes].map((p) => p?.stop('SIGKILL')));
    await redis?.stop();
    if (dir) {
      try {
        git(['worktree', 'remove', '--force', path.join(dir, 'tree')]);
      } catch {
        // Removed below either way; `git worktree prune` forgets it.
      }
      rmSync(dir, { recursive: true, force: true });
      git(['worktree', 'prune']);
    }
  });

  const apiAddr = () => `http://127.0.0.1:${oldPort}`;
  const startNode = (name: string, o: { old?: boolean; legacy?: boolean }) =>
    spawnNode(name, {
      redisUrl: redis.url,
      keys,
      apiAddr: apiAddr(),
      bin: o.old ? oldBin : undefined,
      env: o.legacy ? { LEADERWAY_ADVERTISEMENT_LEGACY: 'true' } : {},
    });

  /** Replaces every node in turn (SIGTERM, then a fresh one), checking each new one serves. */
  async function roll(o: { legacy: boolean }): Promise<void> {
    for (let i = 0; i < nodes.length; i++) {
      const old = nodes[i] as Proc;
      assert.equal(await old.stop('SIGTERM'), 0, `${old.name} stopped cleanly`);
      const next = await startNode(`${old.name.replace(/-.*/, '')}-${o.legacy ? 'legacy' : 'new'}`, o);
      nodes[i] = next;
      await waitFor(
        async () => [200, 429].includes((await call(next.url, '/v1/sys/health')).status),
        20_000,
        `${next.name} unsealed`,
      );
      // Standby or active, old leader or new: it serves a client directly (a standby forwards).
      await waitFor(
        async () => (await call(next.url, '/v1/secret/data/upgrade', { token })).status === 200,
        20_000,
        `${next.name} serving`,
      );
    }
  }

  it('old cluster → nodes in legacy mode → new gateway → nodes out of legacy mode, no request failing', async () => {
    for (const n of ['n1', 'n2', 'n3']) nodes.push(await startNode(`${n}-old`, { old: true }));
    token = await initCluster((nodes[0] as Proc).url);
    gwOld = await spawnGateway('gw-old', { redisUrl: redis.url, keys, port: oldPort, bin: oldBin });
    await waitActive(nodes, 20_000);
    await waitFor(
      async () => (await call(gwOld!.url, '/-/ready')).status === 200,
      20_000,
      'old gateway ready',
    );
    const w = await call(gwOld.url, '/v1/secret/data/upgrade', { token, body: { data: { v: 'before' } } });
    assert.equal(w.status, 200, w.text);

    let load: Load = await startLoad({ base: gwOld.url, token, workers: LOAD_WORKERS, mixed: true });
    await roll({ legacy: true });
    const throughOld = await load.stop();
    assert.deepEqual(throughOld.failures, [], 'the old gateway failed requests while nodes were upgraded');
    assert.ok(throughOld.ok > 0);

    gwNew = await spawnGateway('gw-new', { redisUrl: redis.url, keys, port: newPort });
    await waitFor(
      async () => (await call(gwNew!.url, '/-/ready')).status === 200,
      20_000,
      'new gateway ready',
    );
    await gwOld.stop('SIGTERM');
    load = await startLoad({ base: gwNew.url, token, workers: LOAD_WORKERS, mixed: true });
    await roll({ legacy: false });
    const throughNew = await load.stop();
    assert.deepEqual(throughNew.failures, [], 'the new gateway failed requests while nodes left legacy mode');

    const r = await call(gwNew.url, '/v1/secret/data/upgrade', { token });
    assert.deepEqual((r.body as { data: { data: unknown } }).data.data, { v: 'before' }, 'data survived');
    // No node writes the old format any more; the last one written went with its term.
    const raw = await rawRedis(redis.url);
    try {
      await waitFor(
        async () =>
          (await raw.zrangebylex('{leaderway}/index', '[core/leader/', '[core/leader/\xff')).length === 0,
        15_000,
        'no old-format advertisement left',
      );
    } finally {
      raw.disconnect();
    }
  });
});
