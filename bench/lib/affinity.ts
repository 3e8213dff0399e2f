/**
 * CPU pinning with taskset(1): a process and every thread it has (`-a`; threads started later
 * inherit the mask), so a node on a core of its own shows what it can serve there. Each pin
 * returns how to undo it, so a section leaves the shared cluster as it found it.
 */
import { execFileSync } from 'node:child_process';

const TASKSET = 'taskset';

/** The affinity mask of `pid` as taskset prints it (hex, e.g. `3`). */
function maskOf(pid: number): string {
  const out = execFileSync(TASKSET, ['-p', String(pid)], { encoding: 'utf8' });
  const m = /affinity mask:\s*([0-9a-f,]+)/i.exec(out);
  if (!m?.[1]) throw new Error(`taskset: no mask for ${pid} in ${JSON.stringify(out)}`);
  return m[1];
}

/** Pins `pid` and all its threads to `cpus` (a taskset list: `0`, `1`, `0-1`); returns the undo. */
export function pin(pid: number, cpus: string): () => void {
  const before = maskOf(pid);
  execFileSync(TASKSET, ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  return () => {
    try {
      execFileSync(TASKSET, ['-a', '-p', before, String(pid)], { stdio: 'ignore' });
    } catch {
      // The process is gone: nothing to restore.
    }
  };
}

/** Whether taskset is available here. */
export function canPin(): boolean {
  try {
    maskOf(process.pid);
    return true;
  } catch {
    return false;
  }
}
