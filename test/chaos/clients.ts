/**
 * Chaos clients: each loops over KV operations on a shared set of keys — reads, check-and-set
 * writes (read the version, then write with `options.cas`), blind writes and deletes — through
 * one gateway, directly to a node that was last seen as a standby (which serves reads itself with
 * standby reads on, and forwards writes to the active, or answers 307 to the gateway; the client
 * then follows one redirect, as Vault's client does), or to any of them, drawn per operation
 * (both gateways and every live node). Every operation is recorded with its start, end,
 * classified outcome and the target it was sent to (`via`), so a violation names it.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import type { ChaosCluster } from './cluster';
import type { History, Op, OpKind, Outcome, WriteData } from './history';
import type { Rng } from './rng';

/** An operation that has not answered after this is abandoned and recorded as indeterminate. */
const OP_TIMEOUT_MS = 30_000;
/** Pause between a client's operations, so seven clients leave CPU for the cluster (2 cores). */
const THINK_MIN_MS = 5;
const THINK_MAX_MS = 40;
/** Marks every written value; the security scan looks for it in Redis, logs and traces. */
export const SECRET_MARKER = 'lwsecret-';

/** 503 messages that the API defines as "not served" (definitely nothing happened). */
const DEFINITE_503 = new Set([
  'local node not active but active cluster node not found',
  'Vault is sealed',
  'no active Vault instance found',
]);

export interface ClientSpec {
  name: string;
  /** `gw1`, `gw2`, `standby` (a node last seen as a standby) or `any` (a gateway or node, per op). */
  via: string;
}

interface Answer {
  status: number;
  body: unknown;
  error?: string;
  redirected?: boolean;
}

