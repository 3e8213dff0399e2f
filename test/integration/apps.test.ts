/**
 * Applications that are not root, end to end: unmodified hvac (python3-hvac) and node-vault 0.12
 * through the gateway of a 3-node cluster. After setup (root creates an admin token with an
 * admin policy, then is not used), each client enables AppRole, writes an HCL policy, creates a
 * role, logs in, works under its policy, is refused outside it, creates a child token, renews and
 * revokes itself — before, during and after a step-down and a kill -9 of the active node. A token
 * issued before the faults keeps working after them; one revoked before them stays refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nodeVaultApp } from '../clients/node-vault-app';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/procs';

const PYTHON = '/usr/bin/python3';
const HVAC_APP = path.join(__dirname, '..', 'clients', 'hvac_app.py');

const ADMIN_POLICY = `
path "sys/auth" { capabilities = ["read"] }
path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }
path "sys/policy" { capabilities = ["read"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete"] }
path "auth/+/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

describe('applications that are not root: AppRole, policies, tokens through failovers', () => {
  let c: GatewayCluster;
  let admin = '';
  let keeper = '';
  let revoked = '';
  let run = 0;

  const both = async (phase: string) => {
    const name = `${phase}${++run}`;
    const { stdout } = await promisify(execFile)(PYTHON, [HVAC_APP, c.gw.url, admin, name], {
      timeout: 90_000,
    }).catch((err: Error & { stdout?: string; stderr?: string }) =>
      assert.fail(`hvac (${phase}) failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`),
    );
    assert.match(stdout, /^ok \d+ steps$/m, `hvac (${phase})`);
    assert.ok((await nodeVaultApp(c.gw.url, admin, name)) > 5, `node-vault (${phase})`);
  };

  /** The keeper still works, the revoked token is still refused. */
  const tokensHold = async () => {
    const k = await call(c.gw.url, '/v1/secret/data/keep/x', { token: keeper });
    assert.equal(k.status, 200, `the keeper token: ${k.text}`);
    assert.equal((await call(c.gw.url, '/v1/secret/data/keep/x', { token: revoked })).status, 403);
  };

  before(async () => {
    c = await startGatewayCluster();
    const root = c.token;
    const p = await call(c.gw.url, '/v1/sys/policy/admin', {
      token: root,
      method: 'PUT',
      body: { policy: ADMIN_POLICY },
    });
    assert.equal(p.status, 204, p.text);
    const a = await call(c.gw.url, '/v1/auth/token/create-orphan', {
      token: root,
      body: { policies: ['admin'], ttl: '2h' },
    });
    assert.equal(a.status, 200, a.text);
    admin = (a.body as { auth: { client_token: string } }).auth.client_token;
    await call(c.gw.url, '/v1/sys/policy/keep', {
      token: root,
      method: 'PUT',
      body: { policy: 'path "secret/data/keep/*" { capabilities = ["read", "create", "update"] }' },
    });
    await call(c.gw.url, '/v1/secret/data/keep/x', { token: root, body: { data: { v: 1 } } });
    const mk = async () =>
      (
        (await call(c.gw.url, '/v1/auth/token/create', { token: root, body: { policies: ['keep'] } }))
          .body as {
          auth: { client_token: string };
        }
      ).auth.client_token;
    keeper = await mk();
    revoked = await mk();
    assert.equal(
      (await call(c.gw.url, '/v1/auth/token/revoke-self', { token: revoked, method: 'POST' })).status,
      204,
    );
  });
  after(async () => {
    await c?.stop();
  });

  it('before any fault', async () => {
    await both('before');
    await tokensHold();
  });

  it('during and after a step-down', async () => {
    const active = await c.active();
    const down = await call(active.url, '/v1/sys/step-down', { token: c.token, method: 'PUT' });
    assert.equal(down.status, 204);
    await both('stepdown');
    await waitFor(async () => (await c.active()) !== active, 20_000, 'a new active node');
    await both('afterstepdown');
    await tokensHold();
  });

  it('during and after a kill -9 of the active node', async () => {
    const active = await c.active();
    await active.stop('SIGKILL');
    await both('kill');
    await both('afterkill');
    await tokensHold();
  });
});
