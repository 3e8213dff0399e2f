/**
 * Spread routing end to end (LEADERWAY_GATEWAY_READ_ROUTING=spread): real Redis, three real nodes
 * and a real gateway. The active publishes a signed membership record of its standbys; the
 * gateway sends reads to the active and to the standbys' listeners for gateways (mutual TLS with
 * its own identity), writes only to the active, and retries on the active any read a standby did
 * not serve or could not be reached for.
 * Standbys serve the reads they are sent themselves (standby reads, the default).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newClusterIdentity } from '../../node/ha/cluster-cert';
import { gatewayClientTls } from '../helpers/cluster';
import { TestGatewayCa } from '../helpers/gateway-ca';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import type { Proc } from '../helpers/procs';
import { waitFor } from '../helpers/procs';
import { tlsAccepted } from '../helpers/tls-probe';

/** Sum of a metric's series whose labels contain every one of `labels`. */
async function metric(p: Proc, name: string, ...labels: string[]): Promise<number> {
  const text = (await call(p.metricsUrl, '/metrics')).text;
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm')))
    if (labels.every((l) => (m[1] ?? '').includes(l))) n += Number(m[2]);
  return n;
}

/** Requests a node took from gateways over the cluster channel (on a standby: its listener for gateways). */
const fromGateways = (p: Proc, ...labels: string[]) =>
  metric(p, 'leaderway_http_requests_total', 'via="gateway"', ...labels);

const READS = 60;

