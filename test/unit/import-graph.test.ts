/**
 * The import graph of leaderway's own code has no circles: a cycle means two modules are one
 * concern split in two, or a contract sits in the wrong file (issue 26). Checked with
 * dependency-cruiser, counting type-only imports too (they tie the files together just the same).
 * dependency-cruiser rather than madge: a third of the install (≈7 MB, 43 packages, against ≈28 MB
 * and 120) and a third of the run time here (≈1.3 s against ≈4 s), with an API to call in-process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const ROOT = path.resolve(__dirname, '..', '..');

/** The project's own code: both processes, the CLI, the benchmarks, the scripts and the tests. */
const SCOPE = ['node', 'gateway', 'shared', 'cli', 'bench', 'scripts', 'test'];

/**
 * Cycles known and being removed, each as the files on the circle. An entry whose cycle is gone
 * is reported (a test diagnostic) so it gets deleted; it does not fail the run.
 */
const ALLOWED_CYCLES: readonly (readonly string[])[] = [];

/** Every import cycle among `files` (relative to `baseDir`), each as the files on it in order. */
async function importCycles(files: string[], baseDir: string): Promise<string[][]> {
  // dependency-cruiser is an ES module: import() it (tsx keeps import() as is).
  const { cruise } = await import('dependency-cruiser');
  const result = await cruise(files, {
    baseDir,
    validate: true,
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    ruleSet: { forbidden: [{ name: 'no-circular', severity: 'error', from: {}, to: { circular: true } }] },
  });
  if (typeof result.output === 'string') throw new Error('dependency-cruiser returned no graph');
  // A cycle is reported once for each of its modules: keep one.
  const seen = new Map<string, string[]>();
  for (const v of result.output.summary.violations) {
    if (v.rule.name !== 'no-circular' || !v.cycle) continue;
    const circle = [v.from, ...v.cycle.map((c) => c.name)];
    seen.set(key(circle), circle);
  }
  return [...seen.values()];
}

/** The set of files on a cycle, as one string. */
function key(files: readonly string[]): string {
  return [...new Set(files)].sort().join(' ');
}

describe('the import graph', () => {
  it('has no cycles among the project’s own modules', async (t) => {
    const cycles = await importCycles(SCOPE, ROOT);
    const allowed = new Set(ALLOWED_CYCLES.map(key));
    const found = new Set(cycles.map(key));
    const unexpected = cycles.filter((c) => !allowed.has(key(c))).map((c) => c.join(' → '));
    assert.deepEqual(unexpected, [], 'import cycles: move the shared part into a module both import');
    for (const k of [...allowed].filter((k) => !found.has(k)))
      t.diagnostic(`allowed cycle no longer exists, delete it from ALLOWED_CYCLES: ${k}`);
  });

  it('the check sees a cycle, type-only imports included', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lw-import-graph-'));
    try {
      writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b';\nexport type A = { b?: B };\n");
      writeFileSync(
        path.join(dir, 'b.ts'),
        "import { c } from './c';\nexport type B = number;\nexport const d = c;\n",
      );
      writeFileSync(path.join(dir, 'c.ts'), "import type { A } from './a';\nexport const c: A = {};\n");
      const cycles = await importCycles(['.'], dir);
      assert.deepEqual(cycles.map(key), ['a.ts b.ts c.ts']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
