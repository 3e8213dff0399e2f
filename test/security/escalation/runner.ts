/**
 * Runs a seeded escalation property run against a real deployment (Redis, 3 nodes with standby
 * reads on — so two standbys serve reads themselves —, a gateway that trusts this process as its
 * load balancer, so X-Forwarded-For picks the client address): one request at a time, as the
 * generator plans them, through the gateway or straight to a node — the active or a standby
 * drawn by a second seeded generator; each recorded with its answer; then the whole history
 * checked. The checker expects the same answers wherever a request lands. A request straight to a
 * node comes from a loopback source address the generator chose (127.0.0.2, 127.0.0.9, ...) when
 * it chose one, so CIDR-bound tokens are accepted and refused on standbys too, from the address
 * the socket shows. Each request sent to a standby is followed by a scrape of its metrics
 * listener, so the history says which reads the standby served itself.
 * Requests are strictly sequential so a seed replays the same calls (expiry aside, which depends
 * on time: TTLs are short, and the checker allows slack).
 */

import { type Rng, rng } from '../../chaos/rng';
import { findActive } from '../../helpers/cluster';
import { type GatewayCluster, startGatewayCluster } from '../../helpers/gateway-cluster';
import { call, metricSum, Sources } from '../../helpers/http';
import type { Proc } from '../../helpers/procs';
import { checkEscalation, type EscalationResult } from './checker';
import { Generator, type Planned } from './generator';
import { type Call, is2xx, kvPayload, type Outcome, type Step } from './history';
import { Model } from './model';
import { WRAPPING_POLICY } from './state';

export interface RunOptions {
  seed: number;
  /** Steps in all, the generator's setup steps (as root) included. */
  steps: number;
  log?: (line: string) => void;
}

export interface RunReport extends EscalationResult {
  seed: number;
  history: Step[];
  ms: number;
  /**
   * leaderway_standby_reads_total summed over the standbys' metrics listeners after the run:
   * reads the standbys served themselves, and reads they forwarded to the active.
   */
  standbyReads: { served: number; forwarded: number };
}

/** The nodes in the run's cluster: two standbys, so "which standby" is a choice too. */
const NODES = 3;
const STANDBY_READS = 'leaderway_standby_reads_total';

/** Token, accessor and secret-ID values by label: they stay here, out of the history. */
class Values {
  readonly tokens = new Map<string, string>();
  readonly accessors = new Map<string, string>();
  readonly secrets = new Map<string, string>();
  private n = 0;
  private s = 0;

  token = (label: string) => this.tokens.get(label) ?? `hvs.${label}-made-up-0000000000000000`;
  accessor = (label: string) => this.accessors.get(label) ?? `${label}-no-such-accessor`;
  secret = (label: string) => this.secrets.get(label) ?? '00000000-0000-4000-8000-000000000000';

  issued(token: string, accessor: string): string {
    const label = `t${++this.n}`;
    this.tokens.set(label, token);
    this.accessors.set(label, accessor);
    return label;
  }
  secretIssued(value: string): string {
    const label = `s${++this.s}`;
    this.secrets.set(label, value);
    return label;
  }
}

/** Drops undefined fields, so a field the generator left out is not sent at all. */
function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const dur = (s: number | undefined) => (s === undefined ? undefined : `${s}s`);

