/**
 * k8s/scripts/make-secrets.sh against a stand-in kubectl that keeps Secrets in a JSON file: the
 * script creates exactly the Secrets the manifests reference, with values the node and gateway
 * accept, never passes a value on a command line, and never replaces an existing Secret.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { allowedName, certificateNames, parseNamePatterns } from '../../node/ha/gateway-names';
import { parseKeyList } from '../../shared/config/formats';
import { nodeSchema } from '../../shared/config/node-schema';
import { signingKeyFromSeed } from '../../shared/crypto/signing';
import { parseRedisUrl } from '../../shared/storage/redis/redis-url';
import { POSTGRESQL_SCRIPT_SECRETS, SCRIPT_SECRETS } from './invariants';
import { ROOT } from './render';

const SCRIPT = path.join(ROOT, 'k8s', 'scripts', 'make-secrets.sh');

/** A kubectl that understands just the calls the script makes; Secrets become files. */
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -eu
state="$FAKE_KUBECTL_STATE"
mkdir -p "$state"
printf '%s\\n' "$*" >> "$state/calls"
ns=default; rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--namespace) ns="$2"; shift 2 ;;
    --context) shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
set -- "\${rest[@]}"
case "$1 $2" in
  "get namespace") [ -d "$state/ns/$3" ] ;;
  "create namespace") mkdir -p "$state/ns/$3" ;;
  "get secret") [ -d "$state/ns/$ns/secret/$3" ] ;;
  "create secret")
    [ "$3" = generic ] || exit 3
    dir="$state/ns/$ns/secret/$4"
    [ ! -d "$dir" ] || { echo AlreadyExists >&2; exit 1; }
    mkdir -p "$dir"
    for arg in "\${@:5}"; do
      spec="\${arg#--from-file=}"; [ "$spec" != "$arg" ] || exit 3
      cp "\${spec#*=}" "$dir/\${spec%%=*}"
    done ;;
  "label secret") ;;
  *) echo "fake kubectl: unsupported $*" >&2; exit 3 ;;
esac
`;

interface FakeState {
  namespaces: string[];
  /** "namespace/name" → key → value */
  secrets: Record<string, Record<string, string>>;
  calls: string[];
}

let dir = '';
let stateDir = '';

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lw-make-secrets-'));
  writeFileSync(path.join(dir, 'kubectl'), FAKE_KUBECTL);
  chmodSync(path.join(dir, 'kubectl'), 0o755);
  stateDir = path.join(dir, 'state');
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], input = ''): { status: number | null; out: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], {
    input,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, FAKE_KUBECTL_STATE: stateDir },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function state(): FakeState {
  const nsDir = path.join(stateDir, 'ns');
  const namespaces = existsSync(nsDir) ? readdirSync(nsDir).sort() : [];
  const secrets: FakeState['secrets'] = {};
  for (const ns of namespaces) {
    const secretDir = path.join(nsDir, ns, 'secret');
    if (!existsSync(secretDir)) continue;
    for (const name of readdirSync(secretDir)) {
      const data: Record<string, string> = {};
      for (const key of readdirSync(path.join(secretDir, name)))
        data[key] = readFileSync(path.join(secretDir, name, key), 'utf8');
      secrets[`${ns}/${name}`] = data;
    }
  }
  const callsFile = path.join(stateDir, 'calls');
  const calls = existsSync(callsFile) ? readFileSync(callsFile, 'utf8').split('\n').filter(Boolean) : [];
  return { namespaces, secrets, calls };
}

test('creates the namespace and exactly the Secrets the manifests reference, with valid values', () => {
  const r = run(['--namespace', 'lw-test']);
  assert.equal(r.status, 0, r.out);
  const s = state();
  assert.deepEqual(s.namespaces, ['lw-test']);
  const refs = Object.entries(s.secrets)
    .flatMap(([name, data]) => Object.keys(data).map((k) => `${name.split('/')[1]}/${k}`))
    .sort();
  assert.deepEqual(refs, Object.keys(SCRIPT_SECRETS).sort());
  const get = (ref: string): string => {
    const [name, key] = ref.split('/') as [string, string];
    return s.secrets[`lw-test/${name}`]?.[key] ?? '';
  };
  const seal = get('leaderway-seal/seal-key');
  const ad = get('leaderway-advertisement/keys');
  const signing = get('leaderway-signing/signing-key');
  const verify = get('leaderway-verify/verify-key');
  for (const k of [seal, ad, signing, verify]) {
    assert.equal(parseKeyList(k).length, 1);
    assert.match(k, /^[A-Za-z0-9+/]{43}=$/, 'no trailing newline or padding issues');
  }
  assert.equal(new Set([seal, ad, signing]).size, 3);
  // The verify key is the signing key's public half.
  assert.equal(signingKeyFromSeed(Buffer.from(signing, 'base64')).publicRaw.toString('base64'), verify);
  // The gateway identity: issued by the CA the nodes trust, for client authentication only.
  const ca = new X509Certificate(get('leaderway-gateway-ca/ca.crt'));
  const cert = new X509Certificate(get('leaderway-gateway-identity/tls.crt'));
  assert.ok(ca.ca, 'the CA certificate is a CA');
  assert.ok(cert.verify(ca.publicKey), 'the identity is signed by the CA');
  assert.ok(!cert.ca);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'extended key usage: client auth only');
  assert.equal(
    allowedName(
      parseNamePatterns(nodeSchema.gateway_allowed_names.default),
      certificateNames(cert.subjectAltName),
    ),
    'leaderway-gateway',
    'nodes admit it with the default LEADERWAY_GATEWAY_ALLOWED_NAMES',
  );
  assert.ok(cert.checkPrivateKey(createPrivateKey(get('leaderway-gateway-identity/tls.key'))));
  // The dev Redis: two users, each URL with its own password; the operators' admin user a third.
  const nodePw = get('leaderway-redis-passwords/node-password');
  const gwPw = get('leaderway-redis-passwords/gateway-password');
  const adminPw = get('leaderway-redis-passwords/admin-password');
  assert.match(nodePw, /^[0-9a-f]{48}$/);
  assert.match(adminPw, /^[0-9a-f]{48}$/);
  assert.equal(new Set([nodePw, gwPw, adminPw]).size, 3);
  assert.equal(get('leaderway-redis-node/url'), `redis://leaderway-node:${nodePw}@leaderway-redis:6379`);
  assert.equal(get('leaderway-redis-gateway/url'), `redis://leaderway-gateway:${gwPw}@leaderway-redis:6379`);
  const values = [seal, ad, signing, nodePw, gwPw, adminPw, get('leaderway-gateway-identity/tls.key')];
  for (const call of s.calls) {
    for (const value of values) assert.ok(!call.includes(value), `a secret on the command line: ${call}`);
  }
  for (const value of values) assert.ok(!r.out.includes(value), 'a secret was printed');
});