/** Runs the clients until `stop()`; resolves when every loop has finished its last op. */
export function startClients(
  cluster: ChaosCluster,
  history: History,
  specs: ClientSpec[],
  keys: () => string[],
  rand: Rng,
): { stop(): Promise<void> } {
  let running = true;
  const loops = specs.map((spec) => runClient(cluster, history, spec, keys, rand.fork(), () => running));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function runClient(
  cluster: ChaosCluster,
  history: History,
  spec: ClientSpec,
  keys: () => string[],
  r: Rng,
  running: () => boolean,
): Promise<void> {
  const agent = new Agent({ keepAliveTimeout: 2_000, connections: 4 });
  const ctx: Ctx = { cluster, history, spec, agent, r };
  try {
    while (running()) {
      const key = r.pick(keys());
      const dice = r.next();
      if (dice < 0.4) await read(ctx, key);
      else if (dice < 0.8) {
        const seen = await read(ctx, key);
        if (seen.outcome === 'ok' && running()) await write(ctx, key, 'cas', seen.version ?? 0);
      } else if (dice < 0.9) await write(ctx, key, 'write');
      else await del(ctx, key);
      await sleep(r.int(THINK_MIN_MS, THINK_MAX_MS));
    }
  } finally {
    await agent.close();
  }
}

interface Ctx {
  cluster: ChaosCluster;
  history: History;
  spec: ClientSpec;
  agent: Agent;
  r: Rng;
}

function target(ctx: Ctx): { base: string; via: string } {
  if (ctx.spec.via === 'standby') {
    const s = ctx.cluster.standbys();
    if (s.length > 0) {
      const n = ctx.r.pick(s);
      return { base: n.url, via: `${ctx.cluster.roleOf(n.name)}:${n.name}` };
    }
    return { base: ctx.cluster.gateways[0]!.url, via: 'gw1' };
  }
  if (ctx.spec.via === 'any') {
    const t = ctx.r.pick(ctx.cluster.targets());
    return { base: t.url, via: t.label };
  }
  const g = ctx.cluster.gateways.find((x) => x.name === ctx.spec.via) ?? ctx.cluster.gateways[0]!;
  return { base: g.url, via: g.name };
}

async function send(ctx: Ctx, base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const once = async (url: string): Promise<Answer & { location?: string }> => {
    try {
      const res = await request(url, {
        method: method as 'GET',
        dispatcher: ctx.agent,
        headers: { 'x-vault-token': ctx.cluster.token, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(OP_TIMEOUT_MS),
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // Not JSON: keep the text.
      }
      const location = res.headers.location;
      return {
        status: res.statusCode,
        body: parsed,
        location: typeof location === 'string' ? location : undefined,
      };
    } catch (err) {
      const e = err as { code?: string; name?: string; cause?: { code?: string } };
      return { status: 0, body: null, error: e.cause?.code ?? e.code ?? e.name ?? 'error' };
    }
  };
  const first = await once(base + path);
  if (first.status === 307 && first.location) {
    const second = await once(first.location);
    return { ...second, redirected: true };
  }
  return first;
}

/** Classifies a non-ok answer: definite failure or indeterminate. */
function classify(a: Answer): Outcome {
  if (a.status === 0) return a.error === 'ECONNREFUSED' ? 'fail' : 'info';
  if (a.status >= 400 && a.status < 500) return 'fail';
  if (a.status === 503) {
    const msg = firstError(a.body);
    if (msg !== undefined && DEFINITE_503.has(msg)) return 'fail';
  }
  return 'info';
}

function firstError(body: unknown): string | undefined {
  const errors = (body as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : undefined;
}

function describe(a: Answer): string {
  return a.status === 0 ? String(a.error) : `${a.status} ${firstError(a.body) ?? ''}`.trim();
}

async function read(ctx: Ctx, key: string): Promise<Op> {
  const { base, via } = target(ctx);
  const op: Op = base0(ctx, via, 'read', key);
  const a = await send(ctx, base, 'GET', `/v1/secret/data/${key}`);
  op.end = Date.now();
  op.status = a.status;
  op.redirected = a.redirected;
  const d = (a.body as { data?: { data?: unknown; metadata?: Record<string, unknown> } } | null)?.data;
  if (a.status === 200 && d?.metadata) {
    op.outcome = 'ok';
    op.version = Number(d.metadata.version);
    op.readData = (d.data as WriteData) ?? null;
    op.readDeleted = false;
  } else if (a.status === 404 && d?.metadata) {
    op.outcome = 'ok';
    op.version = Number(d.metadata.version);
    op.readData = null;
    op.readDeleted = d.metadata.deletion_time !== '' || d.metadata.destroyed === true;
  } else if (a.status === 404 && firstError(a.body) === undefined) {
    op.outcome = 'ok';
    op.version = 0;
    op.readData = null;
  } else {
    op.outcome = classify(a);
    op.error = describe(a);
  }
  ctx.history.add(op);
  return op;
}

async function write(ctx: Ctx, key: string, kind: 'write' | 'cas', cas?: number): Promise<Op> {
  const { base, via } = target(ctx);
  const op = base0(ctx, via, kind, key);
  op.data = { c: ctx.spec.name, o: op.id, s: SECRET_MARKER + randomBytes(8).toString('hex') };
  if (kind === 'cas') op.cas = cas;
  const body = kind === 'cas' ? { data: op.data, options: { cas } } : { data: op.data };
  const a = await send(ctx, base, 'POST', `/v1/secret/data/${key}`, body);
  op.end = Date.now();
  op.status = a.status;
  op.redirected = a.redirected;
  const v = (a.body as { data?: { version?: unknown } } | null)?.data?.version;
  if (a.status === 200 && typeof v === 'number') {
    op.outcome = 'ok';
    op.version = v;
  } else {
    op.outcome = classify(a);
    op.error = describe(a);
  }
  ctx.history.add(op);
  return op;
}

async function del(ctx: Ctx, key: string): Promise<Op> {
  const { base, via } = target(ctx);
  const op = base0(ctx, via, 'delete', key);
  const a = await send(ctx, base, 'DELETE', `/v1/secret/data/${key}`);
  op.end = Date.now();
  op.status = a.status;
  op.redirected = a.redirected;
  if (a.status === 204) op.outcome = 'ok';
  else {
    op.outcome = classify(a);
    op.error = describe(a);
  }
  ctx.history.add(op);
  return op;
}

function base0(ctx: Ctx, via: string, kind: OpKind, key: string): Op {
  return {
    id: ctx.history.id(),
    client: ctx.spec.name,
    via,
    kind,
    key,
    start: Date.now(),
    end: 0,
    outcome: 'info',
    status: 0,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
