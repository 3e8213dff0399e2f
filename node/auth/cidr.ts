/**
 * CIDR bindings (`token_bound_cidrs`, `secret_id_bound_cidrs`, `cidr_list`): lists of CIDR blocks
 * or single addresses, checked against the client address as the node learned it (the socket's
 * peer, or the address a gateway or standby determined and passed over the cluster channel).
 */
import { BlockList, isIP } from 'node:net';
import { LwError } from '../../shared/errors';

/** Parses a list (array or comma-separated string) of CIDRs; throws 400 naming `field`. */
export function parseCidrList(v: unknown, field: string): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : null;
  if (!items) throw new LwError('LW_ERR_BAD_REQUEST', `invalid ${field}: a list of CIDR blocks`);
  return items.map((raw) => {
    const item = String(raw).trim();
    const [addr, bits, extra] = item.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const n = bits === undefined ? max : Number(bits);
    if (
      family === 0 ||
      extra !== undefined ||
      !Number.isInteger(n) ||
      n < 0 ||
      n > max ||
      (bits ?? '0') === ''
    ) {
      throw new LwError('LW_ERR_BAD_REQUEST', `invalid ${field}: "${item}" is not a CIDR block`);
    }
    return `${addr}/${n}`;
  });
}

/** Whether `addr` falls inside any of `cidrs` (as stored by parseCidrList). */
export function cidrsContain(cidrs: readonly string[], addr: string): boolean {
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  const family = isIP(a);
  if (family === 0) return false;
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split('/');
    const f = isIP(net ?? '');
    list.addSubnet(net as string, Number(bits), f === 6 ? 'ipv6' : 'ipv4');
  }
  return list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Whether every block of `inner` lies inside some block of `outer` (a narrower or equal
 * binding). An empty `outer` binds nothing, so anything lies inside it; an empty `inner` binds
 * nothing, so it does not lie inside a non-empty `outer`.
 */
export function cidrsWithin(inner: readonly string[], outer: readonly string[]): boolean {
  if (outer.length === 0) return true;
  if (inner.length === 0) return false;
  return inner.every((block) => {
    const [net, bits] = block.split('/');
    const family = isIP(net ?? '');
    return outer.some((o) => {
      const [onet, obits] = o.split('/');
      // Same family, no wider than the outer block, and its network address inside it.
      return isIP(onet ?? '') === family && Number(obits) <= Number(bits) && cidrsContain([o], net as string);
    });
  });
}
