/**
 * The Redis users `leaderway redis-acl` writes (shared/storage/redis/acl.ts), as text: what each
 * may run. test/security/least-privilege.test.ts checks the same users against a real Redis.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aclLines, RETIRED_SCRIPT_SHAS } from '../../shared/storage/redis/acl';
import { scriptShas } from '../../shared/storage/redis/scripts';

/**
 * The scripts the node user may run, by SHA-1. A changed script changes its SHA-1: nodes of the
 * previous release, still running during a rolling upgrade, would then be refused theirs. Add
 * the old SHA-1 to RETIRED_SCRIPT_SHAS, then update this list.
 */
const PINNED = {
  'lock-acquire.lua': '58a29e94f6c0a1e478569dc22431ec93ac3811c9',
  'lock-renew.lua': '82e877abe829cfe1e7591995d3b37e05c76ab287',
  'lock-release.lua': 'cae2317e162ce46fd88c6bc16e61969323ed0cd5',
  'lock-touch.lua': 'ff118f8a27083a98d494734b6af9c749ec8bd04f',
  'batch.lua': 'a7a74d6f1c33fb2d086060f0230e9b2850af17e1',
  'get-within.lua': '9e030ca7569eddda3b1a217826a139e4ab33c2ba',
};

const PASSWORDS = { node: 'n'.repeat(16), gateway: 'g'.repeat(16) };

function rules(line: string | undefined): string[] {
  return (line ?? '').split(' ');
}

describe('redis-acl users', () => {
  it('the node user runs exactly leaderway’s scripts (a changed script is acknowledged, for rolling upgrades)', () => {
    assert.deepEqual(
      Object.fromEntries(scriptShas().map((s) => [s.file, s.sha])),
      PINNED,
      'a Lua script changed: keep its previous SHA-1 in RETIRED_SCRIPT_SHAS (acl.ts), then update PINNED',
    );
    const node = rules(aclLines('leaderway', PASSWORDS)[0]);
    const evalsha = node.filter((r) => r.startsWith('+evalsha'));
    assert.deepEqual(
      evalsha.sort(),
      [...Object.values(PINNED), ...RETIRED_SCRIPT_SHAS].map((sha) => `+evalsha|${sha}`).sort(),
    );
    for (const r of ['+eval', '+evalsha', '+@scripting', '+script|flush', '+script|kill', '+function|load'])
      assert.ok(!node.includes(r), `${r} granted to the node user`);
    for (const r of ['+script|load', '+wait', '+strlen', '+info', '+client|id', '+client|list'])
      assert.ok(node.includes(r), `${r} not granted to the node user`);
  });

  it('the gateway user has no INFO, SELECT, script or write; no admin user without a password', () => {
    const lines = aclLines('leaderway', PASSWORDS);
    assert.equal(lines.length, 2);
    const gateway = rules(lines[1]);
    assert.deepEqual(
      gateway.filter((r) => r.startsWith('+')),
      ['+client|setname', '+get', '+mget', '+subscribe'],
    );
    const admin = aclLines('leaderway', { ...PASSWORDS, admin: 'a'.repeat(16) })[2] ?? '';
    assert.match(admin, /^user leaderway-admin on #[0-9a-f]{64} ~\* &\* \+@all -debug -module$/);
    assert.ok(
      !lines.join('\n').includes('a'.repeat(16)) && !admin.includes('a'.repeat(16)),
      'a password in the clear',
    );
  });
});
