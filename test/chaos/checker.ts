/**
 * The history checker. Given every client operation (with `ok` / `fail` / `info` outcomes) and
 * the final state of every key (all versions, read back after the faults), it verifies:
 *  - every acknowledged write is stored at the version it was acknowledged with (unless a later
 *    delete hid it, or it was trimmed), and no current_version is below an acknowledged one;
 *  - no version was acknowledged twice, and no write's data was stored at two versions;
 *  - a CAS write acknowledged against version c got exactly version c+1 (not a stale base);
 *  - nothing definitely failed is stored, and nothing is stored that no client wrote;
 *  - reads: the data seen at a version is what was stored there, never from a failed or
 *    not-yet-started write, and never older than a write or read that completed before the read
 *    began — whichever client did it, through whichever gateway or node (all nodes read one
 *    Redis, standbys serving reads included, so reads are linearizable and may be checked so:
 *    this is read-your-writes and monotonic reads across nodes and gateways). A violation names
 *    the target the stale read was sent to and the one the newer op went through;
 *  - a deleted version is seen only after some delete was sent.
 * Indeterminate (`info`) writes may or may not be stored; if stored, they obey the same rules.
 */
import type { Op, WriteData } from './history';

/** One key's state after the run, read through the API. */
export interface KeyState {
  currentVersion: number;
  oldestVersion: number;
  /** version → stored data, or null when that version is deleted (or destroyed). */
  versions: Map<number, WriteData | null>;
  /** Versions the metadata lists as live whose data could not be read. */
  missing: number[];
}

/** Counters for the summary. */
export interface CheckStats {
  ops: number;
  byOutcome: Record<string, number>;
  ackedWrites: number;
  verifiedWrites: number;
  hiddenByDelete: number;
  trimmed: number;
  indeterminateWrites: number;
  indeterminateStored: number;
  casMismatches: number;
  readsChecked: number;
  redirected: number;
}

export interface CheckResult {
  violations: string[];
  stats: CheckStats;
}

/** Checks `ops` against `state` (keyed by KV path). */
export function checkHistory(ops: Op[], state: Map<string, KeyState>): CheckResult {
  const v: string[] = [];
  const stats: CheckStats = {
    ops: ops.length,
    byOutcome: {},
    ackedWrites: 0,
    verifiedWrites: 0,
    hiddenByDelete: 0,
    trimmed: 0,
    indeterminateWrites: 0,
    indeterminateStored: 0,
    casMismatches: 0,
    readsChecked: 0,
    redirected: 0,
  };
  const byId = new Map<number, Op>();
  for (const op of ops) {
    byId.set(op.id, op);
    const k = `${op.kind}:${op.outcome}`;
    stats.byOutcome[k] = (stats.byOutcome[k] ?? 0) + 1;
    if (op.redirected) stats.redirected++;
    if (op.kind === 'cas' && op.status === 400) stats.casMismatches++;
  }
  const writer = (d: WriteData, key: string): Op | undefined => {
    const w = byId.get(d.o);
    return w?.data && w.key === key && w.data.s === d.s && w.data.c === d.c ? w : undefined;
  };
  const perKey = groupBy(ops, (o) => o.key);
  for (const key of state.keys()) if (!perKey.has(key)) perKey.set(key, []);
  for (const [key, keyOps] of perKey) {
    const st = state.get(key);
    if (!st) {
      v.push(`${key}: no final state could be read`);
      continue;
    }
    for (const ver of st.missing)
      v.push(`${key}@${ver}: listed as live in the metadata, but its data is missing`);
    const storedAt = new Map<number, number[]>();
    for (const [ver, d] of st.versions) {
      if (!d) continue;
      const w = writer(d, key);
      if (!w) {
        v.push(`${key}@${ver}: stored data that no client wrote (${JSON.stringify(d).slice(0, 80)})`);
        continue;
      }
      if (w.outcome === 'fail')
        v.push(`${key}@${ver}: op ${w.id} definitely failed (${w.error}) yet is stored`);
      if (w.outcome === 'ok' && w.version !== ver) {
        v.push(`${key}@${ver}: op ${w.id} was acknowledged as version ${w.version} but is stored at ${ver}`);
      }
      storedAt.set(w.id, [...(storedAt.get(w.id) ?? []), ver]);
    }
    for (const [id, vers] of storedAt) {
      if (vers.length > 1)
        v.push(`${key}: op ${id} was applied more than once (versions ${vers.join(', ')})`);
    }
    const ackedAt = new Map<number, Op>();
    for (const w of keyOps) {
      if (w.kind !== 'write' && w.kind !== 'cas') continue;
      if (w.outcome === 'info') {
        stats.indeterminateWrites++;
        if (storedAt.has(w.id)) stats.indeterminateStored++;
      }
      if (w.outcome !== 'ok' || w.version === undefined) continue;
      stats.ackedWrites++;
      const prev = ackedAt.get(w.version);
      if (prev) v.push(`${key}@${w.version}: acknowledged twice (ops ${prev.id} and ${w.id})`);
      ackedAt.set(w.version, w);
      if (w.kind === 'cas' && w.version !== (w.cas ?? -1) + 1) {
        v.push(`${key}: CAS op ${w.id} sent cas=${w.cas} but was acknowledged as version ${w.version}`);
      }
      if (w.version > st.currentVersion) {
        v.push(
          `${key}@${w.version}: acknowledged write (op ${w.id}) lost: current version is ${st.currentVersion}`,
        );
        continue;
      }
      if (w.version < st.oldestVersion) {
        stats.trimmed++;
        continue;
      }
      if (!st.versions.has(w.version)) {
        v.push(`${key}@${w.version}: acknowledged write (op ${w.id}) lost: version missing`);
        continue;
      }
      const d = st.versions.get(w.version);
      if (d === null) {
        stats.hiddenByDelete++;
        if (!keyOps.some((o) => o.kind === 'delete' && o.outcome !== 'fail' && o.end >= w.start)) {
          v.push(`${key}@${w.version}: deleted, but no delete was sent after op ${w.id} began`);
        }
        continue;
      }
      if (d && d.o !== w.id) {
        v.push(`${key}@${w.version}: acknowledged op ${w.id} was overwritten by op ${d.o}`);
        continue;
      }
      stats.verifiedWrites++;
    }
    stats.readsChecked += checkReads(key, keyOps, st, writer, v);
  }
  return { violations: v, stats };
}

