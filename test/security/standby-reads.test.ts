/**
 * Issue 27: standbys serve reads themselves (LEADERWAY_DISABLE_STANDBY_READS=false, the default),
 * so authentication and the ACL check run on a standby too, and must refuse there exactly what
 * the active refuses. Against a real cluster (Redis, two nodes with debug logs, no gateway: every
 * request goes straight to a node), each check asks the standby directly and reads the
 * standby's own `leaderway_standby_reads_total` before and after, so it knows the standby served
 * the answer itself (and did not forward it to the active, which would make the check prove
 * nothing about standbys). Each refusal has a positive control — the same read by a token that
 * may make it, served by the standby — so a refusal for the wrong reason cannot pass:
 *  (a) a token without the policy is refused 403; a policy change, a policy deletion and a token
 *      revocation acknowledged by the active hold on the standby from the next request;
 *  (b) a response-wrapping token reads nothing (the standby hands it to the active, which
 *      refuses it: nothing is spent, it unwraps afterwards); once spent it is refused by the
 *      standby itself;
 *  (c) a token bound to CIDRs without the client's address is refused (the client's address is
 *      the socket's: loopback source addresses 127.0.0.1, .2, .9);
 *  (d) another token's cubbyhole gives nothing of it (neither a read nor a list);
 *  (e) the root token's reads leave no token in the standby's logs or /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster, metricSum, Sources, type TestResponse } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const MARKER = 'lwsecret-sbr-';
const METRIC = 'leaderway_standby_reads_total';

interface Counted {
  r: TestResponse;
  /** What the standby's counters moved by during the request. */
  served: number;
  forwarded: number;
}

interface Req {
  token?: string;
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Loopback source address to send from (default 127.0.0.1). */
  from?: string;
}

