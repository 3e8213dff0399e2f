/**
 * k8s/scripts/make-secrets.sh against a stand-in kubectl that keeps Secrets in a JSON file: the
 * script creates exactly the Secrets the manifests reference, with values the node and gateway
 * accept, never passes a value on a command line, and never replaces an existing Secret.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
import { parseKeyList } from '../../shared/config/formats';
import { SCRIPT_SECRETS } from './invariants';
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
  const seal = s.secrets['lw-test/leaderway-seal']?.['seal-key'] ?? '';
  const ad = s.secrets['lw-test/leaderway-advertisement']?.keys ?? '';
  assert.equal(parseKeyList(seal).length, 1);
  assert.equal(parseKeyList(ad).length, 1);
  assert.notEqual(seal, ad);
  assert.match(seal, /^[A-Za-z0-9+/]{43}=$/, 'no trailing newline or padding issues');
  assert.equal(s.secrets['lw-test/leaderway-redis']?.url, 'redis://leaderway-redis:6379');
  for (const call of s.calls) {
    for (const value of [seal, ad]) assert.ok(!call.includes(value), `a key on the command line: ${call}`);
  }
  assert.ok(!r.out.includes(seal) && !r.out.includes(ad), 'a key was printed');
});

test('never replaces an existing Secret', () => {
  const before = state().secrets;
  const r = run(['--namespace', 'lw-test', '--redis-url', 'redis://other:6379']);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /secret\/leaderway-seal exists: kept/);
  assert.deepEqual(state().secrets, before);
});

test('reads the Redis URL from stdin with `-`, keeping the password off the command line', () => {
  const url = 'redis+sentinel://:pa55word@sentinel-0:26379,sentinel-1:26379/mymaster';
  const r = run(['--namespace', 'lw-other', '--context', 'prod', '--redis-url', '-'], `${url}\n`);
  assert.equal(r.status, 0, r.out);
  const s = state();
  assert.equal(s.secrets['lw-other/leaderway-redis']?.url, url);
  assert.ok(!s.calls.some((c) => c.includes('pa55word')));
  const calls = s.calls.filter((c) => c.includes('lw-other'));
  assert.ok(calls.length > 0 && calls.every((c) => c.startsWith('--context prod ')), calls.join('\n'));
});

test('refuses a Redis URL of the wrong scheme', () => {
  const r = run(['--redis-url', 'http://redis:6379']);
  assert.equal(r.status, 2);
  assert.match(r.out, /must start with redis:\/\/, rediss:\/\/ or redis\+sentinel:\/\//);
});
