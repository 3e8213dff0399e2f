/**
 * The PostgreSQL fencing audit (pg-audit.ts): the check catches fabricated violations in an audit
 * log, and against a real server the triggers record leaderway's own terms and fenced writes with
 * no violation, while a deposed node's write that skips the fence (what a backend without
 * `FOR SHARE` of the fence row would store) is caught, named by node and epoch.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { isLwError } from '../../shared/errors';
import { PostgresBackend } from '../../shared/storage/postgres/postgres-backend';
import { PostgresHABackend } from '../../shared/storage/postgres/postgres-ha-backend';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { type AuditRow, checkAudit, installAudit, readAudit } from './pg-audit';

/** A lease long enough for the first term's writes, short enough to run out within the test. */
const TTL_MS = 1_000;
const WRITES_IN_FIRST_TERM = 12;

let seq = 0;
function row(kind: AuditRow['kind'], app: string, o: Partial<AuditRow> = {}): AuditRow {
  seq += 1;
  return {
    seq,
    at: 1_000 + seq,
    kind,
    op: kind === 'data' ? 'INSERT' : 'UPDATE',
    epoch: null,
    holder: null,
    prevHolder: null,
    prevValidUntil: null,
    leaseUntil: null,
    app,
    pid: 100,
    path: kind === 'data' ? 'logical/x' : null,
    ...o,
  };
}

/** Two terms: n1 acquires epoch 10 and writes, n2 takes over an expired lease with epoch 11 and writes. */
function cleanLog(): AuditRow[] {
  return [
    row('fence', 'leaderway-lock/n1', { epoch: 10, holder: 'v1' }),
    row('lease', 'leaderway-lock/n1', { holder: 'v1' }),
    row('data', 'leaderway-data/n1', { epoch: 10, holder: 'v1', leaseUntil: 5_000 }),
    row('fence', 'leaderway-lock/n2', { epoch: 11, holder: 'v2' }),
    row('lease', 'leaderway-lock/n2', { holder: 'v2', prevHolder: 'v1', prevValidUntil: 1_000 }),
    row('data', 'leaderway-data/n2', { epoch: 11, holder: 'v2', leaseUntil: 5_000 }),
  ];
}

describe('PostgreSQL fencing audit: the check', () => {
  it('accepts terms whose writes come from their holders, and counts how terms ended', () => {
    const r = checkAudit(cleanLog());
    assert.deepEqual(r.violations, []);
    assert.equal(r.writesChecked, 2);
    assert.deepEqual(
      r.acquisitions.map((a) => a.epoch),
      [10, 11],
    );
    assert.deepEqual(r.ends, { released: 0, expired: 1, takenOver: 0 });
  });

  it('catches a deposed node writing under its successor epoch', () => {
    const log = [...cleanLog(), row('data', 'leaderway-data/n1', { epoch: 11, holder: 'v2' })];
    const v = checkAudit(log).violations;
    assert.equal(v.length, 1, v.join('\n'));
    assert.match(v[0] as string, /under epoch 11 from n1; epoch 11 was acquired by n2/);
  });

  it('catches an epoch going backwards (a promoted server that lost a term)', () => {
    const log = [...cleanLog(), row('fence', 'leaderway-lock/n3', { epoch: 10, holder: 'v3' })];
    const v = checkAudit(log).violations;
    assert.ok(v.some((x) => /epoch went backwards/.test(x)));
    assert.ok(v.some((x) => /epoch 10 acquired after epoch 11/.test(x)));
  });

  it('catches a write from outside the nodes and one under an epoch nobody acquired', () => {
    const log = [
      ...cleanLog(),
      row('data', 'psql', { epoch: 11, holder: 'v2' }),
      row('data', 'leaderway-data/n2', { epoch: 12, holder: 'v2' }),
    ];
    const v = checkAudit(log).violations;
    assert.ok(v.some((x) => /from a session outside leaderway/.test(x)));
    assert.ok(v.some((x) => /under epoch 12, which no audited acquisition granted/.test(x)));
  });
});

describe('PostgreSQL fencing audit: triggers on a real server', () => {
  let pg: PostgresServer;
  const ha = new Map<string, PostgresHABackend>();
  const data = new Map<string, PostgresBackend>();

  before(async () => {
    pg = await startPostgres();
    for (const id of ['n1', 'n2']) {
      ha.set(id, new PostgresHABackend({ url: pg.url, processId: id }));
      data.set(id, new PostgresBackend({ url: pg.url, processId: id }));
    }
    await Promise.all([...ha.values(), ...data.values()].map((b) => b.start()));
    await installAudit(pg);
  });

  after(async () => {
    await Promise.allSettled([...ha.values(), ...data.values()].map((b) => b.close()));
    await pg?.stop();
  });

  it("records leaderway's terms and fenced writes without a violation, and catches an unfenced deposed write", async () => {
    const signal = new AbortController().signal;
    const v1 = randomUUID();
    const e1 = await ha.get('n1')?.acquire(v1, TTL_MS);
    assert.ok(typeof e1 === 'number');
    // More than 10 audit rows in the first term: read back out of order (as text) they would
    // put the next term's acquisition among them.
    for (let i = 0; i < WRITES_IN_FIRST_TERM; i++)
      await data.get('n1')?.fenced(v1, signal).put(`logical/a${i}`, Buffer.from('1'));
    await new Promise((r) => setTimeout(r, TTL_MS + 100));
    const v2 = randomUUID();
    const e2 = await ha.get('n2')?.acquire(v2, 10_000);
    assert.ok(typeof e2 === 'number' && e2 > e1);
    await data.get('n2')?.fenced(v2, signal).put('logical/b', Buffer.from('2'));
    // The deposed n1, through leaderway's fenced path: refused, nothing stored, nothing audited.
    await assert.rejects(
      data.get('n1')?.fenced(v1, signal).put('logical/c', Buffer.from('3')) as Promise<void>,
      (err) => isLwError(err, 'LW_ERR_FENCED_WRITE'),
    );
    const clean = checkAudit(await readAudit(pg));
    assert.deepEqual(clean.violations, []);
    assert.equal(clean.writesChecked, WRITES_IN_FIRST_TERM + 1);
    assert.deepEqual(
      clean.acquisitions.map((a) => a.epoch),
      [e1, e2],
    );
    assert.equal(clean.ends.expired, 1);

    // The same deposed node through a backend without the fence (no FOR SHARE, no check): the
    // write lands, and the audit names it.
    const rogue = new Client({ connectionString: pg.url, application_name: 'leaderway-data/n1' });
    await rogue.connect();
    try {
      await rogue.query(`INSERT INTO leaderway_kv (path, value) VALUES ('logical/c', '\\x33')`);
    } finally {
      await rogue.end();
    }
    const caught = checkAudit(await readAudit(pg)).violations;
    assert.equal(caught.length, 1, caught.join('\n'));
    assert.match(
      caught[0] as string,
      new RegExp(`under epoch ${e2} from n1; epoch ${e2} was acquired by n2`),
    );
  });
});
