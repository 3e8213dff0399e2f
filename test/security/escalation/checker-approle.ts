/**
 * The checker's AppRole rules: a login carries exactly its role's policies and limits, never
 * root, from a live secret ID of that role, inside its CIDRs (rules 1, 3, 6, 7, 8, 9); a secret
 * ID only narrows its role (7).
 */
import { cidrSubset, inCidrs } from './acl';
import { checkLease } from './checker-tokens';
import type { Step } from './history';
import type { Model } from './model';
import type { Flag } from './rules';
import { approleMaxS, ROUND_MS } from './state';

/** Rules 1, 3, 6, 7, 8 and 9 on a 2xx login. */
export function checkLogin(m: Model, s: Step, flag: Flag): void {
  const t = s.out?.token;
  if (s.call.kind !== 'login' || !t) return;
  if (t.policies.includes('root')) flag('root', `AppRole login issued root token ${t.label}`);
  const role = m.roleOwning(s.call.roleId);
  if (!role) {
    flag('role-id', `login with role_id ${s.call.roleId}, which no role owns, succeeded`);
    return;
  }
  if (t.roleName !== undefined && t.roleName !== role.name)
    flag('role-id', `login with ${role.name}'s role_id logged in to role ${t.roleName}`);
  const f = role.fields;
  const want = [...new Set([...f.token_policies, ...(f.token_no_default_policy ? [] : ['default'])])].sort();
  if ([...t.policies].sort().join(',') !== want.join(','))
    flag(
      'approle',
      `${t.label} from ${role.name} got ${t.policies.join(',')}, the role says ${want.join(',')}`,
    );
  if (f.token_num_uses > 0 && t.numUses !== f.token_num_uses)
    flag('approle', `${t.label} has num_uses ${t.numUses}, its role ${role.name} says ${f.token_num_uses}`);
  const maxS = approleMaxS(f);
  if (t.leaseS > maxS + ROUND_MS / 1000)
    flag('lifetime', `${t.label} got ${t.leaseS}s, its role allows ${maxS}s`);
  checkLease(t.label, t.policies, t.leaseS, flag);
  const secret = m.secrets.get(s.call.secret);
  const dead = m.secretDead(s.call.secret, s.start);
  if (!secret || secret.role !== role.name)
    flag('approle', `secret ${s.call.secret} is not ${role.name}'s, yet logged in`);
  else if (dead) flag('dead', `secret ${s.call.secret} (${dead}) logged in`);
  if (secret?.cidrList.length && !inCidrs(secret.cidrList, s.addr))
    flag('bounds', `secret ${secret.label} bound to ${secret.cidrList.join(',')} logged in from ${s.addr}`);
  if (f.secret_id_bound_cidrs.length && !inCidrs(f.secret_id_bound_cidrs, s.addr))
    flag(
      'bounds',
      `role ${role.name} bound to ${f.secret_id_bound_cidrs.join(',')} logged in from ${s.addr}`,
    );
}

/** Rule 7 on a 2xx secret-ID generation: within the role's bounds. */
export function checkSecretId(m: Model, s: Step, flag: Flag): void {
  if (s.call.kind !== 'secret-id') return;
  const role = m.roles.get(s.call.role);
  const out = s.out?.secret;
  if (!role || !out) return;
  const f = role.fields;
  const a = s.call.args;
  if (f.secret_id_bound_cidrs.length && !cidrSubset(a.cidrList ?? [], f.secret_id_bound_cidrs))
    flag(
      'bounds',
      `cidr_list ${a.cidrList?.join(',')} is not within role ${role.name}'s ${f.secret_id_bound_cidrs.join(',')}`,
    );
  if (f.token_bound_cidrs.length && !cidrSubset(a.tokenBoundCidrs ?? [], f.token_bound_cidrs))
    flag(
      'bounds',
      `token_bound_cidrs ${a.tokenBoundCidrs?.join(',')} not within role ${role.name}'s ${f.token_bound_cidrs.join(',')}`,
    );
  if (f.secret_id_num_uses > 0 && (out.numUses === 0 || out.numUses > f.secret_id_num_uses))
    flag(
      'bounds',
      `secret ${out.label} has num_uses ${out.numUses}, role ${role.name} allows ${f.secret_id_num_uses}`,
    );
  if (f.secret_id_ttl > 0 && (out.ttlS === 0 || out.ttlS > f.secret_id_ttl))
    flag('bounds', `secret ${out.label} has ttl ${out.ttlS}s, role ${role.name} allows ${f.secret_id_ttl}s`);
}