/** The HTTP request for a call. */
function httpOf(c: Call, v: Values): { method: string; path: string; body?: unknown } {
  const role = (r: string, rest = '') => `auth/approle/role/${r}${rest}`;
  switch (c.kind) {
    case 'policy-write': {
      const path = Object.fromEntries(c.rules.map((r) => [r.path, { capabilities: r.caps }]));
      return { method: 'PUT', path: `sys/policy/${c.name}`, body: { policy: JSON.stringify({ path }) } };
    }
    case 'policy-delete':
      return { method: 'DELETE', path: `sys/policy/${c.name}` };
    case 'create': {
      const a = c.args;
      const body = compact({
        policies: a.policies,
        no_default_policy: a.noDefault,
        num_uses: a.numUses,
        ttl: dur(a.ttlS),
        explicit_max_ttl: dur(a.explicitMaxTtlS),
        period: dur(a.periodS),
        no_parent: a.noParent,
      });
      return { method: 'POST', path: `auth/token/${c.orphanPath ? 'create-orphan' : 'create'}`, body };
    }
    case 'role-write': {
      const durations = [
        'token_ttl',
        'token_max_ttl',
        'token_explicit_max_ttl',
        'token_period',
        'secret_id_ttl',
      ];
      const body = Object.fromEntries(
        Object.entries(c.fields).map(([k, x]) => [k, durations.includes(k) ? dur(x as number) : x]),
      );
      return { method: 'POST', path: role(c.role), body };
    }
    case 'role-id-read':
      return { method: 'GET', path: role(c.role, '/role-id') };
    case 'role-id-write':
      return { method: 'POST', path: role(c.role, '/role-id'), body: { role_id: c.roleId } };
    case 'secret-id': {
      const a = c.args;
      const body = compact({
        num_uses: a.numUses,
        ttl: dur(a.ttlS),
        cidr_list: a.cidrList,
        token_bound_cidrs: a.tokenBoundCidrs,
      });
      return { method: 'POST', path: role(c.role, '/secret-id'), body };
    }
    case 'login':
      return {
        method: 'POST',
        path: 'auth/approle/login',
        body: { role_id: c.roleId, secret_id: v.secret(c.secret) },
      };
    case 'revoke':
    case 'revoke-orphan':
    case 'lookup':
      return { method: 'POST', path: `auth/token/${c.kind}`, body: { token: v.token(c.token) } };
    case 'renew':
      return {
        method: 'POST',
        path: 'auth/token/renew',
        body: compact({ token: v.token(c.token), increment: dur(c.incrementS) }),
      };
    case 'revoke-accessor':
    case 'lookup-accessor':
      return { method: 'POST', path: `auth/token/${c.kind}`, body: { accessor: v.accessor(c.token) } };
    case 'renew-accessor': {
      const body = compact({ accessor: v.accessor(c.token), increment: dur(c.incrementS) });
      return { method: 'POST', path: 'auth/token/renew-accessor', body };
    }
    case 'revoke-self':
      return { method: 'POST', path: 'auth/token/revoke-self', body: {} };
    case 'renew-self':
      return {
        method: 'POST',
        path: 'auth/token/renew-self',
        body: compact({ increment: dur(c.incrementS) }),
      };
    case 'lookup-self':
      return { method: 'GET', path: 'auth/token/lookup-self' };
    case 'caps-self':
      return { method: 'POST', path: 'sys/capabilities-self', body: { paths: c.paths } };
    case 'kv-read':
      return { method: 'GET', path: c.path };
    case 'kv-write':
      return { method: 'POST', path: c.path, body: { data: kvPayload(c.value) } };
    case 'kv-list':
      return { method: 'LIST', path: 'secret/metadata/' };
    case 'auth-enable':
      return { method: 'POST', path: `sys/auth/${c.mount}`, body: { type: 'approle' } };
    case 'auth-read':
      return { method: 'GET', path: `sys/auth/${c.mount}` };
    case 'auth-disable':
      return { method: 'DELETE', path: `sys/auth/${c.mount}` };
    case 'accessors':
      return { method: 'LIST', path: 'auth/token/accessors' };
    case 'ui-mount':
      return { method: 'GET', path: `sys/internal/ui/mounts/${c.path}` };
    case 'unwrap':
    case 'rewrap':
      return {
        method: 'POST',
        path: `sys/wrapping/${c.kind}`,
        body: c.token ? { token: v.token(c.token) } : {},
      };
    case 'wrap-lookup':
      // Without a body, a GET of the caller's own token: a read, which a standby may serve.
      return c.token
        ? { method: 'POST', path: 'sys/wrapping/lookup', body: { token: v.token(c.token) } }
        : { method: 'GET', path: 'sys/wrapping/lookup' };
    case 'pause':
      throw new Error('a pause makes no request');
  }
}

type Json = Record<string, unknown>;
const obj = (x: unknown): Json => (x !== null && typeof x === 'object' ? (x as Json) : {});

/**
 * The wrapping token an answer hands out, if any — on any status, so a refused call that made
 * one anyway is seen — and whether the answer also carried content in the clear.
 */
