/**
 * Behind a real load balancer: HAProxy in front of two TLS gateways, in both of the modes our
 * users run — `mode tcp` (TLS passed through, `send-proxy-v2`) and `mode http` (`http-reuse
 * always`, backend connections kept idle for a minute, `send-proxy-v2`). Clients come from
 * 127.0.0.2, HAProxy from 127.0.0.1 (the only address the gateways accept PROXY headers from).
 *  - idle gaps straddling the old 5 s keep-alive: no 502, no reset, and keep-alive connections
 *    survive the gaps (the gateways accept a handful of connections, not one per request);
 *  - the client's address reaches the active node (an AppRole bound to 127.0.0.2/32 logs in
 *    through both modes; bound to 127.0.0.3/32 it does not);
 *  - a certificate rotated mid-run (files replaced, as a Kubernetes Secret update does) is served
 *    to new connections without a failed request; a bad one is refused and the old one stays;
 *  - SIGHUP reloads instead of terminating;
 * and the "api_addr is the load balancer" trap is named by the node and the gateway.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import selfsigned from 'selfsigned';
import { Agent, request } from 'undici';
import { waitActive } from '../helpers/cluster';
import { startTestHAProxy, type TestHAProxy } from '../helpers/haproxy';
import { call, initCluster, scrapeMetric } from '../helpers/http';
import { freePorts } from '../helpers/ports';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

async function certPair(name: string): Promise<{ cert: string; key: string }> {
  const now = Date.now();
  const p = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 3600_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: p.cert, key: p.private };
}

/** Replaces a file the way a Secret update does: write aside, then rename over it. */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The certificate a fresh TLS connection to `port` is served. */
function servedCert(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()?.fingerprint256 ?? '');
      s.destroy();
    });
    s.once('error', reject);
  });
}

