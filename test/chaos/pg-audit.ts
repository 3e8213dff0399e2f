/**
 * Fencing evidence from PostgreSQL itself, for chaos runs on the `postgres` store: triggers the
 * harness installs on leaderway's tables write every change into an audit table, in the writer's
 * own transaction (so an audit row exists exactly when the change committed, and is replicated to
 * the synchronous standby with it, surviving a promotion). Nothing here reads leaderway's code:
 *  - a data write (row-level, on the data table) records the fence row's epoch and holder and the
 *    lease's end as the trigger reads them, and the writer's session (application_name, pid);
 *  - a change of the fence row's epoch or holder records the new epoch and holder, and who made it
 *    (the lock session `leaderway-lock/<node>` that acquired it);
 *  - a change of the lease row's holder records the previous holder and its lease's end (a release,
 *    an expiry taken over, or a takeover of a live lease from a holder whose session was gone).
 * The check (`checkAudit`, pure): in audit order (a sequence, drawn inside each transaction) the
 * epoch never goes backwards and every acquisition's is above the one before; every data write in
 * epoch e comes from the node whose lock session acquired e (`leaderway-data/<node>` against
 * `leaderway-lock/<node>`). A deposed active that wrote without holding the fence row FOR SHARE
 * would be recorded under its successor's epoch, from the wrong node.
 */
import type { PostgresServer } from '../helpers/postgres';
import { emptyReport, type FencingReport } from './lock-monitor';

/** The audit table and function names (one set per database: the harness owns them). */
const AUDIT = 'chaos_audit';
/** leaderway's default table names (schema.ts); the triggers are installed on these. */
export const DATA_TABLE = 'leaderway_kv';
export const HA_TABLE = 'leaderway_ha_locks';
const FENCE_KEY = 'core/lock';
const LEASE_KEY = 'core/lock-lease';
/** How long `install` waits for the nodes to create their tables. */
const TABLES_TIMEOUT_MS = 30_000;

/** One audit row as the check reads it (times in ms since 1970, the database's clock). */
export interface AuditRow {
  seq: number;
  at: number;
  kind: 'data' | 'fence' | 'lease';
  op: string;
  /** data: the fence row's epoch read in the trigger; fence: the new epoch. */
  epoch: number | null;
  /** data: the fence row's holder read in the trigger; fence/lease: the new holder. */
  holder: string | null;
  /** lease: the holder before the change. */
  prevHolder: string | null;
  /** lease: the previous holder's lease end. */
  prevValidUntil: number | null;
  /** data: the lease's end read in the trigger. */
  leaseUntil: number | null;
  /** The writer's application_name. */
  app: string;
  pid: number;
  path: string | null;
}

