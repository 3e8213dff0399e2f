/**
 * Spread routing, the pure parts and the membership trust: which requests may go to a standby,
 * which target `pick` chooses (least outstanding, health, ties, fallback to the active), the
 * router's memory of unreachable standbys and of heartbeat age, the membership codec (signed,
 * encrypted, bound to its path) and the gateway's membership watcher failing closed.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ReadRouter } from '../../gateway/read-router';
import { type Candidate, HEARTBEAT_LATE_MS, pick, spreadable } from '../../gateway/router';
import { type ClusterIdentity, newClusterIdentity } from '../../node/ha/cluster-cert';
import type { Advertisement } from '../../shared/advertisement';
import { keyId, open, seal } from '../../shared/crypto/aead';
import { signingKeyFromSeed, verifyKeyFromRaw } from '../../shared/crypto/signing';
import type { Leader, LeaderWatcher } from '../../shared/leader/leader-watcher';
import { MembershipWatcher, type Standby } from '../../shared/leader/membership-watcher';
import {
  decodeMembership,
  encodeMembership,
  type Member,
  type Membership,
  membershipPath,
} from '../../shared/membership';
import { InmemBackend } from '../../shared/storage/inmem';

describe('spreadable: only clear reads may go to a standby', () => {
  const h = (extra: IncomingHttpHeaders = {}): IncomingHttpHeaders => ({ 'x-vault-token': 't', ...extra });

  it('takes GET, HEAD and LIST (and GET ?list=true) outside sys/ without a body', () => {
    assert.ok(spreadable('GET', '/v1/secret/data/a', h()));
    assert.ok(spreadable('HEAD', '/v1/secret/data/a', h()));
    assert.ok(spreadable('LIST', '/v1/secret/metadata/', h()));
    assert.ok(spreadable('GET', '/v1/secret/metadata/?list=true', h()));
    assert.ok(spreadable('GET', '/v1/auth/token/lookup-self', h({ 'content-length': '0' })));
  });

  it('sends writes, bodies, sys/, wrapping and active-only headers to the active', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
      assert.ok(!spreadable(m, '/v1/secret/data/a', h()), m);
    assert.ok(!spreadable('GET', '/v1/secret/data/a', h({ 'content-length': '2' })));
    assert.ok(!spreadable('GET', '/v1/secret/data/a', h({ 'transfer-encoding': 'chunked' })));
    for (const url of [
      '/v1/sys/health',
      '/v1/sys',
      '/v1/sys?x=1',
      '/v1/sys/wrapping/lookup',
      '/-/ready',
      '/metrics',
    ])
      assert.ok(!spreadable('GET', url, h()), url);
    for (const header of ['x-vault-wrap-ttl', 'x-vault-forward', 'x-vault-inconsistent'])
      assert.ok(!spreadable('GET', '/v1/secret/data/a', h({ [header]: '1' })), header);
  });

  it('does not let a path name sys/ in disguise', () => {
    for (const url of [
      '/v1/secret/../sys/health',
      '/v1//sys/health',
      '/v1/%73ys/health',
      '/v1/a%2f..%2fsys/health',
      '/v1/./sys/health',
      '/v1/a\\..\\sys',
      '/v1/%2e%2e/sys/health',
      '/v1/bad%zz',
    ])
      assert.ok(!spreadable('GET', url, h()), url);
  });
});

describe('pick: least outstanding over the active and fit standbys', () => {
  const active = (outstanding: number): Candidate<string> => ({
    target: 'active',
    standby: null,
    outstanding,
    full: false,
  });
  const standby = (
    name: string,
    outstanding: number,
    over: Partial<NonNullable<Candidate<string>['standby']>> & { full?: boolean } = {},
  ): Candidate<string> => ({
    target: name,
    standby: { status: 'serving', heartbeatAgeMs: 500, coolingDown: false, ...over },
    outstanding,
    full: over.full ?? false,
  });
  const chosen = (cs: Candidate<string>[], turn = 0) => pick(cs, turn)?.target ?? null;

  it('chooses the target with the fewest outstanding requests', () => {
    assert.equal(chosen([active(5), standby('s1', 2), standby('s2', 3)]), 's1');
    assert.equal(chosen([active(1), standby('s1', 2), standby('s2', 3)]), 'active');
  });

  it('gives nothing to a standby that is late, draining, cooling down or full', () => {
    const unfit = [
      standby('late', 0, { heartbeatAgeMs: HEARTBEAT_LATE_MS + 1 }),
      standby('draining', 0, { status: 'draining' }),
      standby('cooling', 0, { coolingDown: true }),
      standby('full', 0, { full: true }),
    ];
    for (let turn = 0; turn < 8; turn++) assert.equal(chosen([active(9), ...unfit], turn), 'active');
    // At the limit it is still on time.
    assert.equal(chosen([active(9), standby('s', 0, { heartbeatAgeMs: HEARTBEAT_LATE_MS })]), 's');
  });

  it('rotates among equals, so an idle cluster still spreads', () => {
    const cs = [active(0), standby('s1', 0), standby('s2', 0), standby('busy', 4)];
    const seen = [0, 1, 2, 3, 4, 5].map((turn) => chosen(cs, turn));
    assert.deepEqual(seen, ['active', 's1', 's2', 'active', 's1', 's2']);
  });

  it('is null when nothing is fit (the caller sends to the active)', () => {
    assert.equal(chosen([]), null);
    assert.equal(chosen([standby('late', 0, { heartbeatAgeMs: HEARTBEAT_LATE_MS * 2 })]), null);
  });
});

/** A fake pool: only the admission counts the router reads. */
const pool = (inUse: number, queued = 0) => ({ admission: { inUse, queued } });

