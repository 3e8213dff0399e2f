/**
 * Vault's durations on the API: a number of seconds (`3600`, `"3600"`) or a Go duration string
 * (`"1h30m"`, `"90s"`, `"1.5h"`, and Vault's `"7d"`); answered in Go's format (`"1h30m0s"`, `"0s"`).
 */
import { LwError } from '../../shared/errors';

const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
};
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/y;
/** Longest duration accepted: 100 years, far past any TTL (keeps arithmetic exact). */
const MAX_SECONDS = 100 * 365 * 86_400;

/** Parses a duration field into whole seconds; `field` names it in the 400. */
export function parseDurationSeconds(v: unknown, field: string): number {
  const bad = () =>
    new LwError('LW_ERR_BAD_REQUEST', `invalid ${field}: must be seconds or a duration such as "1h30m"`);
  let seconds: number;
  if (typeof v === 'number') seconds = v;
  else if (typeof v === 'string' && /^\d{1,12}$/.test(v)) seconds = Number(v);
  else if (typeof v === 'string' && v !== '') {
    seconds = 0;
    PART.lastIndex = 0;
    while (PART.lastIndex < v.length) {
      const m = PART.exec(v);
      if (!m) throw bad();
      seconds += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
    }
  } else throw bad();
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SECONDS) throw bad();
  return Math.floor(seconds);
}

/** Formats whole seconds as Go prints a time.Duration: 0s, 45s, 1m30s, 2h0m0s. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}
