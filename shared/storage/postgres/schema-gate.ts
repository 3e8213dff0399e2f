/**
 * Runs a table's migration once per process before its first statement, and again after a
 * failed attempt (the database was down at startup): a backend constructed while PostgreSQL is
 * away heals like the Redis one. A reader (a gateway) runs the read-only version check instead,
 * retried the same way until a node has created or migrated the table.
 */
import type { PgPool } from './connection';
import { checkVersion, migrate } from './schema';

export class SchemaGate {
  private done = false;
  private pending: Promise<void> | null = null;

  /** `reader`: never runs DDL or writes; only checks the version a node recorded. */
  constructor(
    private readonly pool: PgPool,
    private readonly kind: 'data' | 'ha',
    private readonly table: string,
    private readonly reader: boolean,
  ) {}

  /**
   * Resolves once the table is at this release's version; rejects like any storage call (a
   * reader's unusable schema is `LW_ERR_STORAGE_UNAVAILABLE` too, its reason in `cause`).
   */
  ready(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.pending ??= this.pool
      .run((c) => (this.reader ? checkVersion(c, this.kind, this.table) : migrate(c, this.kind, this.table)))
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
