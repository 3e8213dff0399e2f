/**
 * Tracing, metrics and logs end to end: real node and gateway processes export OTLP/HTTP to a
 * real receiver in this test; every request is one trace from the gateway (or a standby) to the
 * active node and its Redis calls; nothing secret is exported.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver';
import { freePort } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const SECRET_VALUE = `s3cr3t-${randomBytes(8).toString('hex')}`;

/** Checks the Prometheus text format line by line; returns the samples. */
function parseProm(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(
        line,
      );
    assert.ok(m, `not Prometheus text: ${line}`);
    samples.set(m[1] as string, Number(m[2]));
  }
  return samples;
}

function traceparent(): { header: string; traceId: string } {
  const traceId = randomBytes(16).toString('hex');
  return { header: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, traceId };
}

/** The spans of one trace, once spans with every one of `names` have arrived at `otlp`. */
function spansNamed(otlp: OtlpReceiver, traceId: string, names: string[], timeoutMs = 15_000) {
  return waitFor(
    () => {
      const s = otlp.spans().filter((x) => x.traceId === traceId);
      const seen = new Set(s.map((x) => x.name));
      return names.every((n) => seen.has(n)) ? s : null;
    },
    timeoutMs,
    `spans ${names.join(', ')} in trace ${traceId}`,
  );
}

