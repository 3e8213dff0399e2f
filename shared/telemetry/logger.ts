/**
 * pino JSON logs on stdout, one line per significant event. Fields that could carry a secret
 * are redacted by default, whatever a caller passes.
 */
import pino, { type Logger } from 'pino';

/** Field paths that are always censored. */
const REDACT = [
  'token',
  '*.token',
  'key',
  '*.key',
  'cert',
  '*.cert',
  'headers.authorization',
  'headers["x-vault-token"]',
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'advertisement',
  'seal_key',
  'value',
  '*.value',
];

/** Hooks that add fields to every line (the tracing module adds trace_id/span_id). */
const mixins: Array<() => Record<string, unknown>> = [];

/** Registers a function whose fields are added to every log line. */
export function addLogMixin(fn: () => Record<string, unknown>): void {
  mixins.push(fn);
}

/** Creates the process logger. */
export function createLogger(opts: { service: string; nodeId: string; level: string }): Logger {
  return pino({
    level: opts.level,
    base: { service: opts.service, node_id: opts.nodeId },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      if (mixins.length === 0) return {};
      return Object.assign({}, ...mixins.map((m) => m()));
    },
  });
}

export type { Logger };