describe('ReadRouter', () => {
  const member = (node: string): Member => ({
    node_id: node,
    id: randomUUID(),
    addr: 'https://127.0.0.1:1',
    cert: 'AAAA',
    status: 'serving',
    heartbeat_age_ms: 100,
  });
  const standby = (node: string, inUse: number, listedAt: number): Standby =>
    ({ ad: { uuid: node }, client: pool(inUse), member: member(node), listedAt }) as unknown as Standby;
  const leader = { ad: { uuid: 'active' }, client: pool(3) } as unknown as Leader;

  it('sends to the least loaded standby, avoids one it could not reach for a while, then tries it again', () => {
    let now = 10_000;
    const s1 = standby('s1', 0, now);
    const s2 = standby('s2', 1, now);
    const r = new ReadRouter({ current: () => leader }, { current: () => [s1, s2] }, () => now);
    assert.equal(r.choose(), s1);
    r.unreachable(s1);
    assert.equal(r.choose(), s2);
    now += 3_001;
    assert.equal(r.choose(), s1);
  });

  it('ages members by how long their record has stood unchanged: a silent active stops the spread', () => {
    let now = 10_000;
    const s1 = standby('s1', 0, now);
    const r = new ReadRouter({ current: () => leader }, { current: () => [s1] }, () => now);
    assert.equal(r.choose(), s1);
    now += HEARTBEAT_LATE_MS;
    assert.equal(r.choose(), null, 'record age plus heartbeat age is past the limit');
  });

  it('sends to the active (null) with no leader known or no members', () => {
    const s1 = standby('s1', 0, performance.now());
    assert.equal(new ReadRouter({ current: () => null }, { current: () => [s1] }).choose(), null);
    assert.equal(new ReadRouter({ current: () => leader }, { current: () => [] }).choose(), null);
  });
});

const key = (): Buffer => randomBytes(32);

describe('membership codec', () => {
  const [k1, k2] = [key(), key()];
  const signer = signingKeyFromSeed(randomBytes(32));
  const other = signingKeyFromSeed(randomBytes(32));
  const verify = [verifyKeyFromRaw(signer.publicRaw)];
  const record = (): Membership => ({
    uuid: randomUUID(),
    epoch: 7,
    seq: 3,
    members: [
      {
        node_id: 'node-2',
        id: randomUUID(),
        addr: 'https://10.0.0.2:8201',
        cert: randomBytes(64).toString('base64'),
        status: 'serving',
        heartbeat_age_ms: 420,
      },
    ],
  });
  const sealed = (path: string, body: unknown) =>
    Buffer.concat([Buffer.from([0x03]), keyId(k1), seal(k1, Buffer.from(JSON.stringify(body)), path)]);

  it('round-trips and hides every field', () => {
    const m = record();
    const raw = encodeMembership(m, [k1], signer);
    assert.deepEqual(decodeMembership(raw, membershipPath(m.uuid), [k2, k1], verify), {
      ok: true,
      record: m,
    });
    for (const v of ['node-2', '10.0.0.2', m.uuid]) assert.ok(!raw.includes(Buffer.from(v)), v);
  });

  it('refuses a record not signed by a node, tampered, moved, malformed or under an unknown key', () => {
    const m = record();
    const path = membershipPath(m.uuid);
    const reason = (raw: Buffer, p = path) => {
      const d = decodeMembership(raw, p, [k1], verify);
      return d.ok ? 'ok' : d.reason;
    };
    // Whoever holds only the advertisement key (a gateway) can encrypt, but not sign.
    assert.equal(reason(sealed(path, { m })), 'unsigned');
    assert.equal(reason(encodeMembership(m, [k1], other)), 'unknown-signer');
    // A real signature, then a member's address pointed elsewhere.
    const plain = open(k1, encodeMembership(m, [k1], signer).subarray(5), path);
    const body = JSON.parse(String(plain)) as { m: Membership; sig_key: string; sig: string };
    const evil = { ...body, m: { ...body.m, members: [{ ...m.members[0], addr: 'https://evil:8201' }] } };
    assert.equal(reason(sealed(path, evil)), 'bad-signature');
    // Another epoch, a member dropped: the signature covers every field.
    assert.equal(reason(sealed(path, { ...body, m: { ...body.m, epoch: 8 } })), 'bad-signature');
    assert.equal(reason(sealed(path, { ...body, m: { ...body.m, members: [] } })), 'bad-signature');
    // Copied to another leader's path: the path is associated data.
    assert.equal(reason(encodeMembership(m, [k1], signer), membershipPath(randomUUID())), 'decrypt');
    assert.equal(reason(encodeMembership(m, [k2], signer)), 'unknown-key');
    for (const bad of [
      { ...m, epoch: 0 },
      { ...m, members: [{ ...m.members[0], addr: 'http://x:1' }] },
      { ...m, members: [{ ...m.members[0], status: 'sealed' }] },
    ])
      assert.equal(reason(sealed(path, { m: bad, sig_key: body.sig_key, sig: body.sig })), 'schema');
    // An advertisement's format at a membership path.
    assert.equal(reason(Buffer.concat([Buffer.from([0x02]), keyId(k1), randomBytes(40)])), 'format');
  });
});

