/**
 * Least privilege for gateways (what a compromised gateway can and cannot do), against a Redis
 * that enforces the users `leaderway redis-acl` prints: nodes run as `leaderway-node`, the
 * gateway as `leaderway-gateway`, and the cluster works end to end that way without one command
 * refused (Redis' ACL LOG stays empty: each user allows exactly what its process sends). The
 * gateway's Redis user cannot take the lock, write an advertisement, run a script, read a
 * secret's ciphertext, or run INFO or SELECT; the node's runs no Lua but leaderway's own scripts;
 * the operators' `leaderway-admin` can stop a runaway script. Nothing the gateway can read holds
 * private key material; its own certificate does not open the active's internal endpoints; and
 * it refuses to start with a key only nodes may hold.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { Client } from 'undici';
import { gatewayPki } from '../../cli/gateway-pki';
import { advertisementPath, decodeAdvertisement } from '../../shared/advertisement';
import { verifyKeyFromRaw } from '../../shared/crypto/signing';
import { isLwError } from '../../shared/errors';
import { aclLines } from '../../shared/storage/redis/acl';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { scriptShas } from '../../shared/storage/redis/scripts';
import { gatewayClientTls, readLeaderIdentity, waitActive } from '../helpers/cluster';
import { call, initCluster, scrapeMetric } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { gatewayPkiFiles, type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { tlsAccepted } from '../helpers/tls-probe';

const NODE_PASSWORD = 'node-password-for-the-acl-test';
const GATEWAY_PASSWORD = 'gateway-password-for-the-acl-test';
const ADMIN_PASSWORD = 'admin-password-for-the-acl-test';
/** A test client as the users' processes connect: no INFO ready check, no CLIENT SETINFO. */
const CLIENT_OPTIONS = { maxRetriesPerRequest: 1, enableReadyCheck: false, disableClientInfo: true };
const BIN = path.resolve(__dirname, '..', '..', 'bin', 'leaderway');