describe('behind HAProxy: PROXY protocol, keep-alive that outlasts the balancer, TLS reload', () => {
  let redis: RedisServer;
  const keys = testKeys();
  let nodes: Proc[] = [];
  const gws: Proc[] = [];
  let haproxy: TestHAProxy;
  let dir: string;
  let root = '';
  let tcpPort = 0;
  let httpPort = 0;
  const certs: Array<{ certFile: string; keyFile: string }> = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lw-lb-'));
    redis = await startRedis();
    const [g1, g2, p1, p2] = (await freePorts(4)) as [number, number, number, number];
    tcpPort = p1;
    httpPort = p2;
    // The nodes' api_addr is the load balancer (the HTTP frontend).
    const apiAddr = `http://127.0.0.1:${httpPort}`;
    nodes = await Promise.all(
      ['n1', 'n2'].map((n) =>
        spawnNode(n, { redisUrl: redis.url, keys, apiAddr, env: { LEADERWAY_LOG_LEVEL: 'debug' } }),
      ),
    );
    root = await initCluster(nodes[0]!.url);
    await waitActive(nodes);
    for (const [i, port] of [g1, g2].entries()) {
      const pair = await certPair(`gw${i + 1}`);
      const certFile = path.join(dir, `gw${i + 1}.crt`);
      const keyFile = path.join(dir, `gw${i + 1}.key`);
      writeFileSync(certFile, pair.cert);
      writeFileSync(keyFile, pair.key);
      certs.push({ certFile, keyFile });
      gws.push(
        await spawnGateway(`gw${i + 1}`, {
          redisUrl: redis.url,
          keys,
          port,
          env: {
            LEADERWAY_TLS_CERT_FILE: certFile,
            LEADERWAY_TLS_KEY_FILE: keyFile,
            LEADERWAY_PROXY_PROTOCOL_BEHAVIOR: 'allow_authorized',
            LEADERWAY_PROXY_PROTOCOL_AUTHORIZED_ADDRS: '127.0.0.1/32',
          },
        }),
      );
    }
    const servers = (extra: string) =>
      [g1, g2].map((p, i) => `  server gw${i + 1} 127.0.0.1:${p} ${extra}`).join('\n');
    haproxy = await startTestHAProxy(
      dir,
      [
        'global',
        '  maxconn 1000',
        'defaults',
        '  timeout connect 2s',
        '  timeout client 60s',
        '  timeout server 60s',
        'frontend fe_tcp',
        '  mode tcp',
        `  bind 127.0.0.1:${tcpPort}`,
        '  default_backend be_tcp',
        'backend be_tcp',
        '  mode tcp',
        servers('send-proxy-v2'),
        'frontend fe_http',
        '  mode http',
        `  bind 127.0.0.1:${httpPort}`,
        '  timeout http-keep-alive 60s',
        '  default_backend be_http',
        'backend be_http',
        '  mode http',
        '  http-reuse always',
        servers('ssl verify none send-proxy-v2 pool-purge-delay 60s'),
        '',
      ].join('\n'),
      httpPort,
    );
    for (const g of gws) {
      await waitFor(
        async () =>
          (
            await request(`https://127.0.0.1:${g.port}/-/ready`, {
              dispatcher: new Agent({ connect: { rejectUnauthorized: false } }),
            })
          ).statusCode === 200,
        15_000,
        `${g.name} ready`,
      );
    }
  });

  after(async () => {
    await haproxy?.stop();
    await Promise.all([...nodes, ...gws].map((p) => p.stop('SIGKILL')));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps connections through idle gaps longer than the old 5 s timeout: no 502, no reset', async () => {
    const tcp = new Agent({
      localAddress: '127.0.0.2',
      connect: { rejectUnauthorized: false },
      connections: 1,
    });
    const http = new Agent({ localAddress: '127.0.0.2', connections: 1 });
    let tcpConnects = 0;
    tcp.on('connect', () => tcpConnects++);
    const before = await Promise.all(
      gws.map((g) => scrapeMetric(g.metricsUrl, 'leaderway_gateway_connections_total')),
    );
    const failures: string[] = [];
    const runs = async (base: string, agent: Agent) => {
      for (const gap of [0, 4_800, 5_300, 6_500]) {
        await new Promise((r) => setTimeout(r, gap));
        try {
          const r = await request(`${base}/v1/secret/data/lb`, {
            dispatcher: agent,
            headers: { 'x-vault-token': root },
          });
          await r.body.dump();
          if (r.statusCode !== 404 && r.statusCode !== 200)
            failures.push(`${base} after ${gap} ms: ${r.statusCode}`);
        } catch (err) {
          failures.push(`${base} after ${gap} ms: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([
      runs(`https://127.0.0.1:${tcpPort}`, tcp),
      runs(`http://127.0.0.1:${httpPort}`, http),
    ]);
    assert.deepEqual(failures, []);
    assert.equal(
      tcpConnects,
      1,
      'the client’s one connection (TLS through mode tcp) lived through every gap',
    );
    const afterCounts = await Promise.all(
      gws.map((g) => scrapeMetric(g.metricsUrl, 'leaderway_gateway_connections_total')),
    );
    const accepted = afterCounts.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
    // Mode tcp: one. Mode http: HAProxy's pooled connections, reused across the gaps. (Our own
    // /metrics reads go to the metrics listener.) Without keep-alive past 5 s it would be one per
    // request (8+).
    assert.ok(accepted <= 6, `the gateways accepted ${accepted} connections`);
    await tcp.close();
    await http.close();
  });

  it('passes the client’s own address to the active node (AppRole bound to it)', async () => {
    const api = (p: string, body?: unknown) =>
      call(`http://127.0.0.1:${httpPort}`, `/v1/${p}`, { token: root, body });
    assert.equal((await api('sys/auth/approle', { type: 'approle' })).status, 204);
    for (const [role, cidr] of [
      ['here', '127.0.0.2/32'],
      ['elsewhere', '127.0.0.3/32'],
    ]) {
      assert.equal(
        (await api(`auth/approle/role/${role}`, { secret_id_bound_cidrs: cidr, token_bound_cidrs: cidr }))
          .status,
        204,
      );
    }
    const creds = async (role: string) => ({
      role_id: ((await api(`auth/approle/role/${role}/role-id`)).body as { data: { role_id: string } }).data
        .role_id,
      secret_id: (
        (await api(`auth/approle/role/${role}/secret-id`, {})).body as { data: { secret_id: string } }
      ).data.secret_id,
    });
    for (const base of [`https://127.0.0.1:${tcpPort}`, `http://127.0.0.1:${httpPort}`]) {
      const agent = new Agent({ localAddress: '127.0.0.2', connect: { rejectUnauthorized: false } });
      const login = async (role: string) => {
        const r = await request(`${base}/v1/auth/approle/login`, {
          method: 'POST',
          dispatcher: agent,
          body: JSON.stringify(await creds(role)),
          headers: { 'content-type': 'application/json' },
        });
        await r.body.dump();
        return r.statusCode;
      };
      assert.equal(await login('here'), 200, `${base}: bound to the client’s address`);
      assert.equal(await login('elsewhere'), 403, `${base}: bound to another address`);
      await agent.close();
    }
    const active = await waitActive(nodes);
    const seen = active.logs().filter((l) => l.msg === 'request' && l.remote_addr === '127.0.0.2');
    assert.ok(seen.length > 0, 'the active node logged the client’s address');
  });

  it('serves a rotated certificate to new connections without failing a request; refuses a bad one', async () => {
    const agent = new Agent({
      localAddress: '127.0.0.2',
      connect: { rejectUnauthorized: false },
      connections: 1,
    });
    const failures: string[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        try {
          const r = await request(`https://127.0.0.1:${tcpPort}/v1/sys/health`, { dispatcher: agent });
          await r.body.dump();
          if (r.statusCode !== 200) failures.push(String(r.statusCode));
        } catch (err) {
          failures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const gw1 = gws[0] as Proc;
    const old = await servedCert(gw1.port);
    const next = await certPair('gw1-rotated');
    replace(certs[0]!.keyFile, next.key);
    replace(certs[0]!.certFile, next.cert);
    await waitFor(
      async () => (await servedCert(gw1.port)) === fingerprint(next.cert),
      10_000,
      'the new certificate',
    );
    assert.notEqual(old, fingerprint(next.cert));
    // A key that does not match the certificate: refused, the rotated one stays.
    const stray = await certPair('stray');
    replace(certs[0]!.certFile, stray.cert);
    await waitFor(
      async () =>
        (await scrapeMetric(gw1.metricsUrl, 'leaderway_gateway_tls_reloads_total', 'result="failed"')) >= 1,
      10_000,
      'the bad certificate refused',
    );
    assert.equal(await servedCert(gw1.port), fingerprint(next.cert));
    // The log line may trail the metric by a moment on a loaded machine.
    await waitFor(
      () => gw1.logs().some((l) => l.msg === 'new TLS certificate refused; keeping the one in use'),
      5_000,
      'the refusal logged',
    );
    // SIGHUP reloads (OpenBao's signal) instead of terminating: put the pair back and signal.
    replace(certs[0]!.certFile, next.cert);
    gw1.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(gw1.child.exitCode, null, 'SIGHUP did not terminate the gateway');
    assert.equal(await servedCert(gw1.port), fingerprint(next.cert));
    stop = true;
    await load;
    await agent.close();
    assert.deepEqual(failures, []);
  });
});

describe('the "api_addr is the load balancer" trap is named', () => {
  let redis: RedisServer;
  let node: Proc;
  let gw: Proc;
  let root = '';

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    const [gwPort] = (await freePorts(1)) as [number];
    // api_addr is the gateway and cluster_addr is unset: the derived cluster address is the
    // gateway's host with port + 1, where nothing of this node listens.
    node = await spawnNode('n1', {
      redisUrl: redis.url,
      keys,
      apiAddr: `http://127.0.0.1:${gwPort}`,
      env: { VAULT_CLUSTER_ADDR: '' },
    });
    gw = await spawnGateway('gw', {
      redisUrl: redis.url,
      keys,
      port: gwPort,
      env: { LEADERWAY_FAILOVER_WAIT: '1s' },
    });
    root = await initCluster(node.url);
  });
  after(async () => {
    await Promise.all([node, gw].filter(Boolean).map((p) => p.stop('SIGKILL')));
    await redis?.stop();
  });

  it('the node logs it naming the setting, and shows it in sys/ha-status; the gateway’s /-/ready says why', async () => {
    await waitFor(
      () => node.logs().some((l) => String(l.msg).includes('cluster_addr does not reach')),
      20_000,
      'the node’s error',
    );
    const line = node.logs().find((l) => String(l.msg).includes('cluster_addr does not reach'));
    assert.match(String(line?.msg), /BAO_CLUSTER_ADDR/);
    const ha = await call(node.url, '/v1/sys/ha-status', { token: root });
    const self = (ha.body as { nodes: Array<Record<string, unknown>> }).nodes.find((n) => n.active_node);
    assert.equal(self?.cluster_address_reachable, false, ha.text);
    assert.equal(self?.cluster_address_error, 'ECONNREFUSED');
    const ready = await waitFor(
      async () => {
        const r = await call(gw.url, '/-/ready');
        return r.status === 503 && /not reachable at its cluster_addr/.test(r.text) ? r : undefined;
      },
      15_000,
      'the gateway naming the unreachable leader',
    );
    assert.match(ready.text, /ECONNREFUSED/);
    assert.ok(
      gw
        .logs()
        .some(
          (l) =>
            l.msg ===
            'cannot connect to the advertised leader: check its cluster_addr (BAO_CLUSTER_ADDR) and that this gateway can reach it',
        ),
    );
    const metrics = (await call(node.metricsUrl, '/metrics')).text;
    assert.match(metrics, /^leaderway_cluster_addr_reachable 0$/m);
  });
});
