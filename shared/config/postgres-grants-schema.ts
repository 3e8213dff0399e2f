/** Options of `leaderway postgres-grants` (the least-privilege PostgreSQL role of gateways). */
import type { Schema } from './load';

/** The nodes' table names, as gateways and the grants command read them (same variables). */
export const nodesTablesSchema = {
  table: {
    doc: 'The nodes’ PostgreSQL data table (their LEADERWAY_POSTGRESQL_TABLE).',
    format: 'pg-identifier',
    default: 'leaderway_kv',
    env: 'LEADERWAY_POSTGRESQL_TABLE',
  },
  ha_table: {
    doc: 'The nodes’ PostgreSQL lock table (their LEADERWAY_POSTGRESQL_HA_TABLE).',
    format: 'pg-identifier',
    default: 'leaderway_ha_locks',
    env: 'LEADERWAY_POSTGRESQL_HA_TABLE',
  },
} satisfies Schema;

export const postgresGrantsSchema = {
  ...nodesTablesSchema,
  gateway_role: {
    doc: 'Name of the gateways’ PostgreSQL role (created unless it exists).',
    format: 'pg-identifier',
    default: 'leaderway_gateway',
    env: 'LEADERWAY_POSTGRESQL_GATEWAY_ROLE',
  },
  gateway_password: {
    doc: 'Password of the gateway role: at least 16 printable ASCII characters, no space (written as a SCRAM-SHA-256 verifier). Required.',
    format: String,
    default: '',
    env: 'LEADERWAY_POSTGRESQL_GATEWAY_PASSWORD',
    sensitive: true,
  },
  ha_only: {
    doc: 'For the separate lock database of split storage (the nodes’ LEADERWAY_HA_POSTGRESQL_URL): grant on the lock table only (that database has no data table). Run the SQL without it on the data database.',
    format: Boolean,
    default: false,
    env: 'LEADERWAY_POSTGRESQL_GRANTS_HA_ONLY',
  },
  out_file: {
    doc: 'Write the SQL to this file (mode 0600) instead of standard output.',
    format: String,
    default: '',
    env: 'LEADERWAY_POSTGRESQL_GRANTS_FILE',
  },
} satisfies Schema;

export interface PostgresGrantsConfig {
  table: string;
  ha_table: string;
  gateway_role: string;
  gateway_password: string;
  ha_only: boolean;
  out_file: string;
}
