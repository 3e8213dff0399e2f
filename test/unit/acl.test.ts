/**
 * ACL policies: parsing HCL and JSON (and refusing what is not enforced), and upstream's
 * precedence — deny wins, the most specific matching path wins, `+` matches one segment.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Acl } from '../../node/acl/acl';
import { type ParsedPolicy, parsePolicy, policyName } from '../../node/acl/policy';

const caps = (acl: Acl, path: string) => [...acl.capabilities(path)].sort();

describe('policy parsing', () => {
  it('reads HCL and JSON to the same rules', async () => {
    const hcl = await parsePolicy(
      'p',
      'path "secret/data/*" {\n  capabilities = ["read", "list", "read"]\n}\npath "/sys/mounts" {\n  capabilities = ["read"]\n}\n',
    );
    const json = await parsePolicy(
      'p',
      JSON.stringify({
        path: {
          'secret/data/*': { capabilities: ['list', 'read'] },
          '/sys/mounts': { capabilities: ['read'] },
        },
      }),
    );
    assert.deepEqual(hcl, json);
    assert.deepEqual(hcl.paths[0], { path: 'secret/data/*', capabilities: ['list', 'read'] });
    assert.equal(hcl.paths[1]?.path, 'sys/mounts', 'a leading slash is dropped');
  });

  it('refuses what it would not enforce, and bad syntax, with a 400 naming it', async () => {
    const refused = async (text: string, message: RegExp) =>
      assert.rejects(parsePolicy('p', text), (err: Error & { status?: number }) => {
        assert.equal(err.status, 400);
        assert.match(err.message, message);
        return true;
      });
    await refused('path "a" {\n  capabilities = [\n', /policy p:\d+,\d+/);
    await refused(
      'path "a" {\n  capabilities = ["read"]\n  denied_parameters = { "x" = [] }\n}\n',
      /denied_parameters.*not supported/,
    );
    await refused('path "a" { capabilities = ["fly"] }', /unknown capability "fly"/);
    await refused('path "a/*/b" { capabilities = ["read"] }', /"\*" may appear only at the end/);
    await refused('path "a/b+/c" { capabilities = ["read"] }', /"\+" must be a whole path segment/);
    await refused('name = "x"', /"name" is not supported/);
    await refused('', /empty/);
    await refused('{"path": ', /failed to parse policy/);
  });

  it('lower-cases names and refuses odd ones', () => {
    assert.equal(policyName('App-Read'), 'app-read');
    assert.throws(() => policyName('../x'), /invalid policy name/);
    assert.throws(() => policyName(''), /invalid policy name/);
  });
});

describe('ACL precedence', () => {
  const policy = (paths: Record<string, string[]>): ParsedPolicy => ({
    name: 'p',
    paths: Object.entries(paths).map(([path, c]) => ({ path, capabilities: c as never })),
  });

  it('grants nothing where nothing matches', () => {
    assert.deepEqual(caps(new Acl([policy({ 'secret/data/a': ['read'] })]), 'secret/data/b'), []);
  });

  it('merges the same path across policies; deny there wins', () => {
    const merged = new Acl([policy({ 'secret/*': ['read'] }), policy({ 'secret/*': ['list'] })]);
    assert.deepEqual(caps(merged, 'secret/x'), ['list', 'read']);
    const denied = new Acl([policy({ 'secret/*': ['read'] }), policy({ 'secret/*': ['deny'] })]);
    assert.deepEqual(caps(denied, 'secret/x'), []);
  });

  it('lets the most specific path win, even when it grants less', () => {
    const acl = new Acl([
      policy({
        'secret/data/*': ['read', 'update'],
        'secret/data/app/secret': ['deny'],
        'secret/data/app/*': ['read'],
        'secret/data/+/shared': ['list'],
      }),
    ]);
    assert.deepEqual(caps(acl, 'secret/data/app/secret'), [], 'exact beats every glob');
    assert.deepEqual(caps(acl, 'secret/data/app/other'), ['read'], 'the longer glob wins');
    assert.deepEqual(caps(acl, 'secret/data/zzz'), ['read', 'update']);
    // `+` first appears later than the glob's `*` in secret/data/*: the + pattern wins there.
    assert.deepEqual(caps(acl, 'secret/data/team/shared'), ['list']);
    assert.deepEqual(caps(acl, 'secret/data/team/shared/more'), ['read', 'update'], '+ matches one segment');
  });

  it('prefers a pattern without a trailing glob, then fewer +, then the longer one', () => {
    const acl = new Acl([policy({ 'a/+/c': ['read'], 'a/+/c*': ['list'], 'a/+/+': ['delete'] })]);
    assert.deepEqual(caps(acl, 'a/b/c'), ['read']);
    assert.deepEqual(caps(acl, 'a/b/cd'), ['delete'], 'a trailing glob loses to two + segments');
    assert.deepEqual(caps(acl, 'a/b/cd/e'), ['list'], 'only the glob matches deeper paths');
    assert.deepEqual(caps(acl, 'a/b/x'), ['delete']);
  });

  it('checks a list request (a directory) against an exact rule without the slash first', () => {
    const acl = new Acl([
      policy({ 'auth/token/accessors': ['list', 'sudo'], 'secret/metadata/*': ['read'] }),
    ]);
    assert.deepEqual(caps(acl, 'auth/token/accessors/'), ['list', 'sudo']);
    assert.deepEqual(caps(acl, 'secret/metadata/app/'), ['read'], 'globs see the slash');
  });

  it('allows() needs every capability asked for', () => {
    const acl = new Acl([policy({ 'sys/step-down': ['update'] })]);
    assert.equal(acl.allows('sys/step-down', ['update']), true);
    assert.equal(acl.allows('sys/step-down', ['update', 'sudo']), false);
  });
});
