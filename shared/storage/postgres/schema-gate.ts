/**
 * Runs a table's migration once per process before its first statement, and again after a
 * failed attempt (the database was down at startup): a backend constructed while PostgreSQL is
 * away heals like the Redis one.
 */
import type { PgPool } from './connection';
import { migrate } from './schema';

export class SchemaGate {
  private done = false;
  private pending: Promise<void> | null = null;

  /** `skip`: a reader (a gateway) never runs DDL; it waits for a node to create the tables. */
  constructor(
    private readonly pool: PgPool,
    private readonly kind: 'data' | 'ha',
    private readonly table: string,
    skip: boolean,
  ) {
    this.done = skip;
  }

  /** Resolves once the table is at this release's version; rejects like any storage call. */
  ready(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.pending ??= this.pool
      .run((c) => migrate(c, this.kind, this.table))
      .then(
        () => {
          this.done = true;
        },
        (err: unknown) => {
          this.pending = null;
          throw err;
        },
      );
    return this.pending;
  }
}
