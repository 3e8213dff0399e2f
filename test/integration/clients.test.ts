/**
 * Unmodified Vault clients end to end: Debian's python3-hvac (default adapter) and node-vault
 * 0.12 (default options) each run a whole KV scenario — enable mounts, write, read, LIST
 * between other requests on their keep-alive connection, patch, metadata, tune, disable —
 * against the gateway, a standby (forwarding) and the active node of a 3-node cluster.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nodeVaultScenario, nodeVaultWrappedSecretId } from '../clients/node-vault-scenario';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import type { Proc } from '../helpers/procs';

/** Debian's interpreter: python3-hvac installs for it (a pyenv python3 on PATH would not see it). */
const PYTHON = '/usr/bin/python3';
const HVAC_SCENARIO = path.join(__dirname, '..', 'clients', 'hvac_scenario.py');

/** A wrapping token already unwrapped once is refused, as OpenBao refuses it. */
async function assertSpent(url: string, wrappingToken: string, who: string): Promise<void> {
  const again = await call(url, '/v1/sys/wrapping/unwrap', { token: wrappingToken, body: {} });
  assert.equal(again.status, 400, `${who}: a second unwrap: ${again.text}`);
  assert.deepEqual((again.body as { errors?: string[] }).errors, [
    'wrapping token is not valid or does not exist',
  ]);
}

describe('unmodified Vault clients through the gateway, a standby and the active node', () => {
  let c: GatewayCluster;
  let targets: Array<[string, () => Promise<Proc>]> = [];

  before(async () => {
    c = await startGatewayCluster();
    targets = c.targets();
  });
  after(async () => {
    await c?.stop();
  });

  it('hvac (python3-hvac, default adapter)', async () => {
    for (const [name, target] of targets) {
      const url = (await target()).url;
      const { stdout, stderr } = await promisify(execFile)(PYTHON, [HVAC_SCENARIO, url, c.token, name], {
        timeout: 60_000,
      }).catch((err: Error & { stdout?: string; stderr?: string }) => {
        assert.fail(
          `hvac against the ${name} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`,
        );
      });
      assert.match(stdout, /^ok \d+ steps$/m, `${name}: ${stdout}${stderr}`);
      const wrapping = /^wrapping token (\S+)$/m.exec(stdout)?.[1];
      assert.ok(wrapping, `${name}: no wrapping token in ${stdout}`);
      await assertSpent(url, wrapping, `hvac, ${name}`);
    }
  });

  it('node-vault 0.12 (default options)', async () => {
    for (const [name, target] of targets) {
      const url = (await target()).url;
      const steps = await nodeVaultScenario(url, c.token, name);
      assert.ok(steps > 5, `${name}: ${steps} steps`);
      await assertSpent(url, await nodeVaultWrappedSecretId(url, c.token, name), `node-vault, ${name}`);
    }
  });
});