describe('spread read routing through the gateway', () => {
  let c: GatewayCluster;

  before(async () => {
    c = await startGatewayCluster({ gatewayEnv: { LEADERWAY_GATEWAY_READ_ROUTING: 'spread' } });
    const w = await call(c.gw.url, '/v1/secret/data/spread', { token: c.token, body: { data: { v: 1 } } });
    assert.equal(w.status, 200, w.text);
    // The active vouches for both standbys; the gateway has read and verified that.
    await waitFor(
      async () => (await metric(c.gw, 'leaderway_gateway_standby_members')) === 2,
      15_000,
      'the gateway to know both standbys',
    );
  });

  after(async () => {
    await c?.stop();
  });

  async function standbys(): Promise<Proc[]> {
    const a = await c.active();
    return c.nodes.filter((n) => n !== a && n.child.exitCode === null && n.child.signalCode === null);
  }

  /** What the gateway counts of spread reads: served by a standby, and sent on to the active. */
  const gatewayCounts = async () => ({
    standby: await metric(c.gw, 'leaderway_gateway_reads_served_total', 'target="standby"'),
    fallbacks: await metric(c.gw, 'leaderway_gateway_read_fallbacks_total'),
  });

  it('sends reads to the standbys too, and loses none of them', async () => {
    const ss = await standbys();
    const before = await Promise.all(ss.map((s) => fromGateways(s)));
    const counted = await gatewayCounts();
    for (let i = 0; i < READS; i++) {
      const r = await call(c.gw.url, '/v1/secret/data/spread', { token: c.token });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((r.body as { data: { data: unknown } }).data.data, { v: 1 });
    }
    const afterReads = await Promise.all(ss.map((s) => fromGateways(s)));
    ss.forEach((s, i) => {
      // Sequential reads leave nothing outstanding: ties rotate over the three nodes.
      assert.ok(afterReads[i]! - before[i]! >= READS / 6, `${s.name} took reads from the gateway`);
    });
    // Each read a standby took was served there or sent on to the active, and counted so.
    const took = afterReads.reduce((a, n, i) => a + n - before[i]!, 0);
    await waitFor(
      async () => {
        const now = await gatewayCounts();
        return now.standby - counted.standby + (now.fallbacks - counted.fallbacks) === took;
      },
      5_000,
      `the gateway to count the ${took} reads the standbys took`,
    );
    // Every read is answered; the gateway counts by whom.
    const served =
      (await metric(c.gw, 'leaderway_gateway_reads_served_total', 'target="active"')) +
      (await metric(c.gw, 'leaderway_gateway_reads_served_total', 'target="standby"'));
    assert.ok(served >= READS, `${served} reads counted as served`);
  });

  it('standbys serve the reads they take', async () => {
    const ss = await standbys();
    for (let i = 0; i < READS; i++) await call(c.gw.url, '/v1/secret/data/spread', { token: c.token });
    for (const s of ss) assert.ok((await fromGateways(s, 'status="200"')) > 0, `${s.name} served reads`);
    assert.ok((await metric(c.gw, 'leaderway_gateway_reads_served_total', 'target="standby"')) > 0);
  });

  it('sends writes (and sys/ reads) only to the active', async () => {
    const ss = await standbys();
    const before = await Promise.all(ss.map((s) => fromGateways(s)));
    for (let i = 0; i < 10; i++) {
      const w = await call(c.gw.url, `/v1/secret/data/w${i}`, { token: c.token, body: { data: { i } } });
      assert.equal(w.status, 200, w.text);
      assert.equal((await call(c.gw.url, '/v1/sys/health')).status, 200);
      const m = await call(c.gw.url, '/v1/sys/mounts', { token: c.token });
      assert.equal(m.status, 200);
    }
    const afterWrites = await Promise.all(ss.map((s) => fromGateways(s)));
    assert.deepEqual(afterWrites, before, 'no standby received a write or a sys/ request');
  });

  /**
   * Reads through the gateway from 4 clients while `fault` runs (half a second after they start,
   * and until half a second after it ends); what each failed read answered.
   */
  async function readsThrough(fault: () => Promise<void>): Promise<{ reads: number; failures: string[] }> {
    const failures: string[] = [];
    let reads = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const r = await call(c.gw.url, '/v1/secret/data/spread', { token: c.token });
          reads++;
          if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    await new Promise((r) => setTimeout(r, 500));
    await fault();
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(workers);
    return { reads, failures };
  }

  it('a standby killed under read load loses no read: they are retried on the active', async () => {
    const [victim] = await standbys();
    assert.ok(victim);
    const { reads, failures } = await readsThrough(async () => {
      await victim.stop('SIGKILL');
      // Past the heartbeat limit: the active drops it from the record, the gateway follows.
      await waitFor(
        async () => (await metric(c.gw, 'leaderway_gateway_standby_members')) === 1,
        10_000,
        'the gateway to drop the dead standby',
      );
    });
    assert.ok(reads > 20, `${reads} reads ran`);
    assert.deepEqual(failures, [], 'every read answered 200');
  });

  it('a standby’s listener admits only gateways the nodes trust', async () => {
    const [s] = await standbys();
    assert.ok(s);
    const gateway = await gatewayClientTls();
    // The control: this gateway's own certificate is admitted (the listener is there).
    assert.equal(await tlsAccepted(s.clusterPort, gateway), true, 'the gateway’s certificate');
    const stranger = TestGatewayCa.create('another CA').issue('stranger', { dns: ['gw.example'] });
    assert.equal(await tlsAccepted(s.clusterPort, { cert: stranger.cert, key: stranger.key }), false);
    assert.equal(await tlsAccepted(s.clusterPort, {}), false, 'no certificate');
    const selfMade = await newClusterIdentity();
    assert.equal(
      await tlsAccepted(s.clusterPort, { cert: selfMade.certPem, key: selfMade.keyPem }),
      false,
      'a self-made certificate',
    );
  });

  it('the active killed under read load: reads are held and served by the standby that takes over', async () => {
    const active = await c.active();
    const { reads, failures } = await readsThrough(async () => {
      await active.stop('SIGKILL');
      const next = await c.active();
      assert.notEqual(next, active);
    });
    assert.ok(reads > 20, `${reads} reads ran`);
    assert.deepEqual(failures, [], 'every read answered 200');
  });
});
