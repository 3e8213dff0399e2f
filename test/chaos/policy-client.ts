/**
 * A chaos client for policies (checked by policy-checker.ts): it flips one policy between
 * granting and denying read on one secret — one change at a time, each sent to a random gateway
 * or node — and reads that secret with a token holding only that policy: right after each
 * acknowledged change on every target at once (both gateways, every live node: standbys serve
 * these reads from their policy cache, validated against the config stamp), and on random
 * targets in between. The token's value stays in memory; the history records only outcomes.
 */
import { Agent, request } from 'undici';
import type { ChaosCluster } from './cluster';
import type { History } from './history';
import type { PolicyOp, PolicyState } from './policy-checker';
import type { Rng } from './rng';

const POLICY = 'chaos-policy';
const OP_TIMEOUT_MS = 30_000;

const rules = (path: string, s: PolicyState) =>
  `path "secret/data/${path}" {\n  capabilities = [${s === 'allow' ? '"read"' : '"deny"'}]\n}\n`;

/** Sets the policy up (granting), writes the secret, and runs the client until `stop()`. */
export async function startPolicyClient(
  cluster: ChaosCluster,
  history: History,
  r: Rng,
  path: string,
): Promise<{ stop(): Promise<void> }> {
  const agent = new Agent({ keepAliveTimeout: 2_000, connections: 8 });
  type Target = { url: string; label: string };
  const send = async (t: Target, token: string, method: string, p: string, body?: unknown) => {
    const once = async (url: string) => {
      try {
        const res = await request(url, {
          method: method as 'GET',
          dispatcher: agent,
          headers: { 'x-vault-token': token, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(OP_TIMEOUT_MS),
        });
        await res.body.dump();
        const location = res.headers.location;
        return { status: res.statusCode, location: typeof location === 'string' ? location : undefined };
      } catch (err) {
        const e = err as { code?: string; name?: string; cause?: { code?: string } };
        return { status: 0, error: e.cause?.code ?? e.code ?? e.name ?? 'error' };
      }
    };
    const first = await once(`${t.url}/v1/${p}`);
    return 'location' in first && first.status === 307 && first.location ? once(first.location) : first;
  };
  const gw1 = { url: cluster.gateways[0]!.url, label: 'gw1' };
  const setup = [
    await send(gw1, cluster.token, 'PUT', `sys/policy/${POLICY}`, { policy: rules(path, 'allow') }),
    await send(gw1, cluster.token, 'POST', `secret/data/${path}`, { data: { p: 'policy-chaos' } }),
  ];
  if (setup[0]?.status !== 204 || setup[1]?.status !== 200)
    throw new Error(`policy chaos setup failed: ${setup.map((s) => s.status).join(', ')}`);
  const created = await request(`${gw1.url}/v1/auth/token/create`, {
    method: 'POST',
    headers: { 'x-vault-token': cluster.token, 'content-type': 'application/json' },
    body: JSON.stringify({ policies: [POLICY], no_default_policy: true, ttl: '24h' }),
  });
  const auth = ((await created.body.json()) as { auth?: { client_token?: string } }).auth;
  if (created.statusCode !== 200 || !auth?.client_token)
    throw new Error(`policy chaos token failed: ${created.statusCode}`);
  const token = auth.client_token;

  const ops: PolicyOp[] = history.policyOps;
  const record = async (op: PolicyOp, call: () => ReturnType<typeof send>) => {
    const a = await call();
    op.end = Date.now();
    op.status = a.status;
    const definite = (a.status >= 400 && a.status < 500) || ('error' in a && a.error === 'ECONNREFUSED');
    if (op.kind === 'set') op.outcome = a.status === 204 ? 'ok' : definite ? 'fail' : 'info';
    else {
      op.outcome = a.status === 200 || a.status === 403 ? 'ok' : definite ? 'fail' : 'info';
      if (a.status === 200) op.state = 'allow';
      else if (a.status === 403) op.state = 'deny';
    }
    ops.push(op);
    return op;
  };
  const read = (t: Target) => {
    const op: PolicyOp = {
      id: history.id(),
      kind: 'read',
      via: t.label,
      start: Date.now(),
      end: 0,
      outcome: 'info',
      status: 0,
    };
    return record(op, () => send(t, token, 'GET', `secret/data/${path}`));
  };

  let state: PolicyState = 'allow';
  let pending: PolicyState | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      if (pending !== undefined || r.chance(0.2)) {
        const next: PolicyState = pending ?? (state === 'allow' ? 'deny' : 'allow');
        const t = r.pick(cluster.targets());
        const op: PolicyOp = {
          id: history.id(),
          kind: 'set',
          state: next,
          via: t.label,
          start: Date.now(),
          end: 0,
          outcome: 'info',
          status: 0,
        };
        await record(op, () =>
          send(t, cluster.token, 'PUT', `sys/policy/${POLICY}`, { policy: rules(path, next) }),
        );
        // An indeterminate change is retried (the same state) until one is acknowledged.
        pending = op.outcome === 'info' ? next : undefined;
        if (op.outcome === 'ok') {
          state = next;
          await Promise.all(cluster.targets().map(read));
        }
      } else await read(r.pick(cluster.targets()));
      await new Promise((res) => setTimeout(res, r.int(20, 80)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await agent.close();
    },
  };
}
