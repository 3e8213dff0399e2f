/** The escalation checker's rule ids, violations, and how a check reports one (checker.ts). */

/** The rule a violation breaks. */
export type RuleId =
  | 'root'
  | 'subset'
  | 'approle'
  | 'restricted-use'
  | 'sudo-create'
  | 'lifetime'
  | 'bounds'
  | 'role-id'
  | 'dead'
  | 'sudo-path'
  | 'oracle'
  | 'capability'
  | 'wrapping';

/** One broken rule at one step. */
export interface Violation {
  step: number;
  rule: RuleId;
  reason: string;
  /** The step, described. */
  at: string;
}

/** Records a violation of `rule` at the current step. */
export type Flag = (rule: RuleId, reason: string) => void;
