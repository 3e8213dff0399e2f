/**
 * Watching files that operators replace: Kubernetes updates a mounted Secret or ConfigMap by
 * swapping a symlink in the file's directory, so the directory is watched, not the file, and the
 * burst of events one update makes (several renames) runs `onSettled` once, after they settle.
 * A directory that cannot be watched is logged, not fatal: SIGHUP still reloads.
 */
import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from 'pino';

/** File events come in bursts (a Secret update is several renames): act once they settle. */
export const SETTLE_MS = 250;

/** Watches `dirs`; `what` names the files in log lines. Resolves a function that stops it. */
export function watchSettled(
  dirs: Iterable<string>,
  onSettled: () => void,
  log: Logger,
  what: string,
): () => void {
  const watchers: FSWatcher[] = [];
  let settle: NodeJS.Timeout | undefined;
  for (const dir of new Set(dirs)) {
    try {
      const w = watch(dir, () => {
        clearTimeout(settle);
        settle = setTimeout(onSettled, SETTLE_MS);
        settle.unref();
      });
      w.on('error', (err) => log.warn({ err: err.message, dir }, `${what} directory watch failed`));
      w.unref();
      watchers.push(w);
    } catch (err) {
      log.warn(
        { err: (err as Error).message, dir },
        `cannot watch the ${what} directory; SIGHUP still reloads`,
      );
    }
  }
  return () => {
    clearTimeout(settle);
    for (const w of watchers) w.close();
    watchers.length = 0;
  };
}
