/**
 * The least-privilege PostgreSQL role of a cluster's gateways, as SQL an operator runs
 * (`leaderway postgres-grants`), the counterpart of the Redis `leaderway-gateway` user (acl.ts).
 *
 * The gateway role may LOGIN and SELECT, nothing else, and of the rows only those a gateway reads
 * (row level security; test/integration/postgres-grants.test.ts checks each refusal):
 *  - data table: the signed advertisements (`core/leader-signed/*`) and membership records
 *    (`core/members-signed/*`), never an entry of a mount (a secret's ciphertext);
 *  - HA table: the fence row `core/lock` and the lease row `core/lock-lease`, and of their columns
 *    the holder, the epoch and the lease's end (not the holder's lock session, `ha_identity`);
 *  - `leaderway_schema`: the layout versions, which the gateway checks before reading.
 * LISTEN needs no privilege. Neither does NOTIFY: PostgreSQL cannot deny it to a role of the
 * database, so a gateway role could send an event; events only make listeners re-read the lock
 * (ha-events.ts), so a forged one costs a read.
 *
 * The nodes connect as the tables' owner (the role that created them on first start): an owner
 * is not subject to row level security, so enabling it restricts the gateway role alone. The SQL
 * refuses to run when the gateway role owns a table or may become its owner (SET ROLE), since
 * either would bypass the policies. The password is written as a SCRAM-SHA-256 verifier, never in
 * the clear.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { SIGNED_LEADER_PREFIX } from '../../advertisement';
import { MEMBERS_PREFIX } from '../../membership';
import { LOCK_PATH } from '../backend';
import { LEASE_KEY, SCHEMA_TABLE, validateTableName } from './schema';

/** PostgreSQL's default `scram_iterations`. */
const SCRAM_ITERATIONS = 4096;
const SCRAM_SALT_BYTES = 16;

/** What `gatewayGrantsSql` writes SQL for. */
export interface GatewayGrants {
  /** The nodes' data table (LEADERWAY_POSTGRESQL_TABLE). */
  table: string;
  /** The nodes' lock table (LEADERWAY_POSTGRESQL_HA_TABLE). */
  haTable: string;
  /** The gateway role's name: an identifier like a table's. */
  role: string;
  /** The role's password: printable ASCII (so SASLprep leaves it as is). */
  password: string;
  /**
   * For the separate lock database of split storage (LEADERWAY_HA_POSTGRESQL_URL), which holds
   * the lock table and no data table: grants on the lock table only.
   */
  haOnly?: boolean;
}

/** Printable ASCII without space: SASLprep maps such a password to itself. */
export const SCRAM_SAFE_PASSWORD = /^[\x21-\x7e]+$/;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677): the server can
 * check a login with it but nobody can log in with it. `ALTER ROLE ... PASSWORD '<verifier>'`
 * stores it as is.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(SCRAM_SALT_BYTES)): string {
  if (!SCRAM_SAFE_PASSWORD.test(password)) throw new Error('password must be printable ASCII');
  const salted = pbkdf2Sync(password, salt, SCRAM_ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  const b64 = (b: Buffer) => b.toString('base64');
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** A string literal for constants of ours (paths, names): they hold no quote, checked anyway. */
function literal(s: string): string {
  if (s.includes("'") || s.includes('\\')) throw new Error(`unexpected quote in ${s}`);
  return `'${s}'`;
}

/** The SQL, one transaction; safe to run again (it resets the role's privileges and policies). */
export function gatewayGrantsSql(o: GatewayGrants): string {
  validateTableName(o.table, 'table');
  validateTableName(o.haTable, 'ha_table');
  validateTableName(o.role, 'gateway role');
  const { table: t, haTable: h, role: r } = o;
  const policy = `${r}_read`;
  const tables = o.haOnly ? [h] : [t, h];
  const names = tables.join(' and ');
  const regclasses = tables.map((x) => `${literal(x)}::regclass`).join(', ');
  const dataGrants = o.haOnly
    ? ''
    : `GRANT SELECT (path, value) ON ${t} TO ${r};
ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS ${policy} ON ${t};
CREATE POLICY ${policy} ON ${t} FOR SELECT TO ${r}
  USING (path ^@ ${literal(SIGNED_LEADER_PREFIX)} OR path ^@ ${literal(MEMBERS_PREFIX)});
`;
  return `-- leaderway postgres-grants: the read-only role ${r} for the gateways of the cluster whose
-- ${o.haOnly ? 'lock table (in this separate HA database) is' : 'tables are'} ${names}. Run it as a superuser (psql -v ON_ERROR_STOP=1 -f ...)
-- once a leaderway node has created the tables (its first start); again after changing the password.
-- The nodes connect as the tables' owner, which row level security does not restrict.
BEGIN;
DO $$
BEGIN
  IF ${tables.map((x) => `to_regclass(${literal(x)}) IS NULL`).join(' OR ')}
     OR to_regclass(${literal(SCHEMA_TABLE)}) IS NULL THEN
    RAISE EXCEPTION 'table(s) ${names} do not exist yet: start a leaderway node on this database first';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(r)}) THEN
    CREATE ROLE ${r};
  END IF;
  IF EXISTS (SELECT FROM pg_class WHERE oid IN (${regclasses})
              AND pg_has_role(${literal(r)}, relowner, 'MEMBER')) THEN
    RAISE EXCEPTION 'role ${r} owns ${names}, or may SET ROLE to their owner: it would bypass row level security';
  END IF;
END $$;
ALTER ROLE ${r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
  PASSWORD ${literal(scramVerifier(o.password))};
REVOKE ALL ON ${[...tables, SCHEMA_TABLE].join(', ')} FROM ${r};
GRANT SELECT (component, version) ON ${SCHEMA_TABLE} TO ${r};
${dataGrants}GRANT SELECT (ha_key, ha_value, valid_until, epoch) ON ${h} TO ${r};
ALTER TABLE ${h} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS ${policy} ON ${h};
CREATE POLICY ${policy} ON ${h} FOR SELECT TO ${r}
  USING (ha_key IN (${literal(LOCK_PATH)}, ${literal(LEASE_KEY)}));
COMMIT;
`;
}