function wrappingOf(body: unknown, v: Values): Outcome | undefined {
  const b = obj(body);
  const wrap = obj(b.wrap_info);
  if (typeof wrap.token !== 'string') return undefined;
  const label = v.issued(wrap.token, String(wrap.accessor ?? ''));
  const clear = Object.keys(obj(b.auth)).length > 0 || Object.keys(obj(b.data)).length > 0;
  return {
    wrapping: { label, policies: [WRAPPING_POLICY], leaseS: Number(wrap.ttl ?? 0), numUses: 1, orphan: true },
    ...(clear ? { clear } : {}),
  };
}

/** What the model needs from a 2xx answer; new tokens and secret IDs get labels here. */
function outcomeOf(c: Call, body: unknown, v: Values): Outcome | undefined {
  const b = obj(body);
  const auth = obj(b.auth);
  const data = obj(b.data);
  if (('wrapTtlS' in c && c.wrapTtlS !== undefined) || c.kind === 'rewrap') return wrappingOf(body, v);
  if (c.kind === 'unwrap') {
    // What the wrapped answer held: a token (auth/token/create), a secret ID or a KV read.
    if (typeof auth.client_token === 'string')
      return outcomeOf({ kind: 'login', roleId: '', secret: '' }, body, v);
    if (typeof data.secret_id === 'string')
      return outcomeOf({ kind: 'secret-id', role: '', args: {} }, body, v);
    if ('data' in data && 'metadata' in data) return { kv: JSON.stringify(data.data) };
    return {};
  }
  if (c.kind === 'wrap-lookup')
    return { lookup: { path: String(data.creation_path ?? ''), ttlS: Number(data.creation_ttl ?? 0) } };
  switch (c.kind) {
    case 'create':
    case 'login': {
      if (typeof auth.client_token !== 'string') return undefined;
      const label = v.issued(auth.client_token, String(auth.accessor ?? ''));
      const roleName = obj(auth.metadata).role_name;
      return {
        token: {
          label,
          policies: Array.isArray(auth.policies) ? auth.policies.map(String) : [],
          leaseS: Number(auth.lease_duration ?? 0),
          numUses: Number(auth.num_uses ?? 0),
          orphan: auth.orphan === true,
          ...(typeof roleName === 'string' ? { roleName } : {}),
        },
      };
    }
    case 'renew':
    case 'renew-self':
    case 'renew-accessor':
      return { leaseS: Number(auth.lease_duration ?? 0) };
    case 'role-id-read':
      return typeof data.role_id === 'string' ? { roleId: data.role_id } : undefined;
    case 'secret-id':
      if (typeof data.secret_id !== 'string') return undefined;
      return {
        secret: {
          label: v.secretIssued(data.secret_id),
          numUses: Number(data.secret_id_num_uses ?? 0),
          ttlS: Number(data.secret_id_ttl ?? 0),
        },
      };
    case 'caps-self':
      return { caps: Object.fromEntries(c.paths.map((p) => [p, (b[p] ?? data[p] ?? []) as string[]])) };
    default:
      return undefined;
  }
}

/** Where requests go: the gateway, the active node, the standbys (drawn by `pick`). */
interface Targets {
  gateway: string;
  active: Proc;
  standbys: Proc[];
  pick: Rng;
}

/** A standby's read counters, from its metrics listener. */
async function standbyCounts(p: Proc): Promise<{ served: number; forwarded: number }> {
  const text = (await call(p.metricsUrl, '/metrics')).text;
  return {
    served: metricSum(text, STANDBY_READS, 'outcome="served"'),
    forwarded: metricSum(text, STANDBY_READS, 'outcome="forwarded"'),
  };
}

/** A loopback address the generator chose as the client's, used as the source address. */
const loopback = (xff: string | undefined) => (xff && /^127\.\d+\.\d+\.\d+$/.test(xff) ? xff : undefined);

