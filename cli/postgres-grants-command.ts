/**
 * `leaderway postgres-grants`: prints the SQL that creates the gateways' least-privilege
 * PostgreSQL role (see shared/storage/postgres/grants.ts): LOGIN and SELECT of the lock, the
 * signed advertisements and membership records only, with the password from
 * LEADERWAY_POSTGRESQL_GATEWAY_PASSWORD (as a SCRAM-SHA-256 verifier).
 */
import { writeFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../shared/config/load';
import { type PostgresGrantsConfig, postgresGrantsSchema } from '../shared/config/postgres-grants-schema';
import { gatewayGrantsSql, SCRAM_SAFE_PASSWORD } from '../shared/storage/postgres/grants';
import { exitOnConfigError } from './run';

/** As for the Redis users: short passwords are guessable over the network. */
const MIN_PASSWORD_LENGTH = 16;

export async function postgresGrantsCommand(): Promise<void> {
  let c: PostgresGrantsConfig;
  try {
    c = await loadConfig<PostgresGrantsConfig>(postgresGrantsSchema, { useConfigFile: false });
    if (c.gateway_password.length < MIN_PASSWORD_LENGTH || !SCRAM_SAFE_PASSWORD.test(c.gateway_password))
      throw new ConfigError(
        `gateway_password (LEADERWAY_POSTGRESQL_GATEWAY_PASSWORD): required, at least ${MIN_PASSWORD_LENGTH} printable ASCII characters without space`,
      );
  } catch (err) {
    exitOnConfigError(err);
  }
  const text = gatewayGrantsSql({
    table: c.table,
    haTable: c.ha_table,
    role: c.gateway_role,
    password: c.gateway_password,
    haOnly: c.ha_only,
  });
  if (c.out_file) writeFileSync(c.out_file, text, { mode: 0o600 });
  else process.stdout.write(text);
}
