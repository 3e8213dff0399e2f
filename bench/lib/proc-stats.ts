/**
 * CPU time and memory of a process, read from /proc (Linux). CPU is what separates "this proxy
 * is cheap" from "this proxy got more of the 2 shared cores this time": the benchmark reports
 * CPU milliseconds per 1,000 requests alongside req/s.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every Linux we run on). */
const CLK_TCK = 100;

/** User (utime) and system (stime) CPU of `pid` in milliseconds (all threads); NaN if it is gone. */
export function cpuSplitMs(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    return { user: (Number(fields[11]) * 1000) / CLK_TCK, sys: (Number(fields[12]) * 1000) / CLK_TCK };
  } catch {
    return { user: Number.NaN, sys: Number.NaN };
  }
}

/** utime + stime of `pid` in milliseconds (all threads), or NaN if it is gone. */
export function cpuMs(pid: number): number {
  const { user, sys } = cpuSplitMs(pid);
  return user + sys;
}

/** Resident set size of `pid` in MiB, or NaN if it is gone. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples RSS of `pid` every `everyMs` until stopped; reports the peak. */
export function sampleRss(pid: number, everyMs = 200): { stop(): number } {
  let peak = rssMb(pid);
  const t = setInterval(() => {
    const v = rssMb(pid);
    if (v > peak || Number.isNaN(peak)) peak = v;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      const v = rssMb(pid);
      return Math.max(peak, Number.isNaN(v) ? 0 : v);
    },
  };
}

/** CPU used by each of `pids` between `start()` and the returned `stop()`. */
export function cpuMeter(pids: Record<string, number | undefined>): { stop(): Record<string, number> } {
  const before: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) if (pid !== undefined) before[name] = cpuMs(pid);
  return {
    stop() {
      const out: Record<string, number> = {};
      for (const [name, pid] of Object.entries(pids)) {
        if (pid === undefined) continue;
        out[name] = cpuMs(pid) - (before[name] ?? Number.NaN);
      }
      return out;
    },
  };
}

/** Busy CPU time of the whole machine (all cores) in milliseconds, from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return (busy * 1000) / CLK_TCK;
}

/**
 * Measures, over one window, how much CPU went to processes that are not part of the bench
 * (other work on the shared machine), as a percentage of all cores. `ours` are the pids of the
 * bench's processes; the bench process itself (the load generator) is added.
 */
export function foreignMeter(ours: () => number[], cores: number): { stop(): number } {
  const t0 = performance.now();
  const busy0 = machineBusyMs();
  const self0 = process.cpuUsage();
  const pids = ours();
  const own0 = pids.map(cpuMs);
  return {
    stop() {
      const wallMs = performance.now() - t0;
      const busy = machineBusyMs() - busy0;
      const self = process.cpuUsage(self0);
      let own = (self.user + self.system) / 1000;
      pids.forEach((pid, i) => {
        const d = cpuMs(pid) - (own0[i] ?? Number.NaN);
        if (!Number.isNaN(d)) own += d;
      });
      return Math.max(0, ((busy - own) / (wallMs * cores)) * 100);
    },
  };
}

/** A window's CPU under this (ms per 250 ms window, all of `pids` together) counts as quiet. */
const QUIET_MS_PER_WINDOW = 25;
const QUIET_WINDOW_MS = 250;

/**
 * Waits (up to `maxMs`) until `pids` together use under 10% of a core: the previous load's
 * leftovers (aborted requests still draining, large bodies in flight) must not be charged to
 * the next measurement.
 */
export async function quiesce(pids: number[], maxMs = 5_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = pids.map(cpuMs);
    await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS));
    const used = pids.reduce((sum, pid, i) => {
      const d = cpuMs(pid) - (before[i] ?? Number.NaN);
      return Number.isNaN(d) ? sum : sum + d;
    }, 0);
    if (used < QUIET_MS_PER_WINDOW) return;
  }
}

/** TCP connections this machine has opened so far (ActiveOpens from /proc/net/snmp). */
export function tcpActiveOpens(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Tcp:'));
  const head = (lines[0] ?? '').split(/\s+/);
  const values = (lines[1] ?? '').split(/\s+/);
  return Number(values[head.indexOf('ActiveOpens')]);
}

/** Busy CPU time of each core (cpu0, cpu1, ...) in milliseconds, from /proc/stat. */
export function coreBusyMs(): number[] {
  const out: number[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = (m[2] ?? '').trim().split(/\s+/).map(Number);
    // As machineBusyMs: everything but idle and iowait is busy.
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    out[Number(m[1])] = (busy * 1000) / CLK_TCK;
  }
  return out;
}
