/**
 * `leaderway status` / `members` against real clusters: the dev cluster (`leaderway dev`, in-memory
 * storage) and three nodes on Redis behind a gateway, asked through the gateway as an operator
 * would (VAULT_ADDR, VAULT_TOKEN). Exit codes: 0 healthy, 1 a node's heartbeat is late, 2 no
 * answer, no active node or a refused token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { StatusReport } from '../../cli/status-command';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { BIN, type Proc, spawnGateway, spawnLeaderway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function status(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as NodeJS.ErrnoException & { code?: unknown }).code ?? 1) : 0;
        resolve({ code: Number.isInteger(code) ? code : 1, stdout, stderr });
      },
    );
  });
}

describe('leaderway status on the dev cluster', () => {
  let dev: Proc;
  let gateway = '';
  const token = 'lw-dev-status-token';

  before(async () => {
    const gwPort = await freePort();
    const nodePort = await freePort();
    gateway = `http://127.0.0.1:${gwPort}`;
    dev = await spawnLeaderway(
      'dev',
      ['dev'],
      {
        LEADERWAY_DEV_ROOT_TOKEN: token,
        LEADERWAY_DEV_GATEWAY_ADDR: `127.0.0.1:${gwPort}`,
        LEADERWAY_DEV_NODE_PORT: String(nodePort),
      },
      { port: gwPort },
      { waitListening: false },
    );
    await waitFor(
      async () => (await call(gateway, '/-/ready')).status === 200,
      30_000,
      'the dev gateway ready',
    );
  });

  after(async () => {
    await dev?.stop('SIGKILL');
  });

  it('prints the leader and three heartbeating nodes, and exits 0', async () => {
    // Standbys echo every second: wait until all three are in the table.
    const r = await waitFor(
      async () => {
        const x = await status(['status', '--format', 'json'], { VAULT_ADDR: gateway, VAULT_TOKEN: token });
        return x.code === 0 && (JSON.parse(x.stdout) as StatusReport).nodes.length === 3 ? x : null;
      },
      20_000,
      'three nodes in the status',
    );
    const report = JSON.parse(r.stdout) as StatusReport;
    assert.equal(report.status, 'healthy');
    assert.equal(report.nodes.filter((n) => n.role === 'active').length, 1);
    assert.ok((report.leader?.epoch ?? 0) > 0, 'the epoch is reported');
    assert.equal(report.leader?.node, report.nodes.find((n) => n.active_node)?.hostname);
    const table = await status(['status'], { VAULT_ADDR: gateway, VAULT_TOKEN: token });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Leader: \S+ \(http:\/\/127\.0\.0\.1:\d+\), epoch \d+, active since /m);
    assert.match(table.stdout, /^Status: healthy$/m);
    assert.equal(table.stdout.split('\n').filter((l) => /^\S+ +(active|standby) +http/.test(l)).length, 3);
  });
});

describe('leaderway status on Redis through a gateway', () => {
  let redis: RedisServer;
  const nodes: Proc[] = [];
  let gw: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    const port = await freePort();
    for (const n of ['n1', 'n2', 'n3'])
      nodes.push(await spawnNode(n, { redisUrl: redis.url, keys, apiAddr: `http://127.0.0.1:${port}` }));
    token = await initCluster((nodes[0] as Proc).url);
    await waitActive(nodes, 20_000);
    gw = await spawnGateway('gw', { redisUrl: redis.url, keys, port });
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
  });

  after(async () => {
    await Promise.all([gw?.stop('SIGKILL'), ...nodes.map((n) => n.stop('SIGKILL'))]);
    await redis?.stop();
  });

  it('is healthy, then degraded (exit 1) once a standby stops heartbeating', async () => {
    const env = { VAULT_ADDR: gw.url, VAULT_TOKEN: token };
    await waitFor(
      async () => {
        const x = await status(['members', '--format=json'], env);
        return x.code === 0 && (JSON.parse(x.stdout) as StatusReport).nodes.length === 3;
      },
      20_000,
      'three healthy members',
    );
    const members = await status(['members'], env);
    assert.doesNotMatch(members.stdout, /^Leader:/m, 'members prints the table alone');
    assert.match(members.stdout, /^Node +Role +API address/m);
    const active = await waitActive(nodes);
    const victim = nodes.find((n) => n !== active) as Proc;
    await victim.stop('SIGKILL');
    const late = await waitFor(
      async () => {
        const x = await status(['status'], env);
        return x.code === 1 ? x : null;
      },
      20_000,
      'status exiting 1',
    );
    assert.match(
      late.stdout,
      new RegExp(`^Status: degraded — ${victim.name}: no heartbeat for \\d+ s$`, 'm'),
    );
    assert.match(late.stdout, /\(late\)/);
  });

  it('exits 2 when the token is refused or nothing answers', async () => {
    const refused = await status(['status'], { VAULT_ADDR: gw.url, VAULT_TOKEN: 'not-a-token' });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /sys\/ha-status: 403/);
    const nobody = await status(['status', '--format', 'json'], { VAULT_ADDR: 'http://127.0.0.1:9' });
    assert.equal(nobody.code, 2);
    assert.equal((JSON.parse(nobody.stdout) as { status: string }).status, 'unavailable');
    const bad = await status(['status', '--format', 'yaml'], { VAULT_ADDR: gw.url });
    assert.equal(bad.code, 2);
  });
});