/** The read rules for one key; returns how many reads were checked. */
function checkReads(
  key: string,
  keyOps: Op[],
  st: KeyState,
  writer: (d: WriteData, key: string) => Op | undefined,
  v: string[],
): number {
  const reads = keyOps.filter((o) => o.kind === 'read' && o.outcome === 'ok' && o.version !== undefined);
  // Completions that bound later reads: acknowledged writes and successful reads, by end time.
  const floors = keyOps
    .filter((o) => o.outcome === 'ok' && o.version !== undefined && o.kind !== 'delete')
    .map((o) => ({ end: o.end, version: o.version as number, id: o.id, kind: o.kind, via: o.via }))
    .sort((a, b) => a.end - b.end);
  const byStart = [...reads].sort((a, b) => a.start - b.start);
  let i = 0;
  let floor = { version: 0, id: 0, kind: '', via: '', end: 0 };
  for (const r of byStart) {
    while (i < floors.length && (floors[i] as { end: number }).end < r.start) {
      const f = floors[i] as typeof floor;
      if (f.version > floor.version) floor = f;
      i++;
    }
    const ver = r.version as number;
    if (ver < floor.version) {
      v.push(
        `${key}: stale read op ${r.id} (${r.client} via ${r.via}${r.redirected ? ', redirected' : ''}) saw version ${ver}, ` +
          `${r.start - floor.end} ms after ${floor.kind} op ${floor.id} (via ${floor.via}) had completed with ${floor.version}`,
      );
    }
    if (r.readData) {
      const w = writer(r.readData, key);
      if (!w) v.push(`${key}: read op ${r.id} (via ${r.via}) saw data no client wrote`);
      else {
        if (w.outcome === 'fail')
          v.push(`${key}: read op ${r.id} (via ${r.via}) saw op ${w.id}, which definitely failed`);
        if (w.start > r.end)
          v.push(`${key}: read op ${r.id} (via ${r.via}) saw op ${w.id}, which started after the read ended`);
        if (w.outcome === 'ok' && w.version !== ver) {
          v.push(
            `${key}: read op ${r.id} (via ${r.via}) saw op ${w.id} at version ${ver}; it was acknowledged as ${w.version}`,
          );
        }
        const stored = st.versions.get(ver);
        if (stored && stored.o !== w.id) {
          v.push(
            `${key}@${ver}: read op ${r.id} (via ${r.via}) saw op ${w.id} but op ${stored.o} is stored there`,
          );
        }
      }
    }
    if (
      r.readDeleted &&
      !keyOps.some((o) => o.kind === 'delete' && o.outcome !== 'fail' && o.start <= r.end)
    ) {
      v.push(`${key}: read op ${r.id} (via ${r.via}) saw a deleted version before any delete was sent`);
    }
  }
  return reads.length;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}
