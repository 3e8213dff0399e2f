/** The `leaderway` command line: dispatches to a subcommand. */
import { devSchema } from '../shared/config/dev-schema';
import { gatewaySchema } from '../shared/config/gateway-schema';
import { nodeSchema } from '../shared/config/node-schema';
import { postgresGrantsSchema } from '../shared/config/postgres-grants-schema';
import { redisAclSchema } from '../shared/config/redis-acl-schema';
import { VERSION } from '../shared/version';
import { devCommand } from './dev-command';
import { gatewayCommand } from './gateway-command';
import { MAIN_HELP, optionsHelp } from './help';
import { keysCommand } from './keys-command';
import { postgresGrantsCommand } from './postgres-grants-command';
import { redisAclCommand } from './redis-acl-command';
import { serverCommand } from './server-command';
import { statusCommand } from './status-command';

const COMMANDS = {
  server: { run: serverCommand, about: 'Run an HA node.', schema: nodeSchema },
  gateway: {
    run: gatewayCommand,
    about: 'Run a gateway that routes every request to the leader.',
    schema: gatewaySchema,
  },
  dev: {
    run: devCommand,
    about: 'Run a local cluster (nodes + gateway) in one process on in-memory storage.',
    schema: devSchema,
  },
  keys: {
    run: keysCommand,
    about: 'Print a fresh set of keys (seal, advertisement, signing and verify keys) as environment lines.',
    schema: {},
  },
  'redis-acl': {
    run: redisAclCommand,
    about:
      'Print Redis aclfile lines for the least-privilege leaderway-node and leaderway-gateway users (and leaderway-admin, for operators).',
    schema: redisAclSchema,
  },
  'postgres-grants': {
    run: postgresGrantsCommand,
    about:
      'Print the SQL creating the least-privilege leaderway_gateway PostgreSQL role: LOGIN and SELECT of the lock, advertisement and membership rows only (row level security). Run it once a node has created the tables.',
    schema: postgresGrantsSchema,
  },
} as const;

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(MAIN_HELP);
    return;
  }
  if (cmd === 'version' || cmd === '--version') {
    process.stdout.write(`leaderway v${VERSION}\n`);
    return;
  }
  if (cmd === 'status' || cmd === 'members') {
    process.exitCode = await statusCommand(rest, cmd === 'members');
    return;
  }
  const command = COMMANDS[cmd as keyof typeof COMMANDS];
  if (!command) {
    process.stderr.write(`leaderway: unknown command '${cmd}'\n\n${MAIN_HELP}`);
    process.exit(2);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`Usage: leaderway ${cmd}\n\n${command.about}\n\n${optionsHelp(command.schema)}`);
    return;
  }
  if (rest.length > 0) {
    process.stderr.write(
      `leaderway: unexpected arguments: ${rest.join(' ')} (configure with environment variables)\n`,
    );
    process.exit(2);
  }
  await command.run();
}
