/**
 * What storage tells the process that opened it, outside any call: the Redis HA backend found
 * holder liveness refused (Redis denies CLIENT ID/LIST), a data write was not confirmed on enough
 * replicas, the primary refused a write for want of replicas (NOREPLICAS). Opened with the storage (open.ts) and read by whoever runs on it — a node subscribes
 * in its constructor — so nothing reaches into a server from the outside. A refusal seen before
 * anyone subscribed is kept (`livenessRefused`).
 */
import { EventEmitter } from 'node:events';

interface Events {
  'liveness-refused': [reason: string];
  unreplicated: [];
  'no-replicas': [];
}

export class StorageSignals extends EventEmitter<Events> {
  /** Why holder liveness is off, once the HA backend found out (null: not refused). */
  livenessRefused: string | null = null;

  /** Reported by the HA backend (once). */
  refuseLiveness(reason: string): void {
    if (this.livenessRefused !== null) return;
    this.livenessRefused = reason;
    this.emit('liveness-refused', reason);
  }

  /** Reported by the data backend for each write WAIT did not confirm. */
  unreplicatedWrite(): void {
    this.emit('unreplicated');
  }

  /** Reported by the data backend for each write refused with NOREPLICAS (min-replicas-to-write). */
  noReplicasRefusal(): void {
    this.emit('no-replicas');
  }
}