async function execute(n: number, p: Planned, t: Targets, src: Sources, v: Values): Promise<Step> {
  // The gateway trusts this process, so it takes X-Forwarded-For as the client; a node trusts no
  // one, so the address it sees is the socket's whatever the header says (sent anyway: it must
  // not count) — a loopback address the generator chose, else 127.0.0.1.
  const source = p.via === 'gateway' ? undefined : (loopback(p.xff) ?? '127.0.0.1');
  const addr = p.via === 'gateway' ? (p.xff ?? '127.0.0.1') : (source as string);
  const node = p.via === 'active' ? t.active : p.via === 'standby' ? t.pick.pick(t.standbys) : undefined;
  const base = { n, actor: p.actor, via: p.via, addr, ...(node ? { node: node.name } : {}), call: p.call };
  const c = p.call;
  if (c.kind === 'pause') {
    const start = Date.now();
    await new Promise((resolve) => setTimeout(resolve, c.ms));
    return { ...base, start, end: Date.now(), status: 0 };
  }
  const req = httpOf(c, v);
  const token = p.actor === null ? undefined : v.token(p.actor);
  const headers: Record<string, string> = {
    ...(token ? { 'x-vault-token': token } : {}),
    ...(p.xff ? { 'x-forwarded-for': p.xff } : {}),
    ...('wrapTtlS' in c && c.wrapTtlS !== undefined ? { 'x-vault-wrap-ttl': `${c.wrapTtlS}s` } : {}),
  };
  const before = p.via === 'standby' && node ? await standbyCounts(node) : undefined;
  const start = Date.now();
  try {
    const o = { method: req.method, body: req.body, headers };
    const path = `/v1/${req.path}`;
    const r = node
      ? await call(node.url, path, { ...o, dispatcher: src.agent(source as string) })
      : await call(t.gateway, path, o);
    const end = Date.now();
    let standby: Step['standby'];
    if (before && node) {
      // Requests are sequential, so what the counters moved by is this request's.
      const after = await standbyCounts(node);
      if (after.served > before.served) standby = 'served';
      else if (after.forwarded > before.forwarded) standby = 'forwarded';
    }
    const errors = obj(r.body).errors;
    const error = Array.isArray(errors) && errors.length ? String(errors[0]).slice(0, 120) : undefined;
    const out = is2xx(r.status) ? outcomeOf(c, r.body, v) : wrappingOf(r.body, v);
    return {
      ...base,
      start,
      end,
      status: r.status,
      ...(standby ? { standby } : {}),
      ...(error ? { error } : {}),
      ...(out ? { out } : {}),
    };
  } catch (err) {
    return { ...base, start, end: Date.now(), status: 0, error: (err as Error).message.slice(0, 120) };
  }
}

/** One seeded run on a fresh cluster; resolves the history and the checker's verdict. */
export async function runEscalation(o: RunOptions): Promise<RunReport> {
  const began = Date.now();
  const c: GatewayCluster = await startGatewayCluster({
    nodes: NODES,
    // The default, said out loud: this run is (also) about standbys serving reads.
    nodeEnv: { LEADERWAY_DISABLE_STANDBY_READS: 'false' },
    gatewayEnv: { LEADERWAY_TRUSTED_PROXIES: '127.0.0.1/32' },
  });
  const src = new Sources();
  try {
    const active = await c.active();
    const standbys = c.nodes.filter((n) => n !== active);
    if (standbys.length === 0) throw new Error('no standby in the escalation cluster');
    // A generator of its own, so which standby is drawn does not shift the generator's calls.
    const targets: Targets = { gateway: c.gw.url, active, standbys, pick: rng(o.seed ^ 0x5eed) };
    const values = new Values();
    values.tokens.set('root', c.token);
    const model = new Model();
    // Response wrapping's draws from a stream of their own (see Generator).
    const gen = new Generator(rng(o.seed), model, rng(o.seed ^ 0x77a9));
    const history: Step[] = [];
    o.log?.(
      `cluster up in ${Date.now() - began} ms (active ${active.name}, standbys ${standbys.map((s) => s.name).join(', ')}); ${o.steps} steps`,
    );
    for (let n = 1; n <= o.steps; n++) {
      const step = await execute(n, gen.next(Date.now()), targets, src, values);
      history.push(step);
      model.apply(step);
      gen.after(step);
    }
    // The run's premise: the node it called active stayed active (nothing here steps down).
    if ((await findActive(c.nodes)) !== active) throw new Error(`${active.name} is no longer active`);
    const standbyReads = { served: 0, forwarded: 0 };
    for (const s of standbys) {
      const n = await standbyCounts(s);
      standbyReads.served += n.served;
      standbyReads.forwarded += n.forwarded;
    }
    return { seed: o.seed, history, ms: Date.now() - began, standbyReads, ...checkEscalation(history) };
  } finally {
    await src.close();
    await c.stop();
  }
}
