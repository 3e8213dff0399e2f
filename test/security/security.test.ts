/**
 * Security checks against a real cluster (Redis, three nodes behind a gateway): the cluster
 * port's mutual TLS, tokens in the wrong place or nearly right (and whether their lookup time
 * leaks closeness), untrusted X-Forwarded-For, and a scan of Redis, logs, exported traces and
 * /metrics for secrets in the clear. Forged advertisements: advertisements.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import selfsigned from 'selfsigned';
import { Agent, request } from 'undici';
import { newClusterIdentity } from '../../node/ha/cluster-cert';
import { readAdvertisement, readLeaderIdentity, waitActive } from '../helpers/cluster';
import { call } from '../helpers/http';
import { type Proc, waitFor } from '../helpers/procs';
import { tlsAccepted } from '../helpers/tls-probe';
import { type SecurityCluster, startSecurityCluster } from './fixture';
import { scanForLeaks } from './leak-scan';

/** Lookups per token kind in the timing comparison, and attempts before it fails. */
const TIMING_SAMPLES = 200;
const TIMING_ATTEMPTS = 3;
/** Medians of near-miss vs far-miss lookups must be within this ratio (lenient: 2 shared cores). */
const TIMING_MAX_RATIO = 1.5;
const MARKER = 'lwsecret-sec-';

