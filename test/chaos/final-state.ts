/**
 * Reads the final state of every chaos key through a gateway once the faults are over: the
 * metadata (current and oldest version, which versions are deleted) and each version's data.
 */
import { call } from '../helpers/http';
import { waitFor } from '../helpers/procs';
import type { KeyState } from './checker';
import type { WriteData } from './history';

/** Each read is retried for this long (the cluster is healthy by then; this absorbs blips). */
const READ_RETRY_MS = 20_000;

interface Meta {
  current_version: number;
  oldest_version: number;
  versions: Record<string, { deletion_time: string; destroyed: boolean }>;
}

async function get(base: string, path: string, token: string): Promise<{ status: number; body: unknown }> {
  return waitFor(
    async () => {
      const r = await call(base, path, { token });
      return r.status === 200 || r.status === 404 ? r : null;
    },
    READ_RETRY_MS,
    `GET ${path}`,
    100,
  );
}

/** Keys read in parallel. */
const CONCURRENCY = 8;

/** Reads every key's versions; a key never written has current version 0 and no versions. */
export async function readFinalState(
  base: string,
  token: string,
  keys: string[],
): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  const queue = [...keys];
  const worker = async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      out.set(key, await readKey(base, token, key));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

async function readKey(base: string, token: string, key: string): Promise<KeyState> {
  const m = await get(base, `/v1/secret/metadata/${key}`, token);
  const meta = (m.body as { data?: Meta }).data;
  const st: KeyState = {
    currentVersion: meta?.current_version ?? 0,
    oldestVersion: meta?.oldest_version ?? 0,
    versions: new Map(),
    missing: [],
  };
  for (const [ver, vm] of Object.entries(meta?.versions ?? {})) {
    const n = Number(ver);
    if (vm.deletion_time !== '' || vm.destroyed) {
      st.versions.set(n, null);
      continue;
    }
    const r = await get(base, `/v1/secret/data/${key}?version=${n}`, token);
    const d = (r.body as { data?: { data?: WriteData } }).data?.data;
    if (r.status === 200 && d) st.versions.set(n, d);
    else st.missing.push(n);
  }
  return st;
}
