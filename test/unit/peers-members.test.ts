/**
 * The active's side of spread routing: which standbys its membership record lists. Only a
 * standby that echoed within MEMBER_LATE_MS, says it is serving and announced a well-formed
 * listener for gateways is a member; the echo is what a standby sends over the cluster channel.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { type Echo, MEMBER_LATE_MS, PeerTable } from '../../node/ha/peers';

/** Posts `echo` to the table as the cluster listener would; resolves with the status answered. */
function post(table: PeerTable, echo: unknown): Promise<number> {
  const req = Object.assign(Readable.from([Buffer.from(JSON.stringify(echo))]), { method: 'POST' });
  return new Promise((resolve) => {
    const res = {
      headersSent: false,
      writeHead: (status: number) => resolve(status),
      setHeader: () => undefined,
      end: () => undefined,
      destroy: () => undefined,
    };
    table.handle(req as unknown as Http2ServerRequest, res as unknown as Http2ServerResponse, 'echo');
  });
}

const echo = (node: string, over: Partial<Echo> = {}): Echo => ({
  node_id: node,
  api_addr: 'http://127.0.0.1:8200',
  cluster_addr: 'https://127.0.0.1:8201',
  version: 'test',
  status: 'serving',
  reads: { id: randomUUID(), addr: `https://127.0.0.1:82${node.length}1`, cert: 'QUJD' },
  ...over,
});

describe('PeerTable.members', () => {
  it('lists serving standbys with a listener, heard from lately, in node order', async () => {
    const t = new PeerTable();
    const now = Date.now();
    assert.equal(await post(t, echo('n3')), 204);
    assert.equal(await post(t, echo('n2')), 204);
    assert.deepEqual(
      t.members(now).map((m) => [m.node_id, m.status]),
      [
        ['n2', 'serving'],
        ['n3', 'serving'],
      ],
    );
    const [m] = t.members(Date.now() + 1_000);
    assert.ok(m && m.heartbeat_age_ms >= 1_000 && m.heartbeat_age_ms < 2_000);
  });

  it('leaves out a standby whose heartbeat is late, that drains, or announces no (valid) listener', async () => {
    const t = new PeerTable();
    const now = Date.now();
    await post(t, echo('late'));
    assert.equal(t.members(now + MEMBER_LATE_MS + 100).length, 0, 'late');
    const u = new PeerTable();
    await post(u, echo('draining', { status: 'draining' }));
    await post(u, echo('none', { reads: null }));
    await post(u, echo('old')); // then an older node's echo, without the new fields
    await post(u, { node_id: 'old', api_addr: 'x', cluster_addr: 'y', version: 'v' });
    await post(u, echo('plain', { reads: { id: randomUUID(), addr: 'http://127.0.0.1:1', cert: 'QUJD' } }));
    await post(u, echo('bad-id', { reads: { id: 'x', addr: 'https://127.0.0.1:1', cert: 'QUJD' } }));
    await post(u, echo('ok'));
    assert.deepEqual(
      u.members(Date.now()).map((m) => m.node_id),
      ['ok'],
    );
  });
});
