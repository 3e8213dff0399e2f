/**
 * mergePatch against RFC 7386: every example of its Appendix A and the worked example of section
 * 3, plus the promise that neither argument is modified (KV v2 patches a stored version).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergePatch } from '../../node/kv/merge-patch';

/** RFC 7386 Appendix A: [original, patch, result]. */
// biome-ignore format: one RFC example a line, as in the RFC
const APPENDIX_A: [unknown, unknown, unknown][] = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [['a', 'b'], ['c', 'd'], ['c', 'd']],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe('mergePatch (RFC 7386)', () => {
  for (const [i, [target, patch, result]] of APPENDIX_A.entries()) {
    it(`Appendix A, example ${i + 1}: ${JSON.stringify(target)} + ${JSON.stringify(patch)}`, () => {
      assert.deepStrictEqual(mergePatch(target, patch), result);
    });
  }

  it('section 3: the worked example', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    assert.deepStrictEqual(mergePatch(target, patch), {
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('modifies neither the target nor the patch', () => {
    const target = { a: { b: 'c', d: 'e' }, f: ['g'] };
    const patch = { a: { b: null, x: { y: 'z' } }, f: null };
    const before = structuredClone({ target, patch });
    const out = mergePatch(target, patch) as Record<string, unknown>;
    assert.deepStrictEqual({ target, patch }, before);
    // The result shares no object with the patch, so later edits to it cannot reach the patch.
    (out.a as { x: { y: string } }).x.y = 'changed';
    assert.equal(patch.a.x.y, 'z');
  });

  it('keeps a member named __proto__ as data, and sets no prototype', () => {
    const patch = JSON.parse('{"__proto__":{"x":1},"a":1}');
    const out = mergePatch({}, patch) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal((out as { x?: number }).x, undefined);
    const again = mergePatch(out, JSON.parse('{"__proto__":{"y":2}}')) as Record<string, unknown>;
    assert.deepEqual(Object.getOwnPropertyDescriptor(again, '__proto__')?.value, { x: 1, y: 2 });
  });
});
