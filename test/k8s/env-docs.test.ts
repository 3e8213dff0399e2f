/**
 * docs/environment.md is generated from the convict schemas; this fails when a schema changed
 * and the reference was not regenerated.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { ENV_DOC_PATH, renderEnvironmentDoc } from '../../scripts/gen-env-docs';
import { devSchema } from '../../shared/config/dev-schema';
import { gatewaySchema } from '../../shared/config/gateway-schema';
import { schemaEntries } from '../../shared/config/load';
import { nodeSchema } from '../../shared/config/node-schema';

test('docs/environment.md is up to date with the schemas', () => {
  const committed = readFileSync(ENV_DOC_PATH, 'utf8');
  assert.ok(
    committed === renderEnvironmentDoc(),
    'docs/environment.md is stale: run `node --import tsx scripts/gen-env-docs.ts` and commit the result',
  );
});

test('the reference names every variable of every schema, aliases included', () => {
  const doc = renderEnvironmentDoc();
  for (const schema of [nodeSchema, gatewaySchema, devSchema]) {
    for (const { key, entry } of schemaEntries(schema)) {
      for (const name of [entry.env, ...(entry.envAliases ?? [])]) {
        assert.ok(doc.includes(`\`${name}\``), `${name} (${key}) is missing`);
      }
    }
  }
});

test('the reference does not depend on the machine that generated it', () => {
  const doc = renderEnvironmentDoc();
  assert.ok(doc.includes('| the host name |'), 'LEADERWAY_NODE_ID default must read "the host name"');
  assert.ok(!doc.includes(`\`${hostname()}\``), 'the host name leaked into the reference');
});