describe('security', () => {
  let c: SecurityCluster;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  before(async () => {
    c = await startSecurityCluster(MARKER);
  });

  after(async () => {
    await c?.stop();
  });

  it("cluster port refuses no cert, a self-made cert (even with the leader's name), and the previous leader's cert", async () => {
    const { redis, keys, nodes, gw, token, healthy } = c;
    const a = await healthy();
    const id1 = await readLeaderIdentity(redis.url, keys);
    const ad1 = id1.ad;
    const c1 = { cert: id1.cert, key: id1.key };
    assert.equal(await tlsAccepted(a.clusterPort, c1), true, 'the advertised cert is accepted');
    assert.equal(await tlsAccepted(a.clusterPort, {}), false, 'no client cert');
    const own = await newClusterIdentity();
    assert.equal(
      await tlsAccepted(a.clusterPort, { cert: own.certPem, key: own.keyPem }),
      false,
      'self-made cert',
    );
    const name = `fw-${ad1.uuid}`;
    const lookalike = await selfsigned.generate([{ name: 'commonName', value: name }], {
      keyType: 'ec',
      curve: 'P-521',
      algorithm: 'sha512',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: name }] }],
    });
    assert.equal(
      await tlsAccepted(a.clusterPort, { cert: lookalike.cert, key: lookalike.private }),
      false,
      "self-made cert with the leader's name",
    );
    assert.equal((await call(gw.url, '/v1/sys/step-down', { method: 'PUT', token })).status, 204);
    const b = await waitActive(nodes, 15_000, a);
    await waitFor(async () => (await readAdvertisement(redis.url, keys)).uuid !== ad1.uuid, 10_000, 'new ad');
    const id2 = await readLeaderIdentity(redis.url, keys);
    const c2 = { cert: id2.cert, key: id2.key };
    assert.equal(await tlsAccepted(b.clusterPort, c2), true, "the new leader's cert is accepted");
    assert.equal(await tlsAccepted(b.clusterPort, c1), false, "the previous leader's cert is refused");
    assert.equal(await tlsAccepted(a.clusterPort, c1), false, 'the previous leader stopped listening');
    for (const s of nodes.filter((n) => n !== b)) assert.equal(await tlsAccepted(s.clusterPort, c2), false);
  });

  it('refuses a token in the wrong header and near-miss tokens, on a node and through the gateway', async () => {
    const { gw, token, healthy } = c;
    const a = await healthy();
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const nearMisses = [
      token.slice(0, -1),
      `${token}A`,
      token.slice(0, -1) + flip(token.slice(-1)),
      token.slice(0, 10) + flip(token[10] as string) + token.slice(11),
      token.toUpperCase(),
      `hvs,${token.slice(4)}`,
    ];
    const wrongPlace: Array<Record<string, string>> = [
      { 'x-vault-tokens': token },
      { 'vault-token': token },
      { authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` },
      { authorization: `Token ${token}` },
      { authorization: token },
      { cookie: `token=${token}` },
    ];
    for (const base of [a.url, gw.url]) {
      const path = '/v1/auth/token/lookup-self';
      assert.equal((await call(base, path, { token })).status, 200);
      assert.equal((await call(base, path, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const refusals = [
        ...nearMisses.map((t) => ({ 'x-vault-token': t })),
        ...nearMisses.map((t) => ({ authorization: `Bearer ${t}` })),
        ...wrongPlace,
      ];
      for (const headers of refusals) {
        const r = await call(base, path, { headers });
        assert.equal(r.status, 403, `${JSON.stringify(headers)} → ${r.status}`);
        assert.deepEqual(r.body, { errors: ['permission denied'] });
      }
      const q = await call(base, `${path}?token=${token}`);
      assert.equal(q.status, 403, 'token in the query string');
    }
  });

  it('looks up near-miss and far-miss tokens in the same time (medians, lenient)', async (t) => {
    const { token, healthy } = c;
    const a = await healthy();
    const agent = new Agent({ connections: 1 });
    const near = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const lookup = async (tok: string) => {
      const t0 = performance.now();
      const r = await request(`${a.url}/v1/auth/token/lookup-self`, {
        dispatcher: agent,
        headers: { 'x-vault-token': tok },
      });
      await r.body.dump();
      assert.equal(r.statusCode, 403);
      return performance.now() - t0;
    };
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
    let ratio = 0;
    try {
      for (let i = 0; i < 50; i++) await lookup(near);
      for (let attempt = 1; attempt <= TIMING_ATTEMPTS; attempt++) {
        const ns: number[] = [];
        const fs: number[] = [];
        for (let i = 0; i < TIMING_SAMPLES; i++) {
          const far = `hvs.${randomBytes(24).toString('base64url')}`;
          // Alternate the order so drift in the machine's load hits both kinds alike.
          if (i % 2) {
            ns.push(await lookup(near));
            fs.push(await lookup(far));
          } else {
            fs.push(await lookup(far));
            ns.push(await lookup(near));
          }
        }
        ratio = median(ns) / median(fs);
        t.diagnostic(
          `attempt ${attempt}: median near-miss ${median(ns).toFixed(3)} ms, far-miss ${median(fs).toFixed(3)} ms, ratio ${ratio.toFixed(3)}`,
        );
        if (ratio < TIMING_MAX_RATIO && ratio > 1 / TIMING_MAX_RATIO) break;
      }
    } finally {
      await agent.close();
    }
    assert.ok(ratio < TIMING_MAX_RATIO && ratio > 1 / TIMING_MAX_RATIO, `timing ratio ${ratio}`);
  });

  it('does not believe X-Forwarded-For from clients (gateway, standby, active)', async () => {
    const { nodes, gw, token, healthy } = c;
    const a = await healthy();
    const s = nodes.find((n) => n !== a) as Proc;
    const spoof = { 'x-forwarded-for': '203.0.113.77' };
    for (const base of [gw.url, s.url, a.url]) {
      // A write, so that the standby forwards it (it serves reads itself).
      const write = { token, headers: spoof, body: { data: { v: 'xff' } } };
      assert.equal((await call(base, '/v1/secret/data/xff', write)).status, 200);
    }
    const lines = await waitFor(
      () => {
        const ls = a.logs().filter((l) => l.msg === 'request' && l.route === 'secret/data');
        // The active tells the three ways in apart: a gateway's and a standby's connections by
        // their client certificates, a client's by the listener.
        return ['gateway', 'standby', 'api'].every((via) => ls.some((l) => l.via === via)) ? ls : null;
      },
      5_000,
      'request log lines on the active (via gateway, standby and api)',
    );
    assert.deepEqual(
      lines.filter((l) => String(l.remote_addr).startsWith('203.0.113.')).map((l) => l.via),
      [],
      'a client-sent X-Forwarded-For was believed',
    );
  });

  it('leaves no token, secret value, key or advertisement in Redis, logs, traces or /metrics', async (t) => {
    const { redis, keys, nodes, gw, token, traces: collector, healthy } = c;
    await healthy();
    await sleep(1_500); // let the last trace batch reach the collector
    const texts: Array<{ name: string; text: string }> = [];
    for (const p of [gw, ...nodes]) {
      const m = await call(p.metricsUrl, '/metrics').catch(() => null);
      if (m?.status === 200) texts.push({ name: `/metrics of ${p.name}`, text: m.text });
    }
    const report = await scanForLeaks(
      { redisUrl: redis.url, procs: [...nodes, gw, ...c.extra], traces: collector.raw, texts },
      {
        token,
        keys,
        valueMarker: MARKER,
        extra: [{ name: 'a near-miss token (all but its last character)', text: token.slice(0, -1) }],
      },
    );
    t.diagnostic(
      `scanned ${report.scanned.redisKeys} Redis keys, ${report.scanned.logLines} log lines, ` +
        `${collector.spans().length} spans in ${report.scanned.traceBodies} exports` +
        (collector.spans().length === 0 ? ' (this build exports no traces: trace scan skipped)' : '') +
        `, ${report.scanned.texts} /metrics pages`,
    );
    assert.deepEqual(report.findings, []);
  });
});