describe('security: a standby serving reads holds every privilege rule', () => {
  let redis: RedisServer;
  let nodes: Proc[] = [];
  let active: Proc;
  let standby: Proc;
  let root = '';
  const sources = new Sources();

  /** A request straight to `p` from a chosen loopback address. */
  function send(p: Proc, path: string, o: Req = {}): Promise<TestResponse> {
    const { from, ...rest } = o;
    return call(p.url, `/v1/${path}`, { ...rest, dispatcher: sources.agent(from ?? '127.0.0.1') });
  }

  const counts = async () => {
    const text = (await call(standby.metricsUrl, '/metrics')).text;
    return {
      served: metricSum(text, METRIC, 'outcome="served"'),
      forwarded: metricSum(text, METRIC, 'outcome="forwarded"'),
    };
  };

  /** A request to the standby, with what its counters moved by (requests here are sequential). */
  async function onStandby(path: string, o: Req = {}): Promise<Counted> {
    const b = await counts();
    const r = await send(standby, path, o);
    const a = await counts();
    return { r, served: a.served - b.served, forwarded: a.forwarded - b.forwarded };
  }

  /** The standby served it itself, and answered `status`. */
  function servedWith(c: Counted, status: number, what: string): void {
    assert.equal(c.r.status, status, `${what}: ${c.r.status} ${c.r.text.slice(0, 200)}`);
    assert.deepEqual([c.served, c.forwarded], [1, 0], `${what}: not served by the standby itself`);
  }

  /** A write (or anything) on the active, which must succeed. */
  async function onActive(path: string, o: Req = {}): Promise<TestResponse> {
    const r = await send(active, path, { token: root, ...o });
    assert.ok(r.status >= 200 && r.status < 300, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
    return r;
  }

  const denied = { errors: ['permission denied'] };

  async function newToken(policies: string[]): Promise<string> {
    const r = await onActive('auth/token/create', { body: { policies } });
    return (r.body as { auth: { client_token: string } }).auth.client_token;
  }

  async function policy(name: string, paths: Record<string, string[]>): Promise<void> {
    const path = Object.fromEntries(Object.entries(paths).map(([p, caps]) => [p, { capabilities: caps }]));
    await onActive(`sys/policy/${name}`, { method: 'PUT', body: { policy: JSON.stringify({ path }) } });
  }

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    const env = { LEADERWAY_LOG_LEVEL: 'debug', LEADERWAY_DISABLE_STANDBY_READS: 'false' };
    nodes = await Promise.all(['n1', 'n2'].map((n) => spawnNode(n, { redisUrl: redis.url, keys, env })));
    root = await initCluster((nodes[0] as Proc).url);
    active = await waitActive(nodes, 20_000);
    standby = nodes.find((n) => n !== active) as Proc;
    await waitFor(
      async () => (await call(standby.url, '/v1/sys/health')).status === 429,
      15_000,
      'the standby unsealed',
    );
    await onActive('secret/data/sr', { body: { data: { v: `${MARKER}kv` } } });
    await policy('sr-read', { 'secret/data/sr': ['read'], 'secret/metadata/': ['list'] });
    await policy('elsewhere', { 'secret/data/other': ['read'] });
  });

  after(async () => {
    await sources.close();
    await Promise.all(nodes.map((p) => p.stop('SIGKILL')));
    await redis?.stop();
  });

  it('(a) refuses a token without the policy, and sees policy changes and revocations at once', async () => {
    const reader = await newToken(['sr-read']);
    const other = await newToken(['elsewhere']);
    const read = (token: string) => onStandby('secret/data/sr', { token });
    const ok = await read(reader);
    servedWith(ok, 200, 'a reader reads');
    assert.equal((ok.r.body as { data: { data: { v: string } } }).data.data.v, `${MARKER}kv`);
    const no = await read(other);
    servedWith(no, 403, 'a token without the policy reads');
    assert.deepEqual(no.r.body, denied);
    servedWith(await onStandby('secret/metadata/', { token: reader, method: 'LIST' }), 200, 'a lister lists');
    const list = await onStandby('secret/metadata/', { token: other, method: 'LIST' });
    servedWith(list, 403, 'a token without the policy lists');
    assert.ok(!list.r.text.includes('sr'), list.r.text);
    // A grant acknowledged by the active holds on the standby from the next request, and so
    // does taking it back (its policy cache must not answer from before either change).
    await policy('elsewhere', { 'secret/data/sr': ['read'] });
    servedWith(await read(other), 200, 'right after a grant');
    await policy('elsewhere', { 'secret/data/other': ['read'] });
    servedWith(await read(other), 403, 'right after the grant was taken back');
    await policy('elsewhere', { 'secret/data/sr': ['deny'], 'secret/data/*': ['read'] });
    servedWith(await read(other), 403, 'a deny next to a glob grant');
    await onActive('sys/policy/sr-read', { method: 'DELETE' });
    servedWith(await read(reader), 403, 'right after its policy was deleted');
    await policy('sr-read', { 'secret/data/sr': ['read'], 'secret/metadata/': ['list'] });
    servedWith(await read(reader), 200, 'its policy written again');
    await onActive('auth/token/revoke', { body: { token: reader } });
    const revoked = await read(reader);
    servedWith(revoked, 403, 'right after its revocation');
    assert.deepEqual(revoked.r.body, denied);
    servedWith(await onStandby('auth/token/lookup-self', { token: reader }), 403, 'revoked: lookup-self');
  });

  it('(b) a response-wrapping token reads nothing on a standby', async (t) => {
    const wrapped = await onActive('auth/token/create', {
      body: { policies: ['sr-read'] },
      headers: { 'x-vault-wrap-ttl': '300s' },
    });
    const wrapper = (wrapped.body as { wrap_info: { token: string } }).wrap_info.token;
    assert.ok(wrapper, wrapped.text);
    const reads: Array<[string, string]> = [
      ['GET', 'secret/data/sr'],
      ['LIST', 'secret/metadata/'],
      ['GET', 'auth/token/lookup-self'],
      ['GET', 'auth/token/lookup'],
      // Where the wrapped answer is kept, in OpenBao and Vault.
      ['GET', 'cubbyhole/response'],
      ['LIST', 'cubbyhole/'],
      ['GET', 'sys/auth'],
    ];
    const outcomes: string[] = [];
    for (const [method, path] of reads) {
      const c = await onStandby(path, { token: wrapper, method });
      assert.equal(c.r.status, 403, `${method} ${path} by a wrapping token: ${c.r.status} ${c.r.text}`);
      assert.deepEqual(c.r.body, denied, `${method} ${path}`);
      // The standby saw a read (it serves it, or hands it to the active, which refuses it).
      assert.equal(c.served + c.forwarded, 1, `${method} ${path}: the standby did not count it`);
      outcomes.push(`${method} ${path}: ${c.served ? 'served' : 'forwarded'}`);
    }
    t.diagnostic(`wrapping token on the standby: ${outcomes.join(', ')}`);
    // None of it spent the wrapping token, and it held a real token.
    const un = await send(active, 'sys/wrapping/unwrap', { token: wrapper, body: {} });
    assert.equal(un.status, 200, un.text);
    const inner = (un.body as { auth: { client_token: string } }).auth.client_token;
    servedWith(await onStandby('secret/data/sr', { token: inner }), 200, 'the unwrapped token reads');
    // Spent: the standby refuses it itself.
    for (const [method, path] of reads) {
      const c = await onStandby(path, { token: wrapper, method });
      servedWith(c, 403, `${method} ${path} by a spent wrapping token`);
      assert.deepEqual(c.r.body, denied);
    }
  });

  it('(c) refuses a CIDR-bound token on a standby from outside its CIDRs', async () => {
    await onActive('sys/auth/approle', { body: { type: 'approle' } });
    // Bound to 127.0.0.2/32 only, which 127.0.0.1 is not in; logging in from 127.0.0.2.
    await onActive('auth/approle/role/bound', {
      body: { token_policies: ['sr-read'], token_bound_cidrs: ['127.0.0.2/32'] },
    });
    const roleId = ((await onActive('auth/approle/role/bound/role-id')).body as { data: { role_id: string } })
      .data.role_id;
    const secretId = (
      (await onActive('auth/approle/role/bound/secret-id', { body: {} })).body as {
        data: { secret_id: string };
      }
    ).data.secret_id;
    const login = await send(active, 'auth/approle/login', {
      body: { role_id: roleId, secret_id: secretId },
      from: '127.0.0.2',
    });
    assert.equal(login.status, 200, login.text);
    const token = (login.body as { auth: { client_token: string } }).auth.client_token;
    const inside = await onStandby('secret/data/sr', { token, from: '127.0.0.2' });
    servedWith(inside, 200, 'from inside its CIDRs');
    for (const from of ['127.0.0.1', '127.0.0.9']) {
      for (const [method, path] of [
        ['GET', 'secret/data/sr'],
        ['LIST', 'secret/metadata/'],
        ['GET', 'auth/token/lookup-self'],
      ] as const) {
        // X-Forwarded-For naming the bound address must not count: a node trusts no proxy.
        const c = await onStandby(path, { token, method, from, headers: { 'x-forwarded-for': '127.0.0.2' } });
        servedWith(c, 403, `${method} ${path} from ${from}`);
        assert.deepEqual(c.r.body, denied);
      }
    }
  });

  it("(d) a read of another token's cubbyhole on a standby returns nothing of it", async () => {
    const owner = await newToken(['elsewhere']);
    const other = await newToken(['elsewhere']);
    await onActive('cubbyhole/mine', { token: owner, body: { v: `${MARKER}cubby` } });
    const own = await onStandby('cubbyhole/mine', { token: owner });
    servedWith(own, 200, 'the owner reads its cubbyhole');
    assert.ok(own.r.text.includes(`${MARKER}cubby`), own.r.text);
    servedWith(await onStandby('cubbyhole/', { token: owner, method: 'LIST' }), 200, 'the owner lists it');
    for (const [who, token] of [
      ['another token', other],
      ['root', root],
    ] as const) {
      const read = await onStandby('cubbyhole/mine', { token });
      servedWith(read, 404, `${who} reads the owner's cubbyhole/mine`);
      const list = await onStandby('cubbyhole/', { token, method: 'LIST' });
      assert.deepEqual([list.served, list.forwarded], [1, 0], `${who} lists: not served by the standby`);
      assert.ok(list.r.status === 404 || list.r.status === 200, `${who} lists: ${list.r.status}`);
      for (const c of [read, list]) {
        assert.ok(!c.r.text.includes(MARKER), `${who}: ${c.r.text}`);
        assert.ok(!c.r.text.includes('mine'), `${who}: ${c.r.text}`);
      }
    }
  });

  it("(e) logs none of the root token's reads on a standby with the token", async () => {
    const near = root.slice(0, -1) + (root.endsWith('A') ? 'B' : 'A');
    const reads: Array<[string, string, string]> = [
      ['GET', 'secret/data/sr', root],
      ['GET', 'secret/data/missing', root],
      ['LIST', 'secret/metadata/', root],
      ['GET', 'auth/token/lookup-self', root],
      ['GET', 'auth/token/lookup', root],
      ['GET', 'sys/auth', root],
      ['GET', 'cubbyhole/none', root],
      ['GET', 'nomount/x', root],
      ['GET', 'secret/data/sr', near],
    ];
    const linesBefore = standby.lines.length;
    let served = 0;
    for (const [method, path, token] of reads) {
      const c = await onStandby(path, { token, method });
      assert.ok(c.r.status < 500, `${method} ${path}: ${c.r.status} ${c.r.text}`);
      served += c.served;
    }
    assert.equal(served, reads.length, 'every one of the reads served by the standby');
    // The debug request lines for them are there (so the scan below looks at real log lines).
    const requestLines = await waitFor(
      () => {
        const ls = standby.lines
          .slice(linesBefore)
          .filter((l) => l.includes('"msg":"request"') && l.includes('"via":"api"'));
        return ls.length >= reads.length ? ls : null;
      },
      5_000,
      "the standby's request log lines",
    );
    assert.ok(requestLines.length >= reads.length);
    const secrets = [
      ['the root token', root],
      ['the root token without its prefix', root.slice(4)],
      ['a near-miss of the root token', near],
      ['a near-miss without its prefix', near.slice(4)],
      ['the secret value', MARKER],
    ];
    const metrics = (await call(standby.metricsUrl, '/metrics')).text;
    for (const [what, value] of secrets) {
      const found = standby.lines.filter((l) => l.includes(value as string));
      assert.deepEqual(found, [], `${what} in the standby's logs`);
      assert.ok(!metrics.includes(value as string), `${what} in the standby's /metrics`);
    }
  });
});
