/**
 * Heartbeats between standbys and the active, for sys/ha-status and for the membership record
 * gateways spread reads with. Each standby posts a small echo to the active every second over the
 * cluster channel — with its listener for gateways (address and certificate) while it has one,
 * and whether it is serving or draining; the active keeps whom it heard from.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Logger } from 'pino';
import { LwError } from '../../shared/errors';
import { sendError, sendJson } from '../../shared/http/respond';
import type { LeaderWatcher } from '../../shared/leader/leader-watcher';
import type { Member, MemberStatus } from '../../shared/membership';
import { CLUSTER_PATH_PREFIX } from './cluster-listener';

/** One node in sys/ha-status. */
export interface PeerInfo {
  hostname: string;
  api_address: string;
  cluster_address: string;
  active_node: boolean;
  last_echo: string | null;
  version: string;
  /**
   * The active node's own entry only: whether its advertised cluster_addr reaches its cluster
   * listener (null until checked), and why not.
   */
  cluster_address_reachable?: boolean | null;
  cluster_address_error?: string | null;
}

/** How often standbys echo (upstream: 5 s; the issue asks for 1 s). */
export const ECHO_INTERVAL_MS = 1_000;
/** A peer not heard from for this long is dropped from ha-status. */
const PEER_EXPIRY_MS = 30_000;
/** At most this many peers are remembered; a flood of fake node ids cannot grow the table. */
const MAX_PEERS = 256;
/**
 * A standby not heard from for this long gets no reads: it is left out of the membership record
 * (three missed echoes).
 */
export const MEMBER_LATE_MS = 3 * ECHO_INTERVAL_MS;
/** An echo body is small (a P-521 certificate is under 1 KiB of base64); refuse anything larger. */
const MAX_ECHO_BYTES = 8192;

/** A standby's listener for gateways, as its echo announces it. */
export interface ReadListenerInfo {
  /** Names its certificate (`fw-<id>`). */
  id: string;
  /** `https://host:port` (the standby's cluster_addr). */
  addr: string;
  /** DER, base64. */
  cert: string;
}

/** What a standby says about itself every second. */
export interface Echo {
  node_id: string;
  api_addr: string;
  cluster_addr: string;
  version: string;
  /** Leaving (shutting down): no reads for it. Absent from older nodes: serving. */
  status?: MemberStatus;
  /** Its listener for gateways, while it has one. */
  reads?: ReadListenerInfo | null;
}

/** The listener an echo announces, if well formed (anything else announces none). */
function readListenerOf(v: unknown): ReadListenerInfo | null {
  const r = v as Record<string, unknown> | null | undefined;
  if (!r || typeof r !== 'object') return null;
  const { id, addr, cert } = r;
  if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/.test(id)) return null;
  if (typeof addr !== 'string' || addr.length > 512 || !/^https:\/\/[^/]+$/.test(addr)) return null;
  if (typeof cert !== 'string' || !/^[A-Za-z0-9+/=]+$/.test(cert)) return null;
  return { id, addr, cert };
}

/** The active side: who has echoed. */
export class PeerTable {
  private readonly peers = new Map<string, { echo: Echo; at: number }>();

  /** Serves `POST /lw-cluster/echo`. */
  handle(req: Http2ServerRequest, res: Http2ServerResponse, path: string): void {
    if (path !== 'echo' || req.method !== 'POST') {
      sendError(res, new LwError('LW_ERR_NOT_FOUND', 'not found'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_ECHO_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      try {
        if (size > MAX_ECHO_BYTES) throw new Error('too large');
        const e = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Echo;
        if (typeof e.node_id !== 'string' || typeof e.api_addr !== 'string') throw new Error('bad echo');
        if (!this.peers.has(e.node_id) && this.peers.size >= MAX_PEERS) throw new Error('too many peers');
        this.peers.set(e.node_id, {
          echo: {
            node_id: e.node_id.slice(0, 128),
            api_addr: String(e.api_addr).slice(0, 512),
            cluster_addr: String(e.cluster_addr ?? '').slice(0, 512),
            version: String(e.version ?? '').slice(0, 64),
            status: e.status === 'draining' ? 'draining' : 'serving',
            reads: readListenerOf(e.reads),
          },
          at: Date.now(),
        });
        sendJson(res, 204, undefined);
      } catch {
        sendError(res, new LwError('LW_ERR_BAD_REQUEST', 'invalid echo'));
      }
    });
  }

  /** Peers heard from recently, plus this node. */
  list(self: Omit<PeerInfo, 'last_echo' | 'active_node'>): PeerInfo[] {
    const now = Date.now();
    const out: PeerInfo[] = [{ ...self, active_node: true, last_echo: null }];
    for (const [id, p] of this.peers) {
      if (now - p.at > PEER_EXPIRY_MS) {
        this.peers.delete(id);
        continue;
      }
      if (id === self.hostname) continue;
      out.push({
        hostname: p.echo.node_id,
        api_address: p.echo.api_addr,
        cluster_address: p.echo.cluster_addr,
        active_node: false,
        last_echo: new Date(p.at).toISOString(),
        version: p.echo.version,
      });
    }
    return out;
  }

  /**
   * The standbys gateways may send reads to at `now`: those with a listener for gateways, serving,
   * and heard from within MEMBER_LATE_MS; ordered by node id so an unchanged set compares equal.
   */
  members(now: number): Member[] {
    const out: Member[] = [];
    for (const p of this.peers.values()) {
      const age = now - p.at;
      const r = p.echo.reads;
      if (!r || p.echo.status !== 'serving' || age > MEMBER_LATE_MS) continue;
      out.push({
        node_id: p.echo.node_id,
        id: r.id,
        addr: r.addr,
        cert: r.cert,
        status: 'serving',
        heartbeat_age_ms: Math.max(0, Math.round(age)),
      });
    }
    return out.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
  }

  clear(): void {
    this.peers.clear();
  }
}

/** The standby side: echo to the current leader every second. */
export class Echoer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly watcher: LeaderWatcher,
    /** What to say, asked at every echo (the listener and status change). */
    private readonly me: () => Echo,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.echo(), ECHO_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async echo(): Promise<void> {
    const client = this.watcher.current()?.client;
    if (!client) return;
    try {
      // Through the admission gate like client requests; skipped when the pool is full.
      await client.request(
        {
          method: 'POST',
          path: `${CLUSTER_PATH_PREFIX}echo`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(this.me()),
        },
        ECHO_INTERVAL_MS,
      );
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'echo to active failed');
    }
  }
}
