/**
 * Who may read metrics (issue 23, as OpenBao): `/metrics` on a node's or a gateway's API
 * listener is 403 to anyone unless the listener sets `unauthenticated_metrics_access`; the
 * metrics listener (LEADERWAY_METRICS_ADDR) serves it without a token, and nothing else, and
 * cuts a request that never completes; `GET /v1/sys/metrics?format=prometheus` needs a token
 * whose policies grant `read` on `sys/metrics` (root always), through the gateway, a standby or
 * the active node.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import { type Proc, spawnGateway, spawnNode } from '../helpers/procs';

/** A metric every node exposes, and one every gateway does. */
const NODE_METRIC = /^leaderway_lock_held \d/m;
const GATEWAY_METRIC = /^leaderway_gateway_leader_known \d/m;

describe('metrics access', () => {
  let c: GatewayCluster;
  /** A node and a gateway of the same cluster whose API listeners allow anonymous /metrics. */
  let openNode: Proc;
  let openGw: Proc;

  before(async () => {
    c = await startGatewayCluster({ nodes: 2 });
    const open = { LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS: 'true' };
    openNode = await spawnNode('n-open', { redisUrl: c.redis.url, keys: c.keys, env: open });
    openGw = await spawnGateway('gw-open', { redisUrl: c.redis.url, keys: c.keys, env: open });
  });
  after(async () => {
    await Promise.all([openNode?.stop('SIGKILL'), openGw?.stop('SIGKILL')]);
    await c?.stop();
  });

  it("an anonymous GET /metrics on a node's or a gateway's API listener is 403 by default", async () => {
    for (const p of [...c.nodes, c.gw]) {
      const r = await call(p.url, '/metrics');
      assert.equal(r.status, 403, `${p.name}: ${r.text}`);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const errors = (r.body as { errors: string[] }).errors;
      assert.equal(errors.length, 1, r.text);
      assert.match(errors[0] as string, /unauthenticated_metrics_access.*LEADERWAY_METRICS_ADDR/);
      assert.doesNotMatch(r.text, /leaderway_/, `${p.name} leaked metrics in its refusal`);
    }
  });

  it('with LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS=true the API listener serves /metrics', async () => {
    const node = await call(openNode.url, '/metrics');
    assert.equal(node.status, 200, node.text);
    assert.match(node.text, NODE_METRIC);
    const gw = await call(openGw.url, '/metrics');
    assert.equal(gw.status, 200, gw.text);
    assert.match(gw.text, GATEWAY_METRIC);
  });

  it('the metrics listener serves GET /metrics without a token, and nothing else', async () => {
    for (const [p, metric] of [
      ...c.nodes.map((n) => [n, NODE_METRIC] as const),
      [c.gw, GATEWAY_METRIC] as const,
    ]) {
      assert.ok(p.metricsUrl, `${p.name} has a metrics listener`);
      const r = await call(p.metricsUrl, '/metrics');
      assert.equal(r.status, 200, `${p.name}: ${r.text}`);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.match(r.text, metric);
      for (const path of ['/v1/sys/health', '/-/ready', '/v1/sys/metrics?format=prometheus', '/']) {
        assert.equal((await call(p.metricsUrl, path)).status, 404, `${p.name} ${path}`);
      }
      assert.equal((await call(p.metricsUrl, '/metrics', { method: 'POST', body: {} })).status, 405);
    }
  });

  it('the metrics listener cuts a request that never completes, without answering it', async () => {
    const url = new URL(c.gw.metricsUrl);
    const started = Date.now();
    const { text, ms } = await new Promise<{ text: string; ms: number }>((resolve, reject) => {
      const s = connect(Number(url.port), url.hostname, () =>
        s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'),
      );
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        text += d;
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve({ text, ms: Date.now() - started }));
      setTimeout(() => reject(new Error('the half-sent request was never cut')), 20_000).unref();
    });
    assert.equal(text, '', 'no answer to a request that never completed');
    assert.ok(ms < 15_000, `cut after ${ms} ms`);
  });

  it('sys/metrics needs a token whose policies grant read on sys/metrics (root always)', async () => {
    const root = c.token;
    const api = (path: string, token?: string, body?: unknown) =>
      call(c.gw.url, `/v1/${path}`, { token, body, method: body === undefined ? 'GET' : 'PUT' });
    const policy = 'path "sys/metrics" {\n  capabilities = ["read"]\n}\n';
    assert.equal((await api('sys/policy/metrics-reader', root, { policy })).status, 204);
    const token = async (policies: string[]) => {
      const r = await call(c.gw.url, '/v1/auth/token/create', { token: root, body: { policies } });
      assert.equal(r.status, 200, r.text);
      return (r.body as { auth: { client_token: string } }).auth.client_token;
    };
    const reader = await token(['metrics-reader']);
    const other = await token(['default']);
    const path = 'sys/metrics?format=prometheus';
    for (const [who, t] of [
      ['no token', undefined],
      ['a token without the policy', other],
    ] as const) {
      const r = await api(path, t);
      assert.equal(r.status, 403, `${who}: ${r.text}`);
      assert.deepEqual(r.body, { errors: ['permission denied'] }, who);
    }
    for (const [name, target] of c.targets()) {
      const base = (await target()).url;
      for (const [who, t] of [
        ['root', root],
        ['the metrics reader', reader],
      ] as const) {
        const r = await call(base, `/v1/${path}`, { token: t });
        assert.equal(r.status, 200, `${who} via ${name}: ${r.text}`);
        assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
        assert.match(r.text, NODE_METRIC, `${who} via ${name}`);
      }
    }
    // Vault's default format is JSON, which is not served: said so, rather than text a client
    // would fail to parse.
    const json = await api('sys/metrics', reader);
    assert.equal(json.status, 400, json.text);
    assert.deepEqual(json.body, { errors: ['only format=prometheus is supported'] });
    // The policy opens sys/metrics and nothing else.
    assert.equal((await api('sys/mounts', reader)).status, 403);
  });
});
