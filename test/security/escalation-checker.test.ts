/**
 * The escalation checker must catch what it claims to: each rule is broken in a tiny hand-made
 * history and must be reported under its id; a clean history exercising the same calls, and the
 * legitimate near-misses (sudo grants, the last use of a token, expiry within the slack), must
 * pass. The model's own ACL evaluator is checked against OpenBao's priority rules too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrSubset, inCidrs, ModelAcl } from './escalation/acl';
import { checkEscalation } from './escalation/checker';
import { base, HOUR, issued } from './escalation/history-builder';

describe('escalation checker', () => {
  it('accepts a clean history of the same calls, and the legitimate near-misses', () => {
    const h = base()
      .policy('sudoer', [{ path: 'auth/token/create', caps: ['update', 'sudo'] }])
      .create('t1', 't2', ['default', 'maker'], { args: { policies: ['maker'] } })
      .create('t1', 't3', ['maker'], { args: { noDefault: true } })
      .create('root', 't4', ['default', 'sudoer'])
      // sudo on the create path: any non-root policy, periodic, no_parent
      .create('t4', 't5', ['default', 'other'], {
        args: { policies: ['other'], periodS: 60, noParent: true },
        token: { orphan: true },
      })
      .add('t2', { kind: 'kv-read', path: 'secret/data/a' }, 200)
      .add('t2', { kind: 'kv-read', path: 'secret/data/b/x' }, 403)
      .create('root', 't6', ['default'], { args: { numUses: 2 }, token: { numUses: 2 } })
      .add('t6', { kind: 'lookup-self' }, 200)
      .add('t6', { kind: 'lookup-self' }, 200) // the last use is served
      .add('t6', { kind: 'lookup-self' }, 403)
      .create('root', 't7', ['default'], { args: { ttlS: 2 }, token: { leaseS: 2 } })
      .add('t7', { kind: 'lookup-self' }, 200, { gapMs: 3_000 }) // past its TTL, within the slack
      .add('t7', { kind: 'lookup-self' }, 403, { gapMs: 5_000 })
      .add('t1', { kind: 'revoke-self' }, 204)
      .add('t2', { kind: 'lookup-self' }, 403)
      .add('root', { kind: 'lookup', token: 't2' }, 403)
      .add('root', { kind: 'renew-accessor', token: 't2' }, 400)
      .add('t4', { kind: 'ui-mount', path: 'nomount/x' }, 403)
      .approle()
      .role(
        'r1',
        { token_policies: ['maker'], secret_id_num_uses: 2, token_bound_cidrs: ['10.1.0.0/16'] },
        'id-1',
      )
      .secret('r1', 's1', { numUses: 2, args: { numUses: 2, tokenBoundCidrs: ['10.1.2.0/24'] } })
      .login('id-1', 's1', issued('t8', ['default', 'maker']))
      .add('t8', { kind: 'lookup-self' }, 200, { addr: '10.1.2.9' })
      .add('t8', { kind: 'lookup-self' }, 403, { addr: '10.1.9.9' })
      .create('t8', 't9', ['default', 'maker'], { addr: '10.1.2.9' })
      .add('t9', { kind: 'lookup-self' }, 403, { addr: '10.2.0.1' })
      .add('root', { kind: 'revoke', token: 't9' }, 204, { addr: '10.2.0.1' })
      .add('root', { kind: 'role-id-write', role: 'r1', roleId: 'id-2' }, 204)
      .login('id-2', 's1', issued('t10', ['default', 'maker']));
    const r = checkEscalation(h.steps);
    assert.deepEqual(r.violations, []);
    assert.equal(r.stats.logins, 2);
    assert.equal(r.stats.deadTokenRequests, 3);
  });

  it('judges a read a standby served exactly like one the active served', () => {
    // Issue 27: standbys serve reads, so a standby's answer is held to the same rules.
    const onStandby = { via: 'standby' as const, standby: 'served' as const };
    const h = () =>
      base()
        .create('root', 't2', ['default', 'other'])
        .approle()
        .role('r1', { token_policies: ['maker'], token_bound_cidrs: ['127.0.0.0/29'] }, 'id-1')
        .secret('r1', 's1')
        .login('id-1', 's1', issued('t3', ['default', 'maker']));
    // Clean: allowed reads answered, refused reads refused, on a standby.
    const clean = h()
      .add('t1', { kind: 'kv-read', path: 'secret/data/a' }, 200, onStandby)
      .add('t2', { kind: 'kv-read', path: 'secret/data/a' }, 403, onStandby)
      .add('t3', { kind: 'lookup-self' }, 200, { ...onStandby, addr: '127.0.0.2' })
      .add('t3', { kind: 'lookup-self' }, 403, { ...onStandby, addr: '127.0.0.9' });
    assert.deepEqual(clean.rules(), []);
    const kvRead = { kind: 'kv-read', path: 'secret/data/a' } as const;
    assert.deepEqual(
      h().add('t2', kvRead, 200, onStandby).rules(),
      ['capability'],
      'read without the policy',
    );
    assert.deepEqual(
      h()
        .add('t3', { kind: 'lookup-self' }, 200, { ...onStandby, addr: '127.0.0.9' })
        .rules(),
      ['bounds'],
      'a bound token accepted outside its CIDRs',
    );
    assert.deepEqual(
      h().add('root', { kind: 'revoke', token: 't1' }, 204).add('t1', kvRead, 200, onStandby).rules(),
      ['dead'],
      'a revoked token accepted by a standby',
    );
    const wrapped = base().wrapCreate('t1', 'w1', { policies: ['maker'] });
    assert.deepEqual(
      wrapped.add('w1', kvRead, 200, onStandby).rules(),
      ['wrapping'],
      'a wrapping token reads',
    );
  });

  it('knows an unwrap answers 400 before judging the caller, and spends no wrapping token opening another', () => {
    // Found by long runs (seeds 101 and 202, 1000 steps): both were the model's mistakes.
    const child = issued('t2', ['default', 'maker']);
    const two = () =>
      base()
        .wrapCreate('t1', 'w1', { policies: ['maker'] })
        .wrapCreate('t1', 'w2');
    // w1 trying to open w2 is refused 400 and spends neither (node/api/routes/sys-wrapping.ts).
    assert.deepEqual(two().unwrap('w1', 400, undefined, 'w2').unwrap('w1', 200, child).rules(), []);
    assert.deepEqual(two().unwrap('w1', 400, undefined, 'w2').unwrap('w2', 200, child).rules(), []);
    // A caller outside its CIDRs naming a spent wrapping token: 400 (the wrapping token is checked
    // first, as for a dead caller), which accepts nothing.
    const bound = () =>
      base()
        .wrapCreate('t1', 'w1', { policies: ['maker'] })
        .unwrap('w1', 200, child)
        .approle()
        .role('r1', { token_policies: ['maker'], token_bound_cidrs: ['10.0.0.0/8'] }, 'id-1')
        .secret('r1', 's1')
        .login('id-1', 's1', issued('t3', ['default', 'maker']), '10.1.2.3');
    const unwrapSpent = { kind: 'unwrap', token: 'w1' } as const;
    assert.deepEqual(bound().add('t3', unwrapSpent, 400, { addr: '127.0.0.1' }).rules(), []);
    assert.deepEqual(bound().add('t3', { kind: 'lookup-self' }, 200, { addr: '127.0.0.1' }).rules(), [
      'bounds',
    ]);
  });

  it('13 wrapping: accepted elsewhere, unwrapped twice, another token unwrapped, a revealed escalation', () => {
    const wrapped = () => base().wrapCreate('t1', 'w1', { policies: ['maker'] });
    const child = issued('t2', ['default', 'maker']);
    // Clean: unwrapped once by itself, refused (400) after, refused (403) elsewhere.
    assert.deepEqual(
      wrapped().unwrap('w1', 200, child).unwrap('w1', 400).add('t2', { kind: 'lookup-self' }, 200).rules(),
      [],
    );
    assert.deepEqual(
      wrapped().add('w1', { kind: 'lookup-self' }, 403).unwrap('root', 200, child, 'w1').rules(),
      [],
      'by a caller with the token in the body',
    );
    assert.deepEqual(wrapped().unwrap('w1', 200, child, 'w1').rules(), [], 'itself, named in the body');
    assert.deepEqual(wrapped().add('w1', { kind: 'lookup-self' }, 200).rules(), ['wrapping']);
    assert.deepEqual(wrapped().add('w1', { kind: 'kv-read', path: 'secret/data/a' }, 404).rules(), [
      'wrapping',
    ]);
    assert.ok(
      wrapped().unwrap('w1', 200, child).unwrap('root', 200, child, 'w1').rules().includes('wrapping'),
    );
    assert.deepEqual(base().unwrap('root', 200, child, 't1').rules(), ['wrapping'], 'not a wrapping token');
    assert.deepEqual(
      wrapped().wrapCreate('t1', 'w2').unwrap('w1', 200, child, 'w2').rules(),
      ['wrapping'],
      'a wrapping token spent to open another',
    );
    // What an unwrap reveals is judged as the wrapped call: here a child beyond its parent.
    const beyond = issued('t2', ['default', 'other']);
    assert.deepEqual(wrapped().unwrap('w1', 200, beyond).rules(), ['subset']);
    // An expired wrapping token unwraps nothing.
    assert.ok(
      base()
        .wrapCreate('t1', 'w1', {}, 1)
        .add('w1', { kind: 'unwrap' }, 200, { gapMs: 5_000, out: { token: child } })
        .rules()
        .includes('dead'),
    );
  });

  it('13 wrapping, KV reads: the unwrap reveals what was read then; a read not allowed is 403 and wraps nothing', () => {
    // t1 may read secret/data/a (maker); t2 may not (other: secret/data/b/* only).
    const read = () =>
      base()
        .create('root', 't2', ['default', 'other'])
        .kvWrite('secret/data/a', 'v1')
        .wrapRead('t1', 'w1', 'secret/data/a');
    // Clean: a write after the wrap changes nothing the unwrap reveals; a refused read is 403.
    assert.deepEqual(read().kvWrite('secret/data/a', 'v2').unwrapKv('w1', 200, 'v1').rules(), []);
    assert.deepEqual(read().wrapRead('t2', 'w2', 'secret/data/a', { status: 403 }).rules(), []);
    // A write without an answer may or may not have applied before the wrap: either value is fine.
    const unsure = () =>
      base()
        .kvWrite('secret/data/a', 'v1')
        .kvWrite('secret/data/a', 'v2', 0)
        .wrapRead('t1', 'w1', 'secret/data/a');
    assert.deepEqual(unsure().unwrapKv('w1', 200, 'v1').rules(), []);
    assert.deepEqual(unsure().unwrapKv('w1', 200, 'v2').rules(), []);
    // Planted: the unwrap tells what was written after the wrap, or something else than a read.
    assert.deepEqual(read().kvWrite('secret/data/a', 'v2').unwrapKv('w1', 200, 'v2').rules(), ['wrapping']);
    assert.deepEqual(
      read()
        .unwrap('w1', 200, issued('t9', ['default']))
        .rules(),
      ['wrapping'],
    );
    // Planted: a read t2 may not do, wrapped anyway, or answered other than 403, or refused yet
    // handing out a wrapping token; a wrapped answer with the data in the clear as well.
    assert.deepEqual(read().wrapRead('t2', 'w2', 'secret/data/a').rules(), ['capability']);
    assert.deepEqual(read().wrapRead('t2', 'w2', 'secret/data/a', { status: 404 }).rules(), ['capability']);
    const wrapping = issued('w2', ['response-wrapping'], { leaseS: 300, numUses: 1 });
    assert.deepEqual(
      read().wrapRead('t2', 'w2', 'secret/data/a', { status: 403, out: { wrapping } }).rules(),
      ['wrapping'],
    );
    assert.deepEqual(
      read()
        .wrapRead('t1', 'w2', 'secret/data/a', { out: { wrapping, clear: true } })
        .rules(),
      ['wrapping'],
    );
  });

  it('13 wrapping, rewrap: only of a live wrapping token, by a caller allowed, spending it, same TTL and content', () => {
    const read = () =>
      base()
        .policy('rewrapper', [{ path: 'sys/wrapping/rewrap', caps: ['update'] }])
        .create('root', 't2', ['default', 'rewrapper'])
        .kvWrite('secret/data/a', 'v1')
        .wrapRead('t1', 'w1', 'secret/data/a');
    // Clean: rewrapped by a caller with update on sys/wrapping/rewrap; the new token unwraps once
    // to the same data, the old one is refused; t1 (no rewrap right) and w1 itself are refused.
    assert.deepEqual(
      read()
        .rewrap('t1', 403, 'w1')
        .rewrap('w1', 403, 'w1')
        .rewrap('w1', 403)
        .lookup(null, 200, 'w1', { path: 'secret/data/a', ttlS: 300 })
        .rewrap('t2', 200, 'w1', 'w2')
        .unwrap('w1', 400)
        .lookup(null, 400, 'w1')
        .lookup(null, 200, 'w2', { path: 'secret/data/a', ttlS: 300 })
        .unwrapKv('w2', 200, 'v1')
        .unwrap('w2', 400)
        .rules(),
      [],
    );
    // Planted: the spent token unwrapped after its rewrap; rewrapped twice; a rewrap by a caller
    // without the right, by the wrapping token itself, of a token that wraps nothing, of one
    // already unwrapped; a new TTL; the new token revealing other data.
    const rewrapped = () => read().rewrap('t2', 200, 'w1', 'w2');
    assert.deepEqual(rewrapped().unwrapKv('w1', 200, 'v1').rules(), ['dead', 'wrapping']);
    assert.deepEqual(rewrapped().rewrap('t2', 200, 'w1', 'w3').rules(), ['dead', 'wrapping']);
    assert.deepEqual(read().rewrap('t1', 200, 'w1', 'w2').rules(), ['capability']);
    assert.deepEqual(read().rewrap('w1', 200, 'w1', 'w2').rules(), ['wrapping']);
    assert.deepEqual(read().rewrap('root', 200, 't1', 'w2').rules(), ['wrapping']);
    assert.deepEqual(read().unwrapKv('w1', 200, 'v1').rewrap('root', 200, 'w1', 'w2').rules(), [
      'dead',
      'wrapping',
    ]);
    assert.deepEqual(read().rewrap('root', 200, 'w1', 'w2', HOUR).rules(), ['lifetime']);
    assert.deepEqual(rewrapped().kvWrite('secret/data/a', 'v2').unwrapKv('w2', 200, 'v2').rules(), [
      'wrapping',
    ]);
  });

  it('13 wrapping, lookup: needs no token, tells the truth of live wrapping tokens only, spends nothing', () => {
    const read = () => base().kvWrite('secret/data/a', 'v1').wrapRead('t1', 'w1', 'secret/data/a');
    const told = { path: 'secret/data/a', ttlS: 300 };
    // Clean: by no token, a made-up one, a revoked one, the wrapping token itself; a limited-use
    // caller spends no use; then the unwrap still works, and a lookup after it is refused.
    const clean = read()
      .create('root', 't2', ['default'], { token: { numUses: 1 } })
      .add('root', { kind: 'revoke', token: 't1' }, 204)
      .lookup(null, 200, 'w1', told)
      .lookup('bogus1', 200, 'w1', told)
      .lookup('t1', 200, 'w1', told)
      .lookup('w1', 200, undefined, told)
      .lookup('t2', 200, 'w1', told)
      .add('t2', { kind: 'lookup-self' }, 200)
      .unwrapKv('w1', 200, 'v1')
      .lookup(null, 400, 'w1');
    assert.deepEqual(clean.rules(), []);
    const wrappedCreate = base().wrapCreate('t1', 'w1', { policies: ['maker'] }, 60);
    assert.deepEqual(
      wrappedCreate.lookup(null, 200, 'w1', { path: 'auth/token/create', ttlS: 60 }).rules(),
      [],
    );
    // An unwrap without an answer may have spent it: a 400 after it is no proof of anything.
    assert.deepEqual(read().add('w1', { kind: 'unwrap' }, 0).unwrap('w1', 400).rules(), []);
    // Planted: refused for want of a token; told of a spent, a plain or a made-up token; a false
    // path or TTL; a lookup that spent the token (its unwrap then refused).
    assert.deepEqual(read().lookup(null, 403, 'w1').rules(), ['wrapping']);
    assert.deepEqual(read().unwrapKv('w1', 200, 'v1').lookup(null, 200, 'w1', told).rules(), [
      'dead',
      'wrapping',
    ]);
    assert.deepEqual(read().lookup(null, 200, 't1', told).rules(), ['wrapping']);
    assert.deepEqual(read().lookup(null, 200, 'bogus1', told).rules(), ['wrapping']);
    assert.deepEqual(read().lookup(null, 200, 'w1', { path: 'secret/data/b/x', ttlS: 300 }).rules(), [
      'wrapping',
    ]);
    assert.deepEqual(
      read()
        .lookup(null, 200, 'w1', { ...told, ttlS: 3000 })
        .rules(),
      ['wrapping'],
    );
    assert.deepEqual(read().lookup(null, 200, 'w1', told).unwrap('w1', 400).rules(), ['wrapping']);
    assert.deepEqual(read().lookup('w1', 200, undefined, told).unwrap('root', 400, undefined, 'w1').rules(), [
      'wrapping',
    ]);
    // Disabling AppRole revokes the wrapping token of a secret ID generated wrapped (its creation
    // path is under the mount): its unwrap refused then is no lookup's doing, a 2xx is a dead token's.
    const disabled = () =>
      base()
        .approle()
        .role('r1', {}, 'id-1')
        .wrapSecret('r1', 'w1')
        .add('root', { kind: 'auth-disable', mount: 'approle' }, 204);
    assert.deepEqual(disabled().unwrap('w1', 400).rules(), []);
    const secret = { secret: { label: 's1', numUses: 0, ttlS: 0 } };
    assert.deepEqual(disabled().add('w1', { kind: 'unwrap' }, 200, { out: secret }).rules(), ['dead']);
  });

  it('1 root: a non-root parent creating root, an AppRole login issuing root', () => {
    assert.deepEqual(base().create('t1', 't2', ['root']).rules(), ['root', 'subset']);
    const h = base()
      .approle()
      .role('r1', { token_policies: ['maker'] }, 'id-1')
      .secret('r1', 's1');
    assert.ok(
      h
        .login('id-1', 's1', issued('t2', ['root']))
        .rules()
        .includes('root'),
    );
  });

  it('2 subset: beyond the parent, default from a parent without it, default despite no_default_policy', () => {
    assert.deepEqual(
      base()
        .create('t1', 't2', ['default', 'other'], { args: { policies: ['other'] } })
        .rules(),
      ['subset'],
    );
    const noDefault = base().create('root', 't2', ['maker'], { args: { noDefault: true } });
    assert.deepEqual(noDefault.create('t2', 't3', ['default', 'maker'], { args: {} }).rules(), ['subset']);
    const despite = base().create('t1', 't2', ['default', 'maker'], { args: { noDefault: true } });
    assert.deepEqual(despite.rules(), ['subset']);
    const unasked = base().create('t1', 't2', ['default', 'maker', 'other'], {
      args: { policies: ['maker'] },
    });
    assert.deepEqual(unasked.rules(), ['subset']);
  });

  it('3 approle: a role naming root accepted, a login with other policies than its role', () => {
    assert.deepEqual(
      base()
        .approle()
        .add('t1', { kind: 'role-write', role: 'r1', fields: { token_policies: ['root'] } }, 204)
        .rules()
        .includes('approle'),
      true,
    );
    const h = base()
      .approle()
      .role('r1', { token_policies: ['maker'] }, 'id-1')
      .secret('r1', 's1');
    assert.deepEqual(h.login('id-1', 's1', issued('t2', ['default', 'maker', 'other'])).rules(), ['approle']);
  });

  it('4 restricted-use: a parent with num_uses creates a token', () => {
    const h = base().create('root', 't2', ['default', 'maker'], { token: { numUses: 3 } });
    assert.deepEqual(h.create('t2', 't3', ['default', 'maker']).rules(), ['restricted-use']);
  });

  it('5 sudo-create: periodic and no_parent without sudo', () => {
    assert.deepEqual(
      base()
        .create('t1', 't2', ['default', 'maker'], { args: { periodS: 60 } })
        .rules(),
      ['sudo-create'],
    );
    const orphan = base().create('t1', 't2', ['default', 'maker'], {
      args: { noParent: true },
      token: { orphan: true },
    });
    assert.deepEqual(orphan.rules(), ['sudo-create']);
  });

  it('6 lifetime: past 768h, past the parent, past the role, renewed past the max', () => {
    assert.deepEqual(
      base()
        .create('t1', 't2', ['default'], { args: {}, token: { leaseS: 800 * HOUR } })
        .rules(),
      ['lifetime'],
    );
    const short = base().create('root', 't2', ['default', 'maker'], {
      args: { policies: ['maker'], explicitMaxTtlS: 60 },
    });
    assert.deepEqual(short.create('t2', 't3', ['default'], { args: { explicitMaxTtlS: HOUR } }).rules(), [
      'lifetime',
    ]);
    const h = base()
      .approle()
      .role('r1', { token_policies: ['maker'], token_max_ttl: 10 }, 'id-1')
      .secret('r1', 's1');
    assert.deepEqual(h.login('id-1', 's1', issued('t2', ['default', 'maker'], { leaseS: 60 })).rules(), [
      'lifetime',
    ]);
    const renew = base().create('root', 't2', ['default'], {
      args: { explicitMaxTtlS: 10 },
      token: { leaseS: 10 },
    });
    assert.deepEqual(renew.add('t2', { kind: 'renew-self' }, 200, { out: { leaseS: 3600 } }).rules(), [
      'lifetime',
    ]);
  });

  it('7 bounds: a bound token or its child used outside; a secret ID wider than its role; a login outside', () => {
    const h = base()
      .approle()
      .role('r1', { token_policies: ['maker'], token_bound_cidrs: ['10.1.0.0/16'] }, 'id-1');
    h.secret('r1', 's1').login('id-1', 's1', issued('t2', ['default', 'maker']));
    assert.deepEqual(h.fork().add('t2', { kind: 'lookup-self' }, 200, { addr: '10.2.0.1' }).rules(), [
      'bounds',
    ]);
    h.create('t2', 't3', ['default', 'maker'], { addr: '10.1.0.5' });
    assert.deepEqual(h.add('t3', { kind: 'lookup-self' }, 200, { addr: '10.2.0.1' }).rules(), ['bounds']);
    const wide = base()
      .approle()
      .role('r1', { secret_id_bound_cidrs: ['10.1.0.0/16'], secret_id_num_uses: 3 }, 'id-1');
    assert.deepEqual(
      wide
        .fork()
        .secret('r1', 's1', { numUses: 3, args: { cidrList: ['10.0.0.0/8'] } })
        .rules(),
      ['bounds'],
    );
    assert.deepEqual(wide.fork().secret('r1', 's1', { numUses: 0 }).rules(), ['bounds']);
    const login = wide.fork().secret('r1', 's1', { numUses: 3 });
    assert.deepEqual(login.login('id-1', 's1', issued('t2', ['default']), '10.2.0.1').rules(), ['bounds']);
  });

  it("8 role-id: taking another role's role_id; a login landing on another role", () => {
    const h = base().approle().role('r1', {}, 'id-1').role('r2', {}, 'id-2');
    assert.deepEqual(
      h.fork().add('root', { kind: 'role-id-write', role: 'r2', roleId: 'id-1' }, 204).rules(),
      ['role-id'],
    );
    h.secret('r1', 's1');
    assert.deepEqual(h.login('id-1', 's1', issued('t2', ['default'], { roleName: 'r2' })).rules(), [
      'role-id',
    ]);
  });

  it('9 dead: revoked, by cascade, spent, expired, made up; lookups and accessor calls of dead tokens', () => {
    const revoked = base()
      .create('t1', 't2', ['default', 'maker'])
      .add('root', { kind: 'revoke', token: 't1' }, 204);
    assert.deepEqual(revoked.fork().add('t2', { kind: 'lookup-self' }, 200).rules(), ['dead']);
    assert.deepEqual(revoked.fork().add('root', { kind: 'lookup', token: 't2' }, 400).rules(), ['dead']);
    assert.deepEqual(
      revoked
        .fork()
        .add('root', { kind: 'renew-accessor', token: 't1' }, 200, { out: { leaseS: 60 } })
        .rules(),
      ['dead'],
    );
    const spent = base()
      .create('root', 't2', ['default'], { token: { numUses: 1 } })
      .add('t2', { kind: 'lookup-self' }, 200);
    assert.deepEqual(spent.add('t2', { kind: 'lookup-self' }, 200).rules(), ['dead']);
    // A 400 is a handler's answer, after the use was counted: renew-self must not give it back.
    const counted = base().create('root', 't2', ['default'], { token: { numUses: 2 } });
    counted.add('t2', { kind: 'kv-read', path: 'secret/data/a' }, 403).add('t2', { kind: 'renew-self' }, 200);
    counted.add('t2', { kind: 'create', orphanPath: false, args: {} }, 400);
    assert.deepEqual(counted.add('t2', { kind: 'lookup-self' }, 200).rules(), ['dead']);
    const expired = base().create('root', 't2', ['default'], { token: { leaseS: 2 } });
    assert.deepEqual(expired.add('t2', { kind: 'lookup-self' }, 200, { gapMs: 6_000 }).rules(), ['dead']);
    assert.deepEqual(base().add('bogus1', { kind: 'lookup-self' }, 200).rules(), ['dead']);
    const h = base()
      .approle()
      .role('r1', { token_policies: ['maker'], token_bound_cidrs: ['10.1.0.0/16'] }, 'id-1');
    h.secret('r1', 's1', { numUses: 1 }).login('id-1', 's1', issued('t2', ['default', 'maker']));
    assert.deepEqual(
      h
        .fork()
        .login('id-1', 's1', issued('t3', ['default', 'maker']))
        .rules(),
      ['dead'],
    );
    assert.deepEqual(h.add('root', { kind: 'revoke', token: 't2' }, 400, { addr: '10.2.0.1' }).rules(), [
      'dead',
    ]);
  });

  it('10 sudo-path and 12 capability: 2xx without the grant', () => {
    const h = base()
      .policy('auth', [{ path: 'sys/auth/*', caps: ['update', 'read'] }])
      .create('root', 't2', ['auth']);
    assert.deepEqual(h.fork().add('t2', { kind: 'auth-enable', mount: 'x1' }, 204).rules(), ['sudo-path']);
    assert.deepEqual(h.fork().add('t1', { kind: 'accessors' }, 200).rules(), ['capability']);
    assert.deepEqual(h.fork().add('t1', { kind: 'kv-write', path: 'secret/data/a' }, 200).rules(), [
      'capability',
    ]);
    const upd = base()
      .policy('upd', [{ path: 'secret/data/a', caps: ['update'] }])
      .create('root', 't2', ['upd']);
    assert.deepEqual(
      upd.add('t2', { kind: 'kv-write', path: 'secret/data/a' }, 200).rules(),
      ['capability'],
      'create needed',
    );
  });

  it('11 oracle: a missing mount answered, a mount shown to a caller with nothing under it', () => {
    assert.deepEqual(base().add('root', { kind: 'ui-mount', path: 'nomount/x' }, 200).rules(), ['oracle']);
    const h = base().create('root', 't2', ['default']);
    assert.deepEqual(h.fork().add('t2', { kind: 'ui-mount', path: 'secret' }, 200).rules(), ['oracle']);
    const plus = base()
      .policy('plus', [{ path: 'secret/data/+/x', caps: ['sudo'] }])
      .create('root', 't2', ['default', 'plus']);
    assert.deepEqual(
      plus.add('t2', { kind: 'ui-mount', path: 'secret' }, 200).rules(),
      [],
      'a + rule under the mount counts',
    );
  });
});

describe('escalation model: ACL evaluator and CIDRs', () => {
  it('follows OpenBao: exact wins, then the later wildcard, non-glob, fewer +, longer; deny wins a merge', () => {
    const acl = new ModelAcl([
      { path: 'secret/*', caps: ['read'] },
      { path: 'secret/data/+/x', caps: ['update'] },
      { path: 'secret/data/b/*', caps: ['list'] },
      { path: 'secret/data/a', caps: ['create'] },
      { path: 'secret/data/a', caps: ['deny'] },
      { path: 'auth/token/accessors', caps: ['list', 'sudo'] },
    ]);
    assert.deepEqual([...acl.capabilities('secret/data/b/x')], ['list']);
    assert.deepEqual([...acl.capabilities('secret/data/c/x')], ['update']);
    assert.deepEqual([...acl.capabilities('secret/other')], ['read']);
    assert.deepEqual([...acl.capabilities('secret/data/a')], []);
    assert.ok(
      acl.allows('auth/token/accessors/', ['list', 'sudo']),
      'LIST takes the exact rule without its slash',
    );
    assert.ok(
      new ModelAcl([{ path: 'auth/token/create*', caps: ['sudo'] }]).allows('auth/token/create-orphan', [
        'sudo',
      ]),
    );
  });

  it('compares CIDR blocks by containment', () => {
    assert.ok(inCidrs(['10.1.0.0/16'], '10.1.200.3'));
    assert.ok(!inCidrs(['10.1.0.0/16'], '10.2.0.3'));
    assert.ok(cidrSubset(['10.1.2.0/24'], ['10.1.0.0/16']));
    assert.ok(
      !cidrSubset(['10.0.0.0/8'], ['10.1.0.0/16']),
      'a wider block with its address inside is not a subset',
    );
  });
});