/** The SQL that creates the audit table and the triggers (idempotent). */
export function auditSql(dataTable = DATA_TABLE, haTable = HA_TABLE): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${AUDIT} (
       seq bigserial PRIMARY KEY,
       at timestamptz NOT NULL DEFAULT clock_timestamp(),
       kind text NOT NULL,
       op text NOT NULL,
       epoch bigint,
       holder text,
       prev_holder text,
       prev_valid_until timestamptz,
       lease_until timestamptz,
       app text NOT NULL DEFAULT current_setting('application_name'),
       pid integer NOT NULL DEFAULT pg_backend_pid(),
       path text
     )`,
    // SECURITY DEFINER: the writers' role need not be allowed to write the audit table.
    `CREATE OR REPLACE FUNCTION ${AUDIT}_data() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
     DECLARE f record; l record;
     BEGIN
       -- READ COMMITTED: a fresh snapshot, so this is the fence row as it is now, which a fenced
       -- writer holds FOR SHARE (unchanged until it commits).
       SELECT epoch, ha_value INTO f FROM ${haTable} WHERE ha_key = '${FENCE_KEY}';
       SELECT valid_until INTO l FROM ${haTable} WHERE ha_key = '${LEASE_KEY}';
       INSERT INTO ${AUDIT} (kind, op, epoch, holder, lease_until, path)
       VALUES ('data', TG_OP, f.epoch, f.ha_value, l.valid_until,
               CASE WHEN TG_OP = 'DELETE' THEN OLD.path ELSE NEW.path END);
       RETURN NULL;
     END $$`,
    `CREATE OR REPLACE FUNCTION ${AUDIT}_ha() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
     BEGIN
       IF NEW.ha_key = '${FENCE_KEY}' THEN
         INSERT INTO ${AUDIT} (kind, op, epoch, holder) VALUES ('fence', TG_OP, NEW.epoch, NEW.ha_value);
       ELSIF NEW.ha_key = '${LEASE_KEY}' THEN
         INSERT INTO ${AUDIT} (kind, op, holder, prev_holder, prev_valid_until)
         VALUES ('lease', TG_OP, NEW.ha_value,
                 CASE WHEN TG_OP = 'UPDATE' THEN OLD.ha_value END,
                 CASE WHEN TG_OP = 'UPDATE' THEN OLD.valid_until END);
       END IF;
       RETURN NULL;
     END $$`,
    `DROP TRIGGER IF EXISTS ${AUDIT}_data ON ${dataTable}`,
    `CREATE TRIGGER ${AUDIT}_data AFTER INSERT OR UPDATE OR DELETE ON ${dataTable}
       FOR EACH ROW EXECUTE FUNCTION ${AUDIT}_data()`,
    `DROP TRIGGER IF EXISTS ${AUDIT}_ha_update ON ${haTable}`,
    // Renewals change neither the epoch nor a holder: not recorded (three nodes renew every ~0.7 s).
    `CREATE TRIGGER ${AUDIT}_ha_update AFTER UPDATE ON ${haTable} FOR EACH ROW
       WHEN (OLD.epoch IS DISTINCT FROM NEW.epoch OR OLD.ha_value IS DISTINCT FROM NEW.ha_value)
       EXECUTE FUNCTION ${AUDIT}_ha()`,
    `DROP TRIGGER IF EXISTS ${AUDIT}_ha_insert ON ${haTable}`,
    `CREATE TRIGGER ${AUDIT}_ha_insert AFTER INSERT ON ${haTable} FOR EACH ROW EXECUTE FUNCTION ${AUDIT}_ha()`,
  ];
}

/** Waits for leaderway's tables (a node creates them), then installs the audit in one transaction. */
export async function installAudit(pg: PostgresServer): Promise<void> {
  const deadline = Date.now() + TABLES_TIMEOUT_MS;
  for (;;) {
    const [row] = await pg.sql('SELECT to_regclass($1) IS NOT NULL AS d, to_regclass($2) IS NOT NULL AS h', [
      DATA_TABLE,
      HA_TABLE,
    ]);
    if (row?.['d'] === true && row['h'] === true) break;
    if (Date.now() > deadline) throw new Error(`no ${DATA_TABLE}/${HA_TABLE} after ${TABLES_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // One simple-protocol query: its statements run as one implicit transaction.
  await pg.sql(auditSql().join(';\n'));
}

const ms = (v: unknown): number | null => (v instanceof Date ? v.getTime() : null);

/** Every audit row, in sequence order. */
export async function readAudit(pg: PostgresServer): Promise<AuditRow[]> {
  const rows = await pg.sql(
    // Ordered by the column a.seq (a bare `seq` would name the text output column: 10 < 9).
    `SELECT a.seq::text AS seq, a.at, a.kind, a.op, a.epoch::text AS epoch, a.holder, a.prev_holder,
            a.prev_valid_until, a.lease_until, a.app, a.pid, a.path
       FROM ${AUDIT} a ORDER BY a.seq`,
  );
  return rows.map((r) => ({
    seq: Number(r['seq']),
    at: ms(r['at']) ?? 0,
    kind: r['kind'] as AuditRow['kind'],
    op: String(r['op']),
    epoch: r['epoch'] === null ? null : Number(r['epoch']),
    holder: (r['holder'] as string | null) ?? null,
    prevHolder: (r['prev_holder'] as string | null) ?? null,
    prevValidUntil: ms(r['prev_valid_until']),
    leaseUntil: ms(r['lease_until']),
    app: String(r['app']),
    pid: Number(r['pid']),
    path: (r['path'] as string | null) ?? null,
  }));
}

