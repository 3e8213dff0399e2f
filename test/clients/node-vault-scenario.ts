/**
 * An unmodified node-vault 0.12 client (default options) driving one leaderway address: enables
 * KV v2 and v1 mounts named after `name`, writes, reads, lists (the raw LIST verb, on axios'
 * keep-alive agent, between other requests), patches (node-vault's `update`: a JSON merge patch),
 * manages metadata, then disables the mounts. Throws on any surprise; resolves the step count.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import nodeVault from 'node-vault';

type Json = { data: Record<string, unknown> & { keys?: string[]; data?: Record<string, unknown> } };

export async function nodeVaultScenario(endpoint: string, token: string, name: string): Promise<number> {
  const vault = nodeVault({ endpoint, token });
  let steps = 0;
  const check = (ok: boolean, what: string) => {
    steps++;
    assert.ok(ok, what);
  };
  const v2 = `nv-${name}`;
  const v1 = `nv-${name}-v1`;
  await vault.mount({ mount_point: v2, type: 'kv', options: { version: '2' } });
  await vault.mount({ mount_point: v1, type: 'kv' });
  const mounts = (await vault.mounts()) as Json;
  check(mounts.data[`${v2}/`] !== undefined && mounts.data[`${v1}/`] !== undefined, 'mounts listed');

  await vault.write(`${v2}/data/app/db`, { data: { user: 'u', password: 'p1' } });
  await vault.write(`${v2}/data/app/web`, { data: { k: 'v' } });
  for (let round = 0; round < 3; round++) {
    const listed = (await vault.list(`${v2}/metadata/app`)) as Json;
    check(listed.data.keys?.length === 2 + round, `list round ${round}: ${JSON.stringify(listed.data)}`);
    const read = (await vault.read(`${v2}/data/app/db`)) as Json;
    check(read.data.data?.user === 'u', 'read between lists');
    await vault.write(`${v2}/data/app/extra${round}`, { data: { round } });
  }
  const patched = (await vault.update(`${v2}/data/app/db`, { data: { password: null, token: 't' } })) as Json;
  check(patched.data.version === 2, `patch: ${JSON.stringify(patched)}`);
  const after = (await vault.read(`${v2}/data/app/db`)) as Json;
  assert.deepEqual(after.data.data, { user: 'u', token: 't' });
  await vault.write(`${v2}/metadata/app/db`, { max_versions: 4, custom_metadata: { owner: name } });
  await vault.update(`${v2}/metadata/app/db`, { custom_metadata: { tier: '1' } });
  const meta = (await vault.read(`${v2}/metadata/app/db`)) as Json;
  assert.deepEqual(meta.data.custom_metadata, { owner: name, tier: '1' });
  check(meta.data.max_versions === 4, 'max_versions');
  await vault.delete(`${v2}/metadata/app/web`);
  check(!((await vault.list(`${v2}/metadata/app`)) as Json).data.keys?.includes('web'), 'web deleted');

  await vault.write(`${v1}/plain/a`, { x: '1' });
  assert.deepEqual(((await vault.read(`${v1}/plain/a`)) as Json).data, { x: '1' });
  assert.deepEqual(((await vault.list(`${v1}/plain`)) as Json).data.keys, ['a']);
  await vault.delete(`${v1}/plain/a`);
  await assert.rejects(vault.read(`${v1}/plain/a`), /Status 404/);
  await vault.unmount({ mount_point: v2 });
  await vault.unmount({ mount_point: v1 });
  check(((await vault.mounts()) as Json).data[`${v2}/`] === undefined, 'unmounted');
  return steps;
}

/**
 * node-vault as a trusted orchestrator: gets an AppRole secret ID response-wrapped (the wrap TTL as
 * a request header), checks where the wrapping token was made, and starts node-vault-wrapped-app.ts
 * as a second process with only the wrapping token and the role ID; that process unwraps, logs in
 * and reads its secret. Throws on any surprise; resolves the (spent) wrapping token.
 */
export async function nodeVaultWrappedSecretId(
  endpoint: string,
  token: string,
  name: string,
): Promise<string> {
  const vault = nodeVault({ endpoint, token });
  const mount = `nv-wrap-${name}`;
  const role = 'app';
  const secret = `nv-wrap-${name}`;
  await vault.enableAuth({ mount_point: mount, type: 'approle' });
  await vault.addPolicy({ name: secret, rules: `path "secret/data/${secret}" { capabilities = ["read"] }` });
  await vault.write(`secret/data/${secret}`, { data: { password: `p-${name}` } });
  await vault.addApproleRole({
    mount_point: mount,
    role_name: role,
    policies: secret,
    secret_id_num_uses: 1,
  });
  const roleId = ((await vault.getApproleRoleId({ mount_point: mount, role_name: role })) as Json).data
    .role_id as string;
  const wrapped = (await vault.getApproleRoleSecret({
    mount_point: mount,
    role_name: role,
    requestOptions: { headers: { 'X-Vault-Wrap-TTL': '30s' } },
  })) as {
    data: unknown;
    wrap_info?: { token: string; accessor: string; ttl: number; creation_path: string };
  };
  const info = wrapped.wrap_info;
  const creationPath = `auth/${mount}/role/${role}/secret-id`;
  assert.ok(info && wrapped.data === null, `not wrapped: ${JSON.stringify(wrapped)}`);
  assert.equal(info.ttl, 30);
  assert.equal(info.creation_path, creationPath);
  assert.ok(info.accessor, 'wrapping accessor');
  const looked = (await vault.write('sys/wrapping/lookup', { token: info.token })) as Json;
  assert.equal(looked.data.creation_path, creationPath, 'malfeasance check');

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VAULT_')));
  const app = path.join(__dirname, 'node-vault-wrapped-app.ts');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', app, endpoint, info.token, roleId, mount, role, secret],
    { cwd: path.join(__dirname, '..', '..'), env, timeout: 30_000 },
  ).catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`the wrapped app failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  });
  assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1) ?? ''), {
    policies: ['default', secret],
    secret: { password: `p-${name}` },
  });
  await vault.disableAuth({ mount_point: mount });
  return info.token;
}
