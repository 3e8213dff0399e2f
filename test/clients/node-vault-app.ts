/**
 * An application that is not root, driven with unmodified node-vault 0.12 (default options):
 * with an admin token, enable AppRole at `nv-approle-<name>`, write an HCL policy, create a role,
 * fetch its role ID and a secret ID; then as the application (logged in with AppRole, which sets
 * the client's token), write, read and list under its path, be refused outside it, create a
 * child token, renew and revoke itself. Throws on any surprise; resolves the step count.
 */
import assert from 'node:assert/strict';
import nodeVault from 'node-vault';

type Auth = { auth: { client_token: string; policies: string[]; lease_duration: number; orphan: boolean } };
type Data<T> = { data: T };

export async function nodeVaultApp(endpoint: string, adminToken: string, name: string): Promise<number> {
  let steps = 0;
  const check = (ok: boolean, what: string) => {
    steps++;
    assert.ok(ok, what);
  };
  const refused = async (p: Promise<unknown>, what: string) => {
    await assert.rejects(
      p,
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 403,
      what,
    );
    steps++;
  };
  const admin = nodeVault({ endpoint, token: adminToken });
  const mount = `nv-approle-${name}`;
  await admin.enableAuth({ mount_point: mount, type: 'approle', description: 'node-vault app' });
  const policy = `nv-app-${name}`;
  await admin.addPolicy({
    name: policy,
    rules: `path "secret/data/nv-${name}/*" {\n  capabilities = ["create", "read", "update"]\n}\npath "secret/metadata/nv-${name}/*" {\n  capabilities = ["list"]\n}\npath "auth/token/create" {\n  capabilities = ["update"]\n}\n`,
  });
  // node-vault's schema sends the legacy `policies` field and whole seconds.
  await admin.addApproleRole({ mount_point: mount, role_name: 'api', policies: policy, token_ttl: 3600 });
  const roleId = (
    (await admin.getApproleRoleId({ mount_point: mount, role_name: 'api' })) as Data<{ role_id: string }>
  ).data.role_id;
  const secretId = (
    (await admin.getApproleRoleSecret({ mount_point: mount, role_name: 'api' })) as Data<{
      secret_id: string;
    }>
  ).data.secret_id;

  const app = nodeVault({ endpoint });
  const login = (await app.approleLogin({
    mount_point: mount,
    role_id: roleId,
    secret_id: secretId,
  })) as Auth;
  check(app.token === login.auth.client_token, 'the login set the client token');
  assert.deepEqual(login.auth.policies, ['default', policy]);
  await app.write(`secret/data/nv-${name}/db`, { data: { password: 'p1' } });
  check(
    ((await app.read(`secret/data/nv-${name}/db`)) as Data<{ data: { password: string } }>).data.data
      .password === 'p1',
    'read own',
  );
  assert.deepEqual(((await app.list(`secret/metadata/nv-${name}`)) as Data<{ keys: string[] }>).data.keys, [
    'db',
  ]);
  await refused(app.read('secret/data/other/x'), 'read outside');
  await refused(app.write('secret/data/other/x', { data: { a: 1 } }), 'write outside');
  await refused(app.list('secret/metadata/other'), 'list outside');
  await refused(app.mounts(), 'sys outside');
  const child = (await app.tokenCreate({ policies: [policy], ttl: '10m' })) as Auth;
  check(!child.auth.orphan && child.auth.lease_duration === 600, `child: ${JSON.stringify(child.auth)}`);
  const renewed = (await app.tokenRenewSelf({ increment: '2h' })) as Auth;
  check(renewed.auth.lease_duration > 3600, 'renewed');
  await app.tokenRevokeSelf();
  await refused(app.read(`secret/data/nv-${name}/db`), 'revoked self');
  const childClient = nodeVault({ endpoint, token: child.auth.client_token });
  await refused(childClient.read(`secret/data/nv-${name}/db`), 'child revoked with its parent');
  return steps;
}
