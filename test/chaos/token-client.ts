/**
 * A chaos client for tokens: through both gateways and directly to every node (standbys serve
 * lookup-self themselves with standby reads on; the rest they forward), it creates short-lived
 * tokens (some as children of others), uses them (lookup-self), renews and revokes them — and
 * keeps using tokens it revoked or that should have expired, so the token checker can catch one
 * accepted too late. Right after each acknowledged create and revoke it uses that token on every
 * target at once (both gateways, every live node): the moment a stale node would answer as if the
 * create or the revocation had not happened. Token values stay in this client's memory; the
 * history records only labels and targets.
 */
import { Agent, request } from 'undici';
import type { ChaosCluster } from './cluster';
import type { History } from './history';
import type { Rng } from './rng';
import type { TokenOp } from './token-checker';

const POLICY = 'chaos-tokens';
/** Tokens may create children and use the default policy's self endpoints. */
const POLICY_TEXT = 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n';
/** How many live tokens the client keeps; dead ones are kept (and used) too. */
const POOL = 10;
const RENEW_INCREMENT_S = 4;
const OP_TIMEOUT_MS = 30_000;

interface Held {
  label: string;
  token: string;
}

/** Runs the token client until `stop()`. */
export async function startTokenClient(
  cluster: ChaosCluster,
  history: History,
  r: Rng,
): Promise<{ stop(): Promise<void> }> {
  const agent = new Agent({ keepAliveTimeout: 2_000, connections: 8 });
  type Target = { url: string; label: string };
  /** A gateway half the time, else any live node (mostly standbys: two of three). */
  const pickTarget = (): Target => {
    const all = cluster.targets();
    const gws = all.filter((t) => !t.label.includes(':'));
    const nodes = all.filter((t) => t.label.includes(':'));
    return r.pick(nodes.length > 0 && r.chance(0.5) ? nodes : gws);
  };
  const once = async (url: string, token: string, method: string, body?: unknown) => {
    try {
      const res = await request(url, {
        method: method as 'GET',
        dispatcher: agent,
        headers: { 'x-vault-token': token, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(OP_TIMEOUT_MS),
      });
      const text = await res.body.text();
      let parsed: Record<string, unknown> | null = null;
      try {
        parsed = text ? (JSON.parse(text) as Record<string, unknown>) : null;
      } catch {
        // Not JSON (e.g. a 307's body): no body.
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
  /** One request to `to` (a random target by default); a standby's 307 is followed once. */
  const send = async (token: string, method: string, path: string, body?: unknown, to?: Target) => {
    const t = to ?? pickTarget();
    const first = await once(`${t.url}/v1/${path}`, token, method, body);
    const a =
      first.status === 307 && first.location ? await once(first.location, token, method, body) : first;
    return { ...a, via: t.label };
  };
  const setup = await send(
    cluster.token,
    'PUT',
    `sys/policy/${POLICY}`,
    { policy: POLICY_TEXT },
    {
      url: cluster.gateways[0]!.url,
      label: 'gw1',
    },
  );
  if (setup.status !== 204) throw new Error(`token chaos setup failed: ${setup.status}`);

  const live: Held[] = [];
  const dead: Held[] = [];
  let next = 1;
  const record = async (
    kind: TokenOp['kind'],
    held: Held,
    call: () => ReturnType<typeof send>,
    extra: Partial<TokenOp> = {},
  ) => {
    const op: TokenOp = {
      id: history.id(),
      client: 'tokens',
      via: '',
      kind,
      token: held.label,
      start: Date.now(),
      end: 0,
      outcome: 'info',
      status: 0,
      ...extra,
    };
    const a = await call();
    op.end = Date.now();
    op.via = a.via;
    op.status = a.status;
    const ok = a.status === 200 || a.status === 204;
    // 4xx: refused. 0 with ECONNREFUSED, or a 503 the API defines as unserved: not done either.
    const definite = (a.status >= 400 && a.status < 500) || ('error' in a && a.error === 'ECONNREFUSED');
    op.outcome = ok ? 'ok' : definite ? 'fail' : 'info';
    if (!ok) op.error = 'error' in a && a.error ? String(a.error) : String(a.status);
    history.tokenOps.push(op);
    return { op, body: a.body };
  };

  /** Uses `h` on every target at once: both gateways and every live node. */
  const everywhere = async (h: Held) => {
    await Promise.all(
      cluster
        .targets()
        .map((t) => record('use', h, () => send(h.token, 'GET', 'auth/token/lookup-self', undefined, t))),
    );
  };

  let running = true;
  const loop = (async () => {
    while (running) {
      const dice = r.next();
      if (dice < 0.25 && live.length < POOL) {
        const parent = live.length > 0 && r.chance(0.35) ? r.pick(live) : null;
        const held: Held = { label: `t${next++}`, token: '' };
        const ttl = `${r.int(2, 6)}s`;
        const { op, body } = await record(
          'create',
          held,
          () =>
            send(parent?.token ?? cluster.token, 'POST', 'auth/token/create', { policies: [POLICY], ttl }),
          parent ? { parent: parent.label } : {},
        );
        const auth = (body as { auth?: { client_token: string; lease_duration: number } } | null)?.auth;
        if (op.outcome === 'ok' && auth) {
          op.leaseS = auth.lease_duration;
          held.token = auth.client_token;
          live.push(held);
          await everywhere(held);
        }
      } else if (dice < 0.55 && live.length > 0) {
        const h = r.pick(live);
        await record('use', h, () => send(h.token, 'GET', 'auth/token/lookup-self'));
      } else if (dice < 0.72 && live.length > 0) {
        const h = r.pick(live);
        const { op, body } = await record('renew', h, () =>
          send(h.token, 'POST', 'auth/token/renew-self', { increment: `${RENEW_INCREMENT_S}s` }),
        );
        const lease = (body as { auth?: { lease_duration: number } } | null)?.auth?.lease_duration;
        if (op.outcome === 'ok' && lease !== undefined) op.leaseS = lease;
        if (op.outcome === 'info') op.leaseS = RENEW_INCREMENT_S;
      } else if (dice < 0.85 && live.length > 0) {
        const h = live.splice(r.int(0, live.length - 1), 1)[0] as Held;
        const { op } = await record('revoke', h, () =>
          r.chance(0.5)
            ? send(h.token, 'POST', 'auth/token/revoke-self')
            : send(cluster.token, 'POST', 'auth/token/revoke', { token: h.token }),
        );
        dead.push(h);
        if (op.outcome === 'ok') await everywhere(h);
      } else {
        // Old tokens: revoked ones, and live ones that may have expired by now.
        const pool = [...dead.slice(-20), ...live];
        if (pool.length > 0) {
          const h = r.pick(pool);
          await record('use', h, () => send(h.token, 'GET', 'auth/token/lookup-self'));
        }
      }
      await new Promise((res) => setTimeout(res, r.int(10, 50)));
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