describe('MembershipWatcher (fails closed)', () => {
  const k1 = key();
  const signer = signingKeyFromSeed(randomBytes(32));
  const verify = [verifyKeyFromRaw(signer.publicRaw)];
  let gateway: ClusterIdentity;
  let standbyId: ClusterIdentity;
  before(async () => {
    [gateway, standbyId] = await Promise.all([newClusterIdentity(), newClusterIdentity()]);
  });

  const leaderAd = (epoch: number): Advertisement => ({
    uuid: randomUUID(),
    epoch,
    node_id: 'node-1',
    api_addr: '',
    cluster_addr: 'https://127.0.0.1:1',
    cert: '',
    active_time: '',
  });
  const setup = () => {
    const data = new InmemBackend();
    const leaders = Object.assign(new EventEmitter(), { leader: null as Leader | null });
    const rejected: string[] = [];
    const w = new MembershipWatcher({
      data,
      leaders: Object.assign(leaders, { current: () => leaders.leader }) as unknown as LeaderWatcher,
      keys: [k1],
      verifyKeys: verify,
      identity: async () => ({ certPem: gateway.certPem, keyPem: gateway.keyPem }),
      hooks: { onReject: (r) => rejected.push(r) },
    });
    return { data, leaders, rejected, w };
  };
  const membership = (ad: Advertisement, seq: number, epoch = ad.epoch): Membership => ({
    uuid: ad.uuid,
    epoch,
    seq,
    members: [
      {
        node_id: 'node-2',
        id: standbyId.uuid,
        addr: 'https://127.0.0.1:2',
        cert: standbyId.certDer,
        status: 'serving',
        heartbeat_age_ms: 10,
      },
    ],
  });
  const watchers: MembershipWatcher[] = [];
  after(async () => {
    for (const w of watchers) await w.close();
  });

  it('uses the followed leader’s verified record, and drops it when the leader goes', async () => {
    const { data, leaders, w } = setup();
    watchers.push(w);
    const ad = leaderAd(4);
    leaders.leader = { ad, client: null };
    await data.put(membershipPath(ad.uuid), encodeMembership(membership(ad, 1), [k1], signer));
    await w.refresh();
    assert.deepEqual(
      w.current().map((s) => [s.member.node_id, s.client.origin]),
      [['node-2', 'https://127.0.0.1:2']],
    );
    // Another leader: its predecessor's record is not used, even before the next read.
    leaders.leader = { ad: leaderAd(5), client: null };
    assert.equal(w.current().length, 0);
    leaders.leader = { ad, client: null };
    await w.refresh();
    assert.equal(w.current().length, 1);
    leaders.leader = null;
    assert.equal(w.current().length, 0);
  });

  it('refuses another epoch’s, an older seq, and a forged record: no standbys', async () => {
    const { data, leaders, rejected, w } = setup();
    watchers.push(w);
    const ad = leaderAd(4);
    leaders.leader = { ad, client: null };
    const path = membershipPath(ad.uuid);
    await data.put(path, encodeMembership(membership(ad, 1, 3), [k1], signer));
    await w.refresh();
    assert.equal(w.current().length, 0);
    await data.put(path, encodeMembership(membership(ad, 5), [k1], signer));
    await w.refresh();
    assert.equal(w.current().length, 1);
    await data.put(path, encodeMembership(membership(ad, 4), [k1], signer));
    await w.refresh();
    assert.equal(w.current().length, 0, 'a replayed older record is not used');
    const forger = signingKeyFromSeed(randomBytes(32));
    await data.put(path, encodeMembership(membership(ad, 9), [k1], forger));
    await w.refresh();
    assert.equal(w.current().length, 0);
    assert.deepEqual(rejected, ['leader-mismatch', 'stale-seq', 'unknown-signer']);
  });
});
