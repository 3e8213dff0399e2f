/**
 * An application that receives its AppRole secret ID wrapped, driven with unmodified node-vault
 * 0.12 (default options). Started by nodeVaultWrappedSecretId (node-vault-scenario.ts, the trusted
 * orchestrator) with only a wrapping token and its role ID:
 *   node --import tsx node-vault-wrapped-app.ts <url> <wrapping token> <role id> <approle mount> <role> <secret>
 * It checks where the wrapping token was made (sys/wrapping/lookup, with no token of its own),
 * unwraps it with the wrapping token as its only token, logs in with AppRole and reads the KV v2
 * secret `secret/<secret>` its policy allows. Exits non-zero on any surprise; the last line
 * printed is {"policies": [...], "secret": {...}} as JSON, which the orchestrator checks.
 */
import nodeVault from 'node-vault';

type Data<T> = { data: T };

async function main(): Promise<void> {
  const [endpoint, wrappingToken, roleId, mount, role, secret] = process.argv.slice(2);
  if (!endpoint || !wrappingToken || !roleId || !mount || !role || !secret) {
    throw new Error('usage: <url> <wrapping token> <role id> <approle mount> <role> <secret>');
  }
  // node-vault has no wrapping lookup command: its generic write (the endpoint needs no token).
  const anonymous = nodeVault({ endpoint });
  const looked = (await anonymous.write('sys/wrapping/lookup', { token: wrappingToken })) as Data<{
    creation_path: string;
  }>;
  const expected = `auth/${mount}/role/${role}/secret-id`;
  if (looked.data.creation_path !== expected) {
    throw new Error(`wrapping token made at ${looked.data.creation_path}, not ${expected}`);
  }
  const holder = nodeVault({ endpoint, token: wrappingToken });
  const unwrapped = (await holder.unwrap()) as Data<{ secret_id: string }>;
  const app = nodeVault({ endpoint });
  const login = (await app.approleLogin({
    mount_point: mount,
    role_id: roleId,
    secret_id: unwrapped.data.secret_id,
  })) as { auth: { policies: string[] } };
  const read = (await app.read(`secret/data/${secret}`)) as Data<{ data: Record<string, unknown> }>;
  console.log(JSON.stringify({ policies: [...login.auth.policies].sort(), secret: read.data.data }));
}

main().catch((err: Error & { response?: { statusCode?: number } }) => {
  console.error(`${err.response?.statusCode ?? ''} ${err.stack ?? err.message}`);
  process.exit(1);
});
