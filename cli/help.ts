/** `--help` text generated from the convict schemas, so it never drifts from the code. */
import { type Schema, schemaEntries } from '../shared/config/load';

/** Lists every option with its environment variable, default and doc. */
export function optionsHelp(schema: Schema): string {
  const rows = schemaEntries(schema).map(({ key, entry }) => {
    const names = [entry.env, ...(entry.envAliases ?? [])].join(', ');
    const dflt = entry.sensitive ? '(secret)' : JSON.stringify(entry.default);
    return `  ${names}\n      ${key} — ${entry.doc}\n      default: ${dflt === '""' ? 'none' : dflt}`;
  });
  return `Environment variables (they win over the config file given by LEADERWAY_CONFIG: JSON, YAML or HCL):\n  LEADERWAY_CONFIG\n      config file path — default: none\n${rows.join('\n')}\n`;
}

export const MAIN_HELP = `Usage: leaderway <command> [--help]

Commands:
  server    run an HA node (Vault-compatible API, leader lock in Redis or PostgreSQL)
  gateway   run a gateway: routes every request to the current leader
  dev       run a local cluster in one process: 3 nodes and a gateway on in-memory storage
  keys      print a fresh set of keys (seal, advertisement, signing, verify)
  redis-acl print Redis ACL users for nodes, gateways (least privilege) and operators
  postgres-grants
            print the SQL for the gateways' read-only PostgreSQL role (least privilege)
  status    who leads and is every node heartbeating (VAULT_ADDR, VAULT_TOKEN; --format json)
  members   the nodes table alone (like 'bao operator members')
  version   print the version

Every option is set through environment variables; see 'leaderway <command> --help'.
`;