/** The node of a leaderway session (`leaderway-<role>/<node>`), or null for any other session. */
function nodeOf(app: string, role: 'data' | 'lock'): string | null {
  const prefix = `leaderway-${role}/`;
  return app.startsWith(prefix) ? app.slice(prefix.length) : null;
}

/** The checks of the module comment, over rows in sequence order. */
export function checkAudit(rows: readonly AuditRow[]): FencingReport {
  const r = emptyReport();
  const acquirers = new Map<number, { node: string | null; value: string; at: number }>();
  let maxEpoch = Number.NEGATIVE_INFINITY;
  let lastAcquired = Number.NEGATIVE_INFINITY;
  for (const row of rows) {
    const where = `audit #${row.seq} (${new Date(row.at).toISOString()}, ${row.app} pid ${row.pid})`;
    if (row.epoch !== null) {
      if (row.epoch < maxEpoch)
        r.violations.push(`${where}: epoch went backwards: ${row.kind} under ${row.epoch} after ${maxEpoch}`);
      maxEpoch = Math.max(maxEpoch, row.epoch);
    }
    if (row.kind === 'fence') {
      if (row.holder === null || row.epoch === null) continue;
      const node = nodeOf(row.app, 'lock');
      if (node === null) r.violations.push(`${where}: the fence row was changed outside a lock session`);
      if (row.epoch <= lastAcquired)
        r.violations.push(`${where}: epoch ${row.epoch} acquired after epoch ${lastAcquired}`);
      lastAcquired = Math.max(lastAcquired, row.epoch);
      acquirers.set(row.epoch, { node, value: row.holder, at: row.at });
      r.acquisitions.push({ epoch: row.epoch, value: row.holder, at: row.at });
    } else if (row.kind === 'lease') {
      if (row.prevHolder === null) continue;
      if (row.holder === null) r.ends.released += 1;
      else if (row.prevValidUntil !== null && row.prevValidUntil <= row.at) r.ends.expired += 1;
      else r.ends.takenOver += 1;
    } else {
      const acq = row.epoch === null ? undefined : acquirers.get(row.epoch);
      if (!acq) {
        // An epoch acquired before the audit was installed cannot be attributed; any later one can.
        if (row.epoch === null || row.epoch > (r.acquisitions[0]?.epoch ?? Number.POSITIVE_INFINITY))
          r.violations.push(
            `${where}: data write (${row.op}) under epoch ${row.epoch}, which no audited acquisition granted`,
          );
        else r.writesUnchecked += 1;
        continue;
      }
      r.writesChecked += 1;
      const node = nodeOf(row.app, 'data');
      if (node === null || node !== acq.node)
        r.violations.push(
          `${where}: data write (${row.op}) under epoch ${row.epoch} from ${node ?? 'a session outside leaderway'}; epoch ${row.epoch} was acquired by ${acq.node}`,
        );
      if (row.holder !== acq.value)
        r.violations.push(`${where}: the fence row's holder changed within epoch ${row.epoch}`);
      if (row.leaseUntil !== null)
        r.minExpiryMarginMs = Math.min(r.minExpiryMarginMs, row.leaseUntil - row.at);
    }
  }
  return r;
}

/** The chaos run's fencing evidence on PostgreSQL: the audit, read from whichever server is primary. */
export class PgFencingAudit {
  constructor(private readonly primary: () => PostgresServer) {}

  async start(): Promise<void> {
    await installAudit(this.primary());
  }

  async stop(): Promise<FencingReport> {
    return checkAudit(await readAudit(this.primary()));
  }
}
