/**
 * What every networked HA backend does with events alike: the wire encoding, strict parsing of
 * what arrives (anyone able to publish on the channel may send garbage), delivery to this
 * process's listeners, and the hints delivered after a reconnect.
 */
import type { HAEvent } from './backend';

/**
 * Delivered to this process's listeners (not published) when a connection is ready again after
 * losing the store: pub/sub and NOTIFY keep no history, so a release or an advertisement published
 * meanwhile was missed, and the storage the listeners poll is reachable again. Measured before
 * (issue 25, kill -9 of the Sentinel primary): a gateway whose leader had gone stale re-read it at
 * its next 1 s poll, ~0.9 s after its connections were on the new primary, holding every request
 * that long; standbys slept out an error backoff of up to 2 s. Listeners treat an event as a hint
 * to re-read (epoch 0: unknown), as the HABackend contract requires of any event.
 */
export const RECONNECT_HINTS: readonly HAEvent[] = [
  { type: 'advertised', epoch: 0 },
  { type: 'released', epoch: 0 },
];

/** The message published for `event` (only its two fields: nothing else travels). */
export function encodeEvent(event: HAEvent): string {
  return JSON.stringify({ type: event.type, epoch: event.epoch });
}

/** Parses a channel message; null unless it is exactly a known HAEvent shape. */
export function parseEvent(message: string | undefined): HAEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message ?? '');
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { type, epoch } = parsed as { type?: unknown; epoch?: unknown };
  if (
    (type !== 'released' && type !== 'advertised') ||
    !Number.isSafeInteger(epoch) ||
    (epoch as number) < 0
  ) {
    return null;
  }
  return { type, epoch: epoch as number };
}

/** Counters for what a backend deliberately swallows. */
export interface HAEventStats {
  /** Channel messages that were not a valid HAEvent (ignored). */
  malformedEvents: number;
  /** Publishes that failed (publish is best effort). */
  publishFailures: number;
  /** Exceptions thrown by listeners (caught so one listener cannot starve the others). */
  listenerErrors: number;
}

/** This process's listeners of one backend. */
export class EventFanout {
  readonly stats: HAEventStats = { malformedEvents: 0, publishFailures: 0, listenerErrors: 0 };
  private readonly listeners = new Set<(event: HAEvent) => void>();

  /** Adds `listener` (each call its own entry); the returned function removes it. */
  add(listener: (event: HAEvent) => void): () => void {
    const wrapped = (event: HAEvent): void => listener(event);
    this.listeners.add(wrapped);
    return () => {
      this.listeners.delete(wrapped);
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  clear(): void {
    this.listeners.clear();
  }

  /** Delivers a raw channel message, or counts it as malformed. */
  deliverMessage(message: string | undefined): void {
    const event = parseEvent(message);
    if (event) this.deliver(event);
    else this.stats.malformedEvents += 1;
  }

  /** Delivers RECONNECT_HINTS. */
  hint(): void {
    for (const event of RECONNECT_HINTS) this.deliver(event);
  }

  deliver(event: HAEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener({ ...event });
      } catch {
        this.stats.listenerErrors += 1;
      }
    }
  }
}
