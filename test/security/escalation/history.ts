/**
 * The history of an escalation run: every request in order, who sent it, which way, from which
 * client address, and what came back — plain data, so the checker can be fed hand-made
 * histories. Tokens and secret IDs appear only as labels (`t7`, `s3`, `root`): their values stay
 * in the runner and never enter the history or the report.
 */
import type { Rule } from './acl';

/** Which way a request went in: through the gateway, or straight to a standby or the active. */
export type Via = 'gateway' | 'standby' | 'active';

/** auth/token/create[-orphan] fields (durations in seconds). */
export interface TokenArgs {
  policies?: string[];
  noDefault?: boolean;
  numUses?: number;
  ttlS?: number;
  explicitMaxTtlS?: number;
  periodS?: number;
  noParent?: boolean;
}

/** AppRole role fields, as the API names them (durations in seconds). */
export interface RoleFields {
  token_policies?: string[];
  token_no_default_policy?: boolean;
  token_num_uses?: number;
  token_ttl?: number;
  token_max_ttl?: number;
  token_explicit_max_ttl?: number;
  token_period?: number;
  token_bound_cidrs?: string[];
  secret_id_num_uses?: number;
  secret_id_ttl?: number;
  secret_id_bound_cidrs?: string[];
}

/** Secret-ID generation fields (durations in seconds). */
export interface SecretArgs {
  numUses?: number;
  ttlS?: number;
  cidrList?: string[];
  tokenBoundCidrs?: string[];
}

/** One API call. `token` fields name a token by label; `*-accessor` calls use that token's accessor. */
export type Call =
  | { kind: 'policy-write'; name: string; rules: Rule[] }
  | { kind: 'policy-delete'; name: string }
  /** `wrapTtlS`: asked wrapped (X-Vault-Wrap-TTL); the answer is a wrapping token. */
  | { kind: 'create'; orphanPath: boolean; args: TokenArgs; wrapTtlS?: number }
  | { kind: 'role-write'; role: string; fields: RoleFields }
  | { kind: 'role-id-read'; role: string }
  | { kind: 'role-id-write'; role: string; roleId: string }
  | { kind: 'secret-id'; role: string; args: SecretArgs; wrapTtlS?: number }
  /**
   * sys/wrapping/unwrap, rewrap or lookup (`wrap-lookup`) of `token` (in the body), or of the
   * caller's own token when absent (a lookup without a body is a GET, which a standby may serve).
   */
  | { kind: 'unwrap' | 'rewrap' | 'wrap-lookup'; token?: string }
  | { kind: 'login'; roleId: string; secret: string }
  | { kind: 'revoke' | 'revoke-orphan' | 'lookup'; token: string }
  | { kind: 'renew'; token: string; incrementS?: number }
  | { kind: 'revoke-accessor' | 'lookup-accessor'; token: string }
  | { kind: 'renew-accessor'; token: string; incrementS?: number }
  | { kind: 'revoke-self' | 'lookup-self' }
  | { kind: 'renew-self'; incrementS?: number }
  | { kind: 'caps-self'; paths: string[] }
  | { kind: 'kv-read'; path: string; wrapTtlS?: number }
  /** `value`: what the write stores (`{ v: value }`), so a wrapped read's unwrap can be matched. */
  | { kind: 'kv-write'; path: string; value?: string }
  | { kind: 'kv-list' }
  | { kind: 'auth-enable' | 'auth-read' | 'auth-disable'; mount: string }
  | { kind: 'accessors' }
  | { kind: 'ui-mount'; path: string }
  /** No request: lets time pass so short TTLs run out within the run. */
  | { kind: 'pause'; ms: number };

/** A token a response issued. */
export interface IssuedToken {
  label: string;
  policies: string[];
  leaseS: number;
  numUses: number;
  orphan: boolean;
  /** AppRole logins: the role the server says it logged in to. */
  roleName?: string;
}

/** What the model needs from a response. */
export interface Outcome {
  /** A token issued (for an unwrap: the one the wrapped answer held). */
  token?: IssuedToken;
  /** The wrapping token a wrapped answer (or a rewrap) handed out — recorded on any status. */
  wrapping?: IssuedToken;
  /** A wrapped answer that also carried content in the clear (`auth` or `data`). */
  clear?: boolean;
  /** What an unwrapped KV read answered: its `data.data`, as JSON. */
  kv?: string;
  /** What sys/wrapping/lookup told: the creation path and TTL (seconds) of the wrapping token. */
  lookup?: { path: string; ttlS: number };
  /** A renewal's lease, seconds. */
  leaseS?: number;
  roleId?: string;
  secret?: { label: string; numUses: number; ttlS: number };
  /** sys/capabilities-self: path → capabilities. */
  caps?: Record<string, string[]>;
}

/** One recorded request. Times are ms since the epoch, taken by the client. */
export interface Step {
  n: number;
  /** The token label sent (null: none, as for a login or a pause). */
  actor: string | null;
  via: Via;
  /** The client address the server saw (the X-Forwarded-For the gateway trusts, else the socket's). */
  addr: string;
  /** The node a request straight to a node went to (its name), for reports. */
  node?: string;
  /**
   * A request straight to a standby that it counted as a read (leaderway_standby_reads_total):
   * `served` from its own storage, or `forwarded` to the active. Absent: not a read a standby saw.
   */
  standby?: 'served' | 'forwarded';
  start: number;
  end: number;
  call: Call;
  /** HTTP status (0: no request, or no response). */
  status: number;
  error?: string;
  out?: Outcome;
}

/** The KV data a write stores (`value` absent: an older history's fixed payload). */
export const kvPayload = (value: string | undefined) => ({ v: value ?? 'written' });

/** A 2xx answer: the request was served. */
export const is2xx = (status: number) => status >= 200 && status < 300;

/** A one-line description of a step for reports. */
export function describeStep(s: Step): string {
  const { kind, ...rest } = s.call;
  const args = JSON.stringify(rest);
  const via = `${s.via}${s.node ? ` ${s.node}` : ''}${s.standby ? ` (${s.standby})` : ''}`;
  return `#${s.n} ${kind}${args === '{}' ? '' : ` ${args}`} as ${s.actor ?? '-'} via ${via} from ${s.addr} → ${s.status}${s.error ? ` (${s.error})` : ''}`;
}
