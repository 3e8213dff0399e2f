/**
 * Helpers for the tests that break a rendered overlay on purpose: a rule that cannot fail is a
 * defect, so each rule is shown to catch a broken copy.
 */
import assert from 'node:assert/strict';
import type { K8sObject } from './render';

/** A deep copy of `objects` changed by `mutate`. */
export function broken(objects: K8sObject[], mutate: (objs: K8sObject[]) => void): K8sObject[] {
  const copy = structuredClone(objects);
  mutate(copy);
  return copy;
}

/** Asserts that `problems` has an entry matching `pattern`. */
export function catches(problems: string[], pattern: RegExp): void {
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got:\n${problems.join('\n') || '(none)'}`,
  );
}