describe('observability', () => {
  let redis: RedisServer;
  let otlp: OtlpReceiver;
  const keys = testKeys();
  let nodes: Proc[] = [];
  let gw: Proc;
  let token = '';

  before(async () => {
    redis = await startRedis();
    otlp = await startOtlpReceiver();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      // W3C plus the headers many load balancers and meshes inject (Zipkin B3, Jaeger).
      OTEL_PROPAGATORS: 'tracecontext,baggage,b3multi,jaeger',
    };
    const gwPort = await freePort();
    nodes = await Promise.all(
      ['o1', 'o2'].map((n) =>
        spawnNode(n, { redisUrl: redis.url, keys, apiAddr: `http://127.0.0.1:${gwPort}`, env: otel }),
      ),
    );
    token = await initCluster(nodes[0]!.url);
    await waitActive(nodes);
    gw = await spawnGateway('ogw', { redisUrl: redis.url, keys, port: gwPort, env: otel });
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 10_000, 'gateway ready');
    for (const n of nodes) {
      await waitFor(
        async () =>
          ((await call(n.url, '/v1/sys/leader')).body as { leader_address?: string }).leader_address,
        10_000,
        'leader known',
      );
    }
  });

  after(async () => {
    await Promise.all([...nodes, gw].filter(Boolean).map((p) => p.stop('SIGKILL')));
    await otlp?.close();
    await redis?.stop();
  });

  it('one request through the gateway is one trace: gateway, active node and Redis spans', async () => {
    const tp = traceparent();
    const w = await call(gw.url, '/v1/secret/data/traced', {
      token,
      body: { data: { value: SECRET_VALUE } },
      headers: { traceparent: tp.header },
    });
    assert.equal(w.status, 200, w.text);
    const spans = await waitFor(
      () => {
        const s = otlp.spans().filter((x) => x.traceId === tp.traceId);
        const services = new Set(s.map((x) => x.service));
        const redisSpan = s.some(
          (x) =>
            x.service === 'leaderway-node' &&
            (x.attributes['db.system'] === 'redis' || x.attributes['db.system.name'] === 'redis'),
        );
        if (process.env.LW_TEST_VERBOSE === '1')
          console.log([...new Set(s.map((x) => `${x.service}:${x.name}`))]);
        return services.has('leaderway-gateway') && services.has('leaderway-node') && redisSpan ? s : null;
      },
      15_000,
      'gateway, node and redis spans in one trace',
    );
    const names = new Set(spans.map((s) => s.name));
    assert.ok(names.has('lw.gateway.proxy'), [...names].join(','));
    assert.ok(names.has('lw.cluster.request'), [...names].join(','));
    // The node's span is a child of the gateway's proxy span: one tree, not two traces.
    const proxy = spans.find((s) => s.name === 'lw.gateway.proxy')!;
    const server = spans.find((s) => s.name === 'lw.cluster.request')!;
    assert.equal(server.parentSpanId, proxy.spanId);
  });

  /** The spans of one trace once the gateway's and the node's have arrived. */
  const traceSpans = (traceId: string) =>
    spansNamed(otlp, traceId, ['lw.gateway.request', 'lw.cluster.request']);

  it("the gateway's own server span continues the client's trace; the query keeps names only", async () => {
    const tp = traceparent();
    const r = await call(gw.url, '/v1/secret/data/traced?version=1&token=abc', {
      token,
      headers: { traceparent: tp.header },
    });
    assert.equal(r.status, 200, r.text);
    const spans = await traceSpans(tp.traceId);
    const server = spans.find((s) => s.name === 'lw.gateway.request')!;
    const proxy = spans.find((s) => s.name === 'lw.gateway.proxy')!;
    assert.equal(server.parentSpanId, tp.header.split('-')[2], 'child of the client span');
    assert.equal(proxy.parentSpanId, server.spanId);
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['http.route'], 'secret/data');
    assert.equal(server.attributes['url.path'], '/v1/secret/data/traced');
    assert.equal(server.attributes['url.query'], 'version=REDACTED&token=REDACTED');
  });

  for (const [format, headers] of [
    [
      'B3 (multi-header)',
      (t: string, s: string) => ({ 'x-b3-traceid': t, 'x-b3-spanid': s, 'x-b3-sampled': '1' }),
    ],
    ['Jaeger (uber-trace-id)', (t: string, s: string) => ({ 'uber-trace-id': `${t}:${s}:0:1` })],
  ] as const) {
    it(`${format} headers from a load balancer or mesh continue the trace (OTEL_PROPAGATORS)`, async () => {
      const traceId = randomBytes(16).toString('hex');
      const spanId = randomBytes(8).toString('hex');
      const r = await call(gw.url, '/v1/secret/data/traced', { token, headers: headers(traceId, spanId) });
      assert.equal(r.status, 200, r.text);
      const spans = await traceSpans(traceId);
      assert.equal(spans.find((s) => s.name === 'lw.gateway.request')!.parentSpanId, spanId);
    });
  }

  it('a request sent to a standby is one trace with standby and active spans', async () => {
    const active = await waitActive(nodes);
    const standby = nodes.find((n) => n !== active)!;
    const tp = traceparent();
    // A write, which the standby forwards (it serves reads itself).
    const r = await call(standby.url, '/v1/secret/data/traced', {
      token,
      body: { data: { traced: true } },
      headers: { traceparent: tp.header },
    });
    assert.equal(r.status, 200, r.text);
    const spans = await spansNamed(otlp, tp.traceId, ['lw.forward', 'lw.cluster.request']);
    const fwd = spans.find((s) => s.name === 'lw.forward')!;
    const srv = spans.find((s) => s.name === 'lw.cluster.request')!;
    assert.equal(srv.parentSpanId, fwd.spanId);
  });

  it('/metrics on a node and on the gateway parse as Prometheus text; leader changes are counted', async () => {
    const before = parseProm((await call(gw.metricsUrl, '/metrics')).text);
    const changes = before.get('leaderway_gateway_leader_changes_total') ?? 0;
    assert.ok(changes >= 1);
    const active = await waitActive(nodes);
    const nm = parseProm((await call(active.metricsUrl, '/metrics')).text);
    assert.equal(nm.get('leaderway_lock_held'), 1);
    assert.ok([...nm.keys()].some((k) => k.startsWith('process_cpu_seconds_total')));
    assert.equal((await call(active.url, '/v1/sys/step-down', { method: 'PUT', token })).status, 204);
    await waitActive(nodes, 10_000, active);
    await waitFor(
      async () => {
        const m = parseProm((await call(gw.metricsUrl, '/metrics')).text);
        return (m.get('leaderway_gateway_leader_changes_total') ?? 0) > changes;
      },
      10_000,
      'leader change counted',
    );
    const after = parseProm((await call(active.metricsUrl, '/metrics')).text);
    assert.equal(after.get('leaderway_lock_held'), 0);
    // Labels stay bounded: random paths become route="other".
    await call(gw.url, `/v1/${randomBytes(6).toString('hex')}/x`, { token });
    const m = (await call(gw.metricsUrl, '/metrics')).text;
    assert.ok(m.includes('route="other"'));
    assert.ok(!/route="[0-9a-f]{12}/.test(m));
  });

  it('logs carry trace ids; nothing secret is exported, logged or labelled', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const everything = [
      ...otlp.raw.map((b) => b.toString('utf8')),
      ...[...nodes, gw].flatMap((p) => p.lines),
      (await call(gw.metricsUrl, '/metrics')).text,
      ...(await Promise.all(nodes.map(async (n) => (await call(n.metricsUrl, '/metrics')).text))),
    ].join('\n');
    for (const [what, secret] of [
      ['secret value', SECRET_VALUE],
      ['root token', token],
      ['seal key', keys.sealKey],
      ['advertisement key', keys.adKey],
    ] as const) {
      assert.ok(!everything.includes(secret), `${what} leaked into telemetry`);
    }
    assert.ok(!everything.includes('BEGIN PRIVATE KEY'), 'a private key leaked');
  });
});

