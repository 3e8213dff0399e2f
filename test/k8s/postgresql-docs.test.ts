/**
 * The PostgreSQL connection URLs shown to whoever deploys k8s/overlays/production-postgresql
 * (k8s/README.md, the overlay's and the component's comments) verify the server against the CA
 * the pods mount: copied as written, they must not turn TLS verification off. Pure file checks,
 * with or without kubectl.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { catches } from './mutations';
import { OVERLAYS_DIR, ROOT } from './render';
import { POSTGRESQL_CA_PATH } from './storage-invariants';

const OVERLAY = 'production-postgresql';

/** Every postgres:// or postgresql:// URL in `text`. */
function postgresUrls(text: string): string[] {
  return [...text.matchAll(/postgres(?:ql)?:\/\/[^\s`'")<>]+/g)].map((m) => m[0]);
}

/** Why a documented URL would not verify the server, or would not find the mounted CA. */
function urlProblems(where: string, url: string): string[] {
  const problems: string[] = [];
  // Not `new URL`: a multi-host URL (h1:5432,h2:5432) is no WHATWG URL.
  const q = new URLSearchParams(url.split('?')[1] ?? '');
  if (q.get('sslmode') !== 'verify-full') problems.push(`${where}: ${url} lacks sslmode=verify-full`);
  if (q.get('sslrootcert') !== POSTGRESQL_CA_PATH)
    problems.push(`${where}: ${url} lacks sslrootcert=${POSTGRESQL_CA_PATH}`);
  return problems;
}

/** The files that show a PostgreSQL URL to whoever deploys this overlay. */
function documentingFiles(): string[] {
  const component = path.join(ROOT, 'k8s', 'components', 'external-postgresql');
  return [
    path.join(ROOT, 'k8s', 'README.md'),
    path.join(OVERLAYS_DIR, OVERLAY, 'kustomization.yaml'),
    ...readdirSync(component).map((f) => path.join(component, f)),
  ];
}

describe('the documented PostgreSQL URLs', () => {
  test('verify the server (sslmode=verify-full) against the CA the pods mount', () => {
    let count = 0;
    const problems: string[] = [];
    for (const file of documentingFiles()) {
      const urls = postgresUrls(readFileSync(file, 'utf8'));
      count += urls.length;
      for (const url of urls) problems.push(...urlProblems(path.relative(ROOT, file), url));
    }
    assert.ok(count >= 6, `only ${count} PostgreSQL URLs found: the check would prove little`);
    assert.deepEqual(problems, []);
  });
  test('the check catches a URL that verifies nothing or names another CA file', () => {
    catches(urlProblems('x', 'postgresql://u:p@h:5432/db?sslmode=require'), /lacks sslmode=verify-full/);
    catches(
      urlProblems('x', 'postgresql://u:p@h1:5432,h2:5432/db?sslmode=verify-full&sslrootcert=/ca.pem'),
      /lacks sslrootcert=\/etc\/leaderway\/postgresql-ca\/ca.crt/,
    );
    assert.deepEqual(postgresUrls('`postgresql://a@h/db?sslmode=verify-full&sslrootcert=/x`, and'), [
      'postgresql://a@h/db?sslmode=verify-full&sslrootcert=/x',
    ]);
  });
  test('k8s/README.md covers a managed service, Patroni and the roles', () => {
    const readme = readFileSync(path.join(ROOT, 'k8s', 'README.md'), 'utf8');
    for (const needle of [
      'production-postgresql',
      'synchronous_mode: true',
      'target_session_attrs=read-write',
      'leaderway postgres-grants',
      'Multi-AZ',
    ])
      assert.ok(readme.includes(needle), `k8s/README.md does not mention ${needle}`);
  });
});