test('never replaces an existing Secret', () => {
  const before = state().secrets;
  const r = run(['--namespace', 'lw-test']);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /secret\/leaderway-seal exists: kept/);
  assert.match(r.out, /secret\/leaderway-signing exists: kept/);
  assert.deepEqual(state().secrets, before);
});

test('reads the Redis URLs from stdin with `-`, keeping the passwords off the command line', () => {
  const nodeUrl = 'redis+sentinel://leaderway-node:pa55word@sentinel-0:26379,sentinel-1:26379/mymaster';
  const gwUrl = 'redis+sentinel://leaderway-gateway:gw-pa55@sentinel-0:26379,sentinel-1:26379/mymaster';
  const r = run(
    ['--namespace', 'lw-other', '--context', 'prod', '--redis-node-url', '-', '--redis-gateway-url', '-'],
    `${nodeUrl}\n${gwUrl}\n`,
  );
  assert.equal(r.status, 0, r.out);
  const s = state();
  assert.equal(s.secrets['lw-other/leaderway-redis-node']?.url, nodeUrl);
  assert.equal(s.secrets['lw-other/leaderway-redis-gateway']?.url, gwUrl);
  assert.equal(s.secrets['lw-other/leaderway-redis-passwords'], undefined, 'no dev Redis passwords');
  assert.ok(!s.calls.some((c) => c.includes('pa55')));
  const calls = s.calls.filter((c) => c.includes('lw-other'));
  assert.ok(calls.length > 0 && calls.every((c) => c.startsWith('--context prod ')), calls.join('\n'));
});

test('refuses a Redis URL of the wrong scheme, one URL without the other, and one URL for both', () => {
  const scheme = run(['--redis-node-url', 'http://redis:6379', '--redis-gateway-url', 'redis://b:6379']);
  assert.equal(scheme.status, 2);
  assert.match(
    scheme.out,
    /must start with redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/ or rediss\+sentinel:\/\//,
  );
  const one = run(['--redis-node-url', 'redis://a:6379']);
  assert.equal(one.status, 2);
  assert.match(one.out, /give both/);
  const same = run(['--redis-node-url', 'redis://a:6379', '--redis-gateway-url', 'redis://a:6379']);
  assert.equal(same.status, 2);
  assert.match(same.out, /must differ/);
});