describe('least privilege: a compromised gateway', () => {
  let dir = '';
  let redis: RedisServer;
  const keys = testKeys();
  let nodeUrl = '';
  let gatewayUrl = '';
  const nodes: Proc[] = [];
  let gw: Proc;
  let token = '';
  /** Redis as the gateway user: what an attacker who owns a gateway pod has. */
  let asGateway: Redis;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lw-acl-'));
    const aclFile = path.join(dir, 'users.acl');
    // The test harness keeps an admin (the default user) for its own checks; the cluster's
    // processes use only the two users.
    writeFileSync(
      aclFile,
      [
        'user default on nopass ~* &* +@all',
        ...aclLines('leaderway', { node: NODE_PASSWORD, gateway: GATEWAY_PASSWORD, admin: ADMIN_PASSWORD }),
        '',
      ].join('\n'),
    );
    redis = await startRedis({ args: ['--aclfile', aclFile] });
    nodeUrl = `redis://leaderway-node:${NODE_PASSWORD}@127.0.0.1:${redis.port}`;
    gatewayUrl = `redis://leaderway-gateway:${GATEWAY_PASSWORD}@127.0.0.1:${redis.port}`;
    const port = await freePort();
    const apiAddr = `http://127.0.0.1:${port}`;
    nodes.push(await spawnNode('n1', { redisUrl: nodeUrl, keys, apiAddr }));
    token = await initCluster((nodes[0] as Proc).url);
    nodes.push(await spawnNode('n2', { redisUrl: nodeUrl, keys, apiAddr }));
    // Spread routing: the gateway user must also read the membership record.
    gw = await spawnGateway('gw', {
      redisUrl: gatewayUrl,
      keys,
      port,
      env: { LEADERWAY_GATEWAY_READ_ROUTING: 'spread' },
    });
    asGateway = new Redis(gatewayUrl, CLIENT_OPTIONS);
  });

  after(async () => {
    asGateway?.disconnect();
    await Promise.all([gw?.stop('SIGKILL'), ...nodes.map((n) => n.stop('SIGKILL'))]);
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the cluster works end to end with nodes and gateway as their own Redis users', async () => {
    await waitActive(nodes, 15_000);
    const standby = await waitFor(
      async () => {
        for (const n of nodes) if ((await call(n.url, '/v1/sys/health')).status === 429) return n;
        return null;
      },
      15_000,
      'a standby',
    );
    const w = await call(gw.url, '/v1/secret/data/acl', { token, body: { data: { v: 1 } } });
    assert.equal(w.status, 200, w.text);
    assert.equal(
      (await call(standby.url, '/v1/secret/data/acl', { token })).status,
      200,
      'standby forwarding',
    );
    assert.equal((await call(gw.url, '/v1/secret/data/acl', { token })).status, 200, 'through the gateway');
    await waitFor(
      async () => (await scrapeMetric(gw.metricsUrl, 'leaderway_gateway_standby_members')) === 1,
      10_000,
      'the gateway to read the membership record',
    );
    for (const p of [...nodes, gw]) {
      assert.ok(!p.lines.some((l) => /NOPERM/i.test(l)), `${p.name} was refused a Redis command`);
    }
    // Nor silently: ioredis ignores some refusals (a CLIENT SETINFO), Redis logs every one.
    const log = JSON.stringify(await redis.cli('ACL', 'LOG'));
    assert.ok(!/leaderway-(node|gateway)/.test(log), `Redis refused the cluster's users: ${log}`);
  });

  it('the gateway user gets NOPERM for writing leadership, scripts and everything else', async () => {
    const lock = '{leaderway}/core/lock';
    const uuid = (await asGateway.get(lock)) ?? '';
    assert.match(uuid, /^[0-9a-f-]{36}$/, 'it can read the lock');
    const ad = `{leaderway}/d/${advertisementPath(uuid)}`;
    assert.ok(await asGateway.getBuffer(ad), 'it can read the advertisement');
    const refused: Array<[string, () => Promise<unknown>]> = [
      ['SET lock', () => asGateway.set(lock, 'mine', 'PX', 60_000)],
      ['DEL lock', () => asGateway.del(lock)],
      ['SET advertisement', () => asGateway.set(ad, 'forged')],
      ['DEL advertisement', () => asGateway.del(ad)],
      ['INCR epoch', () => asGateway.incr('{leaderway}/core/lock-epoch')],
      ['EVAL', () => asGateway.eval("return redis.call('SET', KEYS[1], 'x')", 1, lock)],
      ['PUBLISH', () => asGateway.publish('{leaderway}/events', '{"type":"advertised"}')],
      ['GET a secret’s ciphertext', () => asGateway.get('{leaderway}/d/core/root-key')],
      ['KEYS', () => asGateway.keys('*')],
      ['SCAN', () => asGateway.scan(0)],
      ['CONFIG GET', () => asGateway.config('GET', '*')],
      ['FLUSHALL', () => asGateway.flushall()],
      ['ACL LIST', () => asGateway.acl('LIST')],
      ['INFO', () => asGateway.info()],
      ['SELECT', () => asGateway.select(1)],
    ];
    for (const [what, run] of refused) {
      await assert.rejects(run, /NOPERM/, `${what} was allowed to the gateway user`);
    }
    assert.equal(await asGateway.get(lock), uuid, 'the lock is unchanged');
  });

  it('the node user has no administrative or cross-prefix reach, and runs no Lua but leaderway’s', async () => {
    const asNode = new Redis(nodeUrl, CLIENT_OPTIONS);
    try {
      assert.ok((await asNode.get('{leaderway}/core/lock')) !== null);
      // A script of its own: it may load it (loading runs nothing), never run it.
      const foreign = "return redis.call('GET', KEYS[1])";
      const foreignSha = String(await asNode.script('LOAD', foreign));
      for (const [what, run] of [
        ['KEYS', () => asNode.keys('*')],
        ['FLUSHALL', () => asNode.flushall()],
        ['CONFIG SET', () => asNode.config('SET', 'appendonly', 'no')],
        ['another prefix', () => asNode.set('{other}/core/lock', 'x')],
        ['ACL SETUSER', () => asNode.acl('SETUSER', 'evil', 'on', '>pw', '+@all')],
        ['EVAL of any script', () => asNode.eval("return redis.call('TIME')", 0)],
        ['EVAL of a busy loop', () => asNode.eval('while true do end', 0)],
        ['EVALSHA of a script it loaded', () => asNode.evalsha(foreignSha, 1, '{leaderway}/core/lock')],
        [
          'FUNCTION LOAD',
          () => asNode.call('FUNCTION', 'LOAD', "#!lua name=x\nredis.register_function('x', function() end)"),
        ],
        ['SCRIPT KILL', () => asNode.script('KILL')],
        ['SELECT', () => asNode.select(1)],
      ] as Array<[string, () => Promise<unknown>]>) {
        await assert.rejects(run, /NOPERM/, `${what} was allowed to the node user`);
      }
      // Positive control: each of leaderway's scripts, and the commands the node sends itself.
      const admin = new Redis(redis.url, CLIENT_OPTIONS);
      try {
        const dryrun = (...args: string[]) => admin.call('ACL', 'DRYRUN', 'leaderway-node', ...args);
        for (const { file, sha } of scriptShas())
          assert.equal(await dryrun('EVALSHA', sha, '1', '{leaderway}/core/lock'), 'OK', file);
        for (const cmd of [
          ['WAIT', '1', '0'],
          ['INFO', 'server'],
          ['CLIENT', 'ID'],
          ['SCRIPT', 'LOAD', 'return 1'],
        ])
          assert.equal(await dryrun(...(cmd as [string, ...string[]])), 'OK', cmd.join(' '));
      } finally {
        admin.disconnect();
      }
    } finally {
      asNode.disconnect();
    }
  });

  it('a URL naming another database fails to connect instead of using database 0', async () => {
    const wrongDb = new RedisBackend({ url: `${gatewayUrl}/2`, reader: true });
    try {
      await assert.rejects(wrongDb.start(1_500), (err: unknown) => {
        assert.ok(isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'), String(err));
        assert.match(String((err.cause as Error | undefined)?.message), /'select'/);
        return true;
      });
    } finally {
      await wrongDb.close();
    }
  });

  it('the operators’ leaderway-admin may stop a runaway script, and only it may', async () => {
    const adminUrl = `redis://leaderway-admin:${ADMIN_PASSWORD}@127.0.0.1:${redis.port}`;
    const asAdmin = new Redis(adminUrl, CLIENT_OPTIONS);
    try {
      // Permitted: with no script running Redis answers NOTBUSY, not NOPERM.
      await assert.rejects(asAdmin.script('KILL'), /NOTBUSY/);
      assert.match(String(await asAdmin.info('server')), /redis_version/);
      assert.equal(await asAdmin.acl('WHOAMI'), 'leaderway-admin');
      await assert.rejects(asGateway.script('KILL'), /NOPERM/);
      // Not DEBUG or MODULE (Redis may refuse those to everyone by configuration: ask the ACL).
      for (const cmd of [
        ['DEBUG', 'SLEEP', '0'],
        ['MODULE', 'LOAD', '/tmp/x.so'],
      ]) {
        const verdict = await redis.cli('ACL', 'DRYRUN', 'leaderway-admin', ...cmd);
        assert.match(String(verdict), /no permissions/, cmd.join(' '));
      }
    } finally {
      asAdmin.disconnect();
    }
  });

  it('nothing the gateway can read holds private key material', async () => {
    const id = await readLeaderIdentity(redis.url, keys);
    const der = createPrivateKey(id.key).export({ format: 'der', type: 'pkcs8' }) as Buffer;
    const needles = [der, Buffer.from(der.toString('base64')), Buffer.from('PRIVATE KEY')];
    const readable = [
      '{leaderway}/core/lock',
      '{leaderway}/core/lock-epoch',
      `{leaderway}/d/${advertisementPath(id.ad.uuid)}`,
    ];
    for (const k of readable) {
      const raw = (await asGateway.getBuffer(k)) ?? Buffer.alloc(0);
      for (const n of needles) assert.equal(raw.indexOf(n), -1, `${k} holds the leader's key`);
    }
    // Decrypted with everything a gateway holds: the leader's certificate and address, no key.
    const raw = (await asGateway.getBuffer(readable[2] as string)) as Buffer;
    const r = decodeAdvertisement(
      raw,
      advertisementPath(id.ad.uuid),
      [Buffer.from(keys.adKey, 'base64')],
      [verifyKeyFromRaw(Buffer.from(keys.verifyKey, 'base64'))],
    );
    assert.ok(r.ok, 'the gateway can read and verify the advertisement');
    const text = JSON.stringify(r.ad);
    assert.deepEqual(Object.keys(r.ad).sort(), [
      'active_time',
      'api_addr',
      'cert',
      'cluster_addr',
      'epoch',
      'node_id',
      'uuid',
    ]);
    for (const n of needles)
      assert.ok(!text.includes(n.toString('latin1')), 'the advertisement holds the key');
    // The key lives behind the barrier, where only a node (with the seal key) reads it.
    await assert.rejects(() => asGateway.get(`{leaderway}/d/core/leader-key/${id.ad.uuid}`), /NOPERM/);
  });

  it('its own certificate reaches the API on the cluster port, never the internal /lw-cluster/ endpoints', async () => {
    const active = await waitActive(nodes, 15_000);
    const id = await readLeaderIdentity(redis.url, keys);
    const post = async (creds: { cert: string; key: string }, addr: string) => {
      const client = new Client(id.ad.cluster_addr, {
        connect: { ca: id.cert, ...creds, servername: `fw-${id.ad.uuid}`, rejectUnauthorized: true },
      });
      try {
        const r = await client.request({
          path: '/lw-cluster/echo',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            node_id: `echo-${addr}`,
            api_addr: `http://${addr}`,
            cluster_addr: '',
            version: 'x',
          }),
        });
        await r.body.dump();
        return r.statusCode;
      } finally {
        await client.close();
      }
    };
    const gatewayCreds = await gatewayClientTls();
    assert.equal(await post(gatewayCreds, '203.0.113.9'), 404, 'a gateway reached an internal endpoint');
    assert.equal(
      await post({ cert: id.cert, key: id.key }, '198.51.100.7'),
      204,
      'positive control: a standby’s echo is accepted',
    );
    const ha = await call(active.url, '/v1/sys/ha-status', { token });
    const listed = JSON.stringify(ha.body);
    assert.ok(listed.includes('198.51.100.7'), 'positive control: the standby’s echo is listed');
    assert.ok(!listed.includes('203.0.113.9'), 'the intruder was listed as a node');
    // The API itself is open to it (that is its job), and a certificate from another CA is not.
    assert.equal(await tlsAccepted(active.clusterPort, gatewayCreds), true);
    const stranger = await gatewayPki('leaderway-gateway');
    assert.equal(
      await tlsAccepted(active.clusterPort, { cert: stranger.certPem, key: stranger.keyPem }),
      false,
    );
  });

  it('a gateway refuses to start with the seal key or the signing key', async () => {
    const pki = await gatewayPkiFiles();
    const env = {
      PATH: process.env.PATH ?? '',
      LEADERWAY_REDIS_URL: gatewayUrl,
      LEADERWAY_ADVERTISEMENT_KEY: keys.adKey,
      LEADERWAY_ADVERTISEMENT_VERIFY_KEY: keys.verifyKey,
      LEADERWAY_GATEWAY_CERT_FILE: pki.certFile,
      LEADERWAY_GATEWAY_KEY_FILE: pki.keyFile,
      LEADERWAY_LISTEN_ADDR: `127.0.0.1:${await freePort()}`,
    };
    for (const [name, value] of [
      ['LEADERWAY_SEAL_KEY', keys.sealKey],
      ['LEADERWAY_ADVERTISEMENT_SIGNING_KEY', keys.signingKey],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, 'gateway'], {
        env: { ...env, [name]: value },
        encoding: 'utf8',
        timeout: 15_000,
      });
      assert.equal(r.status, 2, `${name}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(name));
      assert.ok(!r.stderr.includes(value), 'the key was echoed');
    }
    assert.ok(readFileSync(pki.certFile, 'utf8').includes('BEGIN CERTIFICATE'));
  });
});