describe('observability: a held request', () => {
  it("a request held for a leader shows the wait inside the gateway's request span", async () => {
    const redis = await startRedis();
    const otlp = await startOtlpReceiver();
    let gw: Proc | undefined;
    try {
      // No node at all: the gateway holds the request for the failover wait, then answers 503.
      gw = await spawnGateway('held', {
        redisUrl: redis.url,
        keys: testKeys(),
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_BSP_SCHEDULE_DELAY: '100',
          LEADERWAY_FAILOVER_WAIT: '300ms',
        },
      });
      const tp = traceparent();
      const r = await call(gw.url, '/v1/secret/data/x', { headers: { traceparent: tp.header } });
      assert.equal(r.status, 503, r.text);
      const spans = await spansNamed(
        otlp,
        tp.traceId,
        ['lw.gateway.request', 'lw.gateway.leader_wait'],
        10_000,
      );
      const server = spans.find((s) => s.name === 'lw.gateway.request')!;
      const wait = spans.find((s) => s.name === 'lw.gateway.leader_wait')!;
      assert.equal(wait.parentSpanId, server.spanId, 'the wait is a child of the request span');
      assert.equal(wait.attributes['lw.found'], false);
      assert.equal(server.attributes['http.response.status_code'], 503);
    } finally {
      await gw?.stop('SIGKILL');
      await otlp.close();
      await redis.stop();
    }
  });
});

/**
 * These gateways have no leader to follow: a request is answered 503 once the failover wait is
 * over (10 s by default, three requests: most of this suite's time); a span is all it needs.
 */
const NO_HOLD = { LEADERWAY_FAILOVER_WAIT: '300ms' };

describe('observability: defaults', () => {
  it('exports http/protobuf by default and nothing at all without an endpoint', async () => {
    const redis = await startRedis();
    const otlp = await startOtlpReceiver();
    const keys = testKeys();
    const procs: Proc[] = [];
    try {
      procs.push(
        await spawnGateway('proto', {
          redisUrl: redis.url,
          keys,
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '100', ...NO_HOLD },
        }),
      );
      procs.push(
        await spawnGateway('silent', {
          redisUrl: redis.url,
          keys,
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SDK_DISABLED: 'true', ...NO_HOLD },
        }),
      );
      procs.push(await spawnGateway('unset', { redisUrl: redis.url, keys, env: NO_HOLD }));
      await call(procs[0]!.url, '/v1/secret/data/x');
      await waitFor(() => otlp.contentTypes.includes('application/x-protobuf'), 10_000, 'a protobuf export');
      const n = otlp.raw.length;
      await call(procs[1]!.url, '/v1/secret/data/x');
      await call(procs[2]!.url, '/v1/secret/data/x');
      await new Promise((r) => setTimeout(r, 1_000));
      // Only the first gateway exports (and only its own spans, which name it).
      assert.ok(otlp.raw.slice(n).every((b) => !b.includes('silent') && !b.includes('unset')));
      for (const p of procs.slice(1))
        assert.ok(!p.lines.some((l) => /"level":"error"/.test(l)), `${p.name} logged an error`);
    } finally {
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      await otlp.close();
      await redis.stop();
    }
  });
});