test('--redis-sentinel: the Sentinel component passwords and redis+sentinel:// URLs that parse', () => {
  const r = run(['--namespace', 'lw-sentinel', '--redis-sentinel']);
  assert.equal(r.status, 0, r.out);
  const secrets = state().secrets;
  const pw = secrets['lw-sentinel/leaderway-redis-passwords'] ?? {};
  assert.deepEqual(Object.keys(pw).sort(), [
    'admin-password',
    'gateway-password',
    'internal-password',
    'node-password',
    'sentinel-password',
  ]);
  assert.equal(new Set(Object.values(pw)).size, 5, 'five distinct passwords');
  const node = parseRedisUrl(secrets['lw-sentinel/leaderway-redis-node']?.url ?? '');
  assert.ok('options' in node);
  assert.equal(node.options.name, 'mymaster');
  assert.equal(node.options.username, 'leaderway-node');
  assert.equal(node.options.password, pw['node-password']);
  assert.equal(node.options.sentinelPassword, pw['sentinel-password']);
  assert.deepEqual(
    node.options.sentinels?.map((s) => `${s.host}:${s.port}`),
    [0, 1, 2].map((i) => `leaderway-redis-${i}.leaderway-redis:26379`),
  );
  const gw = parseRedisUrl(secrets['lw-sentinel/leaderway-redis-gateway']?.url ?? '');
  assert.ok('options' in gw);
  assert.equal(gw.options.username, 'leaderway-gateway');
  assert.equal(gw.options.password, pw['gateway-password']);
  assert.ok(!r.out.includes(pw['sentinel-password'] ?? '?'), 'a secret was printed');
  const bad = run([
    '--namespace',
    'lw-sentinel',
    '--redis-sentinel',
    '--redis-node-url',
    'redis://a',
    '--redis-gateway-url',
    'redis://b',
  ]);
  assert.equal(bad.status, 2);
});

test("--postgresql-*: each role's URL from stdin and the server CA, and no Redis Secret", () => {
  const ca = path.join(dir, 'server-ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const tls = 'sslmode=verify-full&sslrootcert=/etc/leaderway/postgresql-ca/ca.crt';
  const nodeUrl = `postgresql://leaderway:n0de-pa55@db-1:5432,db-2:5432/leaderway?target_session_attrs=read-write&${tls}`;
  const gwUrl = `postgresql://leaderway_gateway:gw-pa55@db.example.com:5432/leaderway?${tls}`;
  const r = run(
    [
      '--namespace',
      'lw-pg',
      '--postgresql-node-url',
      '-',
      '--postgresql-gateway-url',
      '-',
      '--postgresql-ca',
      ca,
    ],
    `${nodeUrl}\n${gwUrl}\n`,
  );
  assert.equal(r.status, 0, r.out);
  const s = state();
  const refs = Object.entries(s.secrets)
    .filter(([name]) => name.startsWith('lw-pg/'))
    .flatMap(([name, data]) => Object.keys(data).map((k) => `${name.split('/')[1]}/${k}`))
    .sort();
  const expected = [
    ...Object.keys(SCRIPT_SECRETS).filter((ref) => !ref.startsWith('leaderway-redis-')),
    ...Object.keys(POSTGRESQL_SCRIPT_SECRETS),
  ].sort();
  assert.deepEqual(refs, expected, 'the Secrets the production-postgresql overlay references, no Redis ones');
  assert.equal(s.secrets['lw-pg/leaderway-postgresql-node']?.url, nodeUrl);
  assert.equal(s.secrets['lw-pg/leaderway-postgresql-gateway']?.url, gwUrl);
  assert.equal(s.secrets['lw-pg/leaderway-postgresql-ca']?.['ca.crt'], readFileSync(ca, 'utf8'));
  assert.ok(!s.calls.some((c) => c.includes('pa55')), 'a password on the command line');
  assert.ok(!r.out.includes('pa55'), 'a password was printed');
});

test('--postgresql-*: refuses URLs that do not verify the server, one URL, one URL for both, Redis too', () => {
  const tls = 'sslmode=verify-full&sslrootcert=/etc/leaderway/postgresql-ca/ca.crt';
  const ok = (user: string) => `postgresql://${user}@db:5432/leaderway?${tls}`;
  const cases: Array<[string[], RegExp]> = [
    [
      ['--postgresql-node-url', 'postgresql://a@db/x?sslmode=require', '--postgresql-gateway-url', ok('b')],
      /needs sslmode=verify-full&sslrootcert=\/etc\/leaderway\/postgresql-ca\/ca\.crt/,
    ],
    [
      [
        '--postgresql-node-url',
        ok('a'),
        '--postgresql-gateway-url',
        'postgresql://b@db/x?sslmode=verify-full&sslrootcert=/tmp/ca.pem',
      ],
      /needs sslmode=verify-full/,
    ],
    [
      ['--postgresql-node-url', ok('a'), '--postgresql-gateway-url', `mysql://b@db/x?${tls}`],
      /must start with postgres:\/\//,
    ],
    [['--postgresql-node-url', ok('a')], /give both --postgresql-node-url and --postgresql-gateway-url/],
    [['--postgresql-node-url', ok('a'), '--postgresql-gateway-url', ok('a')], /must differ/],
    [
      ['--postgresql-node-url', ok('a'), '--postgresql-gateway-url', ok('b'), '--redis-sentinel'],
      /PostgreSQL or Redis, not both/,
    ],
    [['--postgresql-ca', path.join(dir, 'kubectl')], /is not a readable PEM certificate file/],
  ];
  for (const [args, message] of cases) {
    const r = run(['--namespace', 'lw-pg-refused', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, message, args.join(' '));
  }
  assert.ok(!state().namespaces.includes('lw-pg-refused'), 'nothing was created');
});
