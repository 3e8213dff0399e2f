/** Resident memory of a process, from /proc/<pid>/status (Linux). */
import { readFileSync } from 'node:fs';

/** VmRSS in MiB, or NaN when the process is gone or /proc is unavailable. */
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
