/**
 * Nothing readable in Redis: after init, KV writes (several versions, a delete, a destroy) and a
 * leader advertisement, every key of every database is read back raw — names and contents, of
 * every type — and searched for secret values, the root token in any encoding, the seal and
 * advertisement keys, and the node's addresses. HA events on pub/sub are searched too.
 *
 * Allowed in plain text: the secret PATHS (`app/db`), which appear in key names and in the path
 * index, as Vault's storage also keeps logical paths in its key names. The names of the keys
 * INSIDE a secret (`password`, `api_key`) live only in the encrypted values.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { SIGNED_LEADER_PREFIX } from '../../shared/advertisement';
import { call } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const PREFIX = 'scan-test';
const NODE_ID = 'scan-node-7f3a';
const SECRET_VALUE = 'supersecret-VALUE-123';
const OLD_VALUE = 'older-secret-VALUE-456';
const DESTROYED_VALUE = 'destroyed-secret-VALUE-789';
const INNER_KEY = 'db_password_field';

/** One Redis entry as stored: its name and every byte it holds. */
interface Entry {
  db: number;
  name: Buffer;
  type: string;
  parts: Buffer[];
}

/** Every key of every database, with its contents read raw according to its type. */
async function dumpRedis(url: string): Promise<Entry[]> {
  const info = await withClient(url, 0, (c) => c.info('keyspace'));
  const dbs = [...info.matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  const out: Entry[] = [];
  for (const db of dbs) {
    await withClient(url, db, async (c) => {
      let cursor = '0';
      do {
        const [next, names] = await c.scanBuffer(cursor, 'COUNT', 500);
        cursor = String(next);
        for (const name of names) {
          const type = await c.type(name);
          let parts: Buffer[];
          if (type === 'string') parts = [(await c.getBuffer(name)) ?? Buffer.alloc(0)];
          else if (type === 'zset') parts = await c.zrangeBuffer(name, '0', '-1', 'WITHSCORES');
          else if (type === 'hash') parts = await c.hgetallBuffer(name).then((h) => Object.values(h));
          else if (type === 'list') parts = await c.lrangeBuffer(name, 0, -1);
          else if (type === 'set') parts = await c.smembersBuffer(name);
          else parts = [Buffer.from((await c.call('DUMP', name)) as string, 'latin1')];
          if (type === 'hash') {
            const fields = await c.hkeysBuffer(name);
            parts.push(...fields);
          }
          out.push({ db, name, type, parts });
        }
      } while (cursor !== '0');
    });
  }
  return out;
}

async function withClient<T>(url: string, db: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis(url, { db, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** The byte forms a leaked string could take: as is, base64, base64url, hex. */
function encodings(label: string, value: Buffer): Array<[string, Buffer]> {
  return [
    [label, value],
    [`${label} (base64)`, Buffer.from(value.toString('base64').replace(/=+$/, ''))],
    [`${label} (base64url)`, Buffer.from(value.toString('base64url'))],
    [`${label} (hex)`, Buffer.from(value.toString('hex'))],
  ];
}

describe('Redis holds nothing readable', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let node: Proc;
  let token = '';
  let sub: Redis | undefined;
  const events: Buffer[] = [];

  before(async () => {
    redis = await startRedis();
    // Every HA event the node publishes is captured, from before init.
    sub = new Redis(redis.url);
    sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
      events.push(channel, message);
    });
    await sub.psubscribe('*');
    node = await spawnNode(NODE_ID, {
      redisUrl: redis.url,
      keys,
      env: { LEADERWAY_REDIS_PREFIX: PREFIX },
    });
    const init = await call(node.url, '/v1/sys/init', { method: 'PUT', body: {} });
    assert.equal(init.status, 200, init.text);
    token = (init.body as { root_token: string }).root_token;
    await waitFor(
      async () => (await call(node.url, '/v1/sys/health')).status === 200,
      20_000,
      'the node active',
    );
    const put = async (path: string, data: Record<string, string>) => {
      const r = await call(node.url, `/v1/secret/data/${path}`, { method: 'PUT', token, body: { data } });
      assert.equal(r.status, 200, r.text);
    };
    await put('app/db', { [INNER_KEY]: OLD_VALUE, password: OLD_VALUE });
    await put('app/db', { [INNER_KEY]: SECRET_VALUE, password: SECRET_VALUE, api_key: SECRET_VALUE });
    await put('app/gone', { password: DESTROYED_VALUE });
    const destroy = await call(node.url, '/v1/secret/destroy/app/gone', {
      method: 'PUT',
      token,
      body: { versions: [1] },
    });
    assert.equal(destroy.status, 204);
    const del = await call(node.url, '/v1/secret/data/app/db', { method: 'DELETE', token });
    assert.equal(del.status, 204);
    const lookup = await call(node.url, '/v1/auth/token/lookup-self', { token });
    assert.equal(lookup.status, 200);
  });

  after(async () => {
    sub?.disconnect();
    await node?.stop('SIGKILL');
    await redis?.stop();
  });

  it('keeps every key under the cluster’s hash tag, with the data where the scan can see it', async () => {
    const entries = await dumpRedis(redis.url);
    const names = entries.map((e) => e.name.toString('utf8'));
    assert.ok(entries.length >= 5, `expected data in Redis, found ${names.join(', ')}`);
    for (const n of names) assert.ok(n.startsWith(`{${PREFIX}}/`), `key outside the namespace: ${n}`);
    // Positive control: secret PATHS are allowed in key names, so the scan must find them; if it
    // did not, it would not be reading what the node wrote.
    assert.ok(
      names.some((n) => n.includes('app/db')),
      'the scan sees the secret’s key',
    );
    assert.ok(
      names.some((n) => n.endsWith('/core/lock')),
      'the scan sees the lock',
    );
    assert.ok(
      names.some((n) => n.includes(SIGNED_LEADER_PREFIX)),
      'the scan sees the advertisement',
    );
    // And it reads contents: the path index (a sorted set) lists the secret's path, and the lock
    // (a string) holds the uuid the advertisement is named after.
    const index = entries.find((e) => e.type === 'zset');
    assert.ok(
      index?.parts.some((p) => p.toString() === 'kv/secret/meta/app/db'),
      'the scan reads sorted sets',
    );
    const lock = entries.find((e) => e.name.toString().endsWith('/core/lock'))?.parts[0]?.toString() ?? '';
    assert.match(lock, /^[0-9a-f-]{36}$/);
    assert.ok(
      names.some((n) => n.endsWith(`${SIGNED_LEADER_PREFIX}${lock}`)),
      'the scan reads strings',
    );
    assert.ok(events.length > 0, 'the subscriber saw the HA events');
  });

  it('has no secret value, token, key or address in any key name, value or event', async () => {
    const entries = await dumpRedis(redis.url);
    const tokenBytes = Buffer.from(token);
    const needles: Array<[string, Buffer]> = [
      ...[SECRET_VALUE, OLD_VALUE, DESTROYED_VALUE].flatMap((v) =>
        encodings(`secret value ${v}`, Buffer.from(v)),
      ),
      // Keys inside the secret's data live only in its encrypted value.
      ['the secret’s inner key name', Buffer.from(INNER_KEY)],
      ['the word "password"', Buffer.from('password')],
      ['"api_key"', Buffer.from('api_key')],
      ...encodings('root token', tokenBytes),
      ...encodings('root token without prefix', Buffer.from(token.replace(/^hvs\./, ''))),
      ...encodings('sha256(root token)', createHash('sha256').update(token).digest()),
      ['sha256(root token) HEX', Buffer.from(createHash('sha256').update(token).digest('hex').toUpperCase())],
      ...encodings('seal key', Buffer.from(keys.sealKey, 'base64')),
      ['seal key (as configured)', Buffer.from(keys.sealKey)],
      ...encodings('advertisement key', Buffer.from(keys.adKey, 'base64')),
      ['advertisement key (as configured)', Buffer.from(keys.adKey)],
      ...encodings('signing key', Buffer.from(keys.signingKey, 'base64')),
      ['signing key (as configured)', Buffer.from(keys.signingKey)],
      ['api_addr', Buffer.from(node.url)],
      ['API host:port', Buffer.from(`127.0.0.1:${node.port}`)],
      ['cluster_addr', Buffer.from(`https://127.0.0.1:${node.clusterPort}`)],
      ['cluster host:port', Buffer.from(`127.0.0.1:${node.clusterPort}`)],
      ['the node id', Buffer.from(NODE_ID)],
      ['a PEM header', Buffer.from('-----BEGIN')],
    ];
    const leaks: string[] = [];
    const search = (where: string, haystack: Buffer) => {
      for (const [what, needle] of needles) {
        if (needle.length > 0 && haystack.includes(needle)) leaks.push(`${what} in ${where}`);
      }
    };
    for (const e of entries) {
      const name = e.name.toString('utf8');
      search(`the key name ${name}`, e.name);
      for (const part of e.parts) search(`the ${e.type} ${name}`, part);
    }
    for (const m of events) search('a pub/sub event', m);
    assert.deepEqual(leaks, []);
  });

  it('stores values as ciphertext: no JSON, no printable runs', async () => {
    const entries = await dumpRedis(redis.url);
    const data = entries.filter((e) => e.type === 'string' && e.name.toString().startsWith(`{${PREFIX}}/d/`));
    assert.ok(data.length >= 4, 'data entries exist');
    for (const e of data) {
      const value = e.parts[0] as Buffer;
      const name = e.name.toString();
      assert.ok(value.length >= 28, `${name}: too short to be sealed`);
      assert.ok(!value.includes(Buffer.from('{"')), `${name}: holds JSON`);
      // Ciphertext is random: a long printable run would be plaintext.
      assert.ok(!/[\x20-\x7e]{24,}/.test(value.toString('latin1')), `${name}: holds a long printable run`);
    }
  });
});
