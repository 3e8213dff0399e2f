/**
 * What every entry point shares: turn configuration errors into exit code 2, wire SIGTERM and
 * SIGINT to close(), SIGHUP to reload(), and exit 0 once closed. Only entry points call
 * process.exit.
 */
import type { HostPort } from '../shared/config/formats';
import { ConfigError } from '../shared/config/load';
import { flushTelemetry } from '../shared/telemetry/tracing';

/** A long-running part with an idempotent close. */
export interface Closable {
  close(): Promise<void>;
}

/** Prints a configuration error and exits 2; rethrows anything else. */
export function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`leaderway: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

/** Turns a failure to bind a listener into a one-line message and exit code 1. */
export function exitOnListenError(err: unknown, variable: string): never {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    process.stderr.write(
      `leaderway: cannot listen on ${(e as { address?: string }).address ?? ''}:${(e as { port?: number }).port ?? ''} (${variable}): ${e.code}\n`,
    );
    process.exit(1);
  }
  throw err;
}

/** The variable that set the listener `err` failed to bind: the metrics listener's, or the API's. */
export function listenVariable(err: unknown, metrics: HostPort | null): string {
  return metrics && (err as { port?: number }).port === metrics.port
    ? 'LEADERWAY_METRICS_ADDR'
    : 'LEADERWAY_LISTEN_ADDR';
}

/** Closes `parts` in order on the first SIGTERM/SIGINT, then exits 0; a second signal exits at once. */
export function closeOnSignals(parts: Closable[], onSignal?: (sig: string) => void): void {
  let closing = false;
  const handler = (sig: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    onSignal?.(sig);
    (async () => {
      for (const p of parts) await p.close();
      await flushTelemetry();
    })().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`leaderway: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** A part that reloads what it can (TLS certificates) on SIGHUP. */
export interface Reloadable {
  reload(): void;
}

/**
 * SIGHUP reloads, as OpenBao operators expect — Node's default for SIGHUP would terminate the
 * process. `onSignal` logs the signal.
 */
export function reloadOnSighup(parts: Reloadable[], onSignal?: () => void): void {
  process.on('SIGHUP', () => {
    onSignal?.();
    for (const p of parts) p.reload();
  });
}
