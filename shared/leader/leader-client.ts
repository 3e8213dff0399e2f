/**
 * The connection pool to one leader's cluster listener: mutual TLS 1.2, trusting only the
 * advertised certificate, presenting this process's identity — a standby the leader's own
 * certificate and key (read through the barrier), a gateway a certificate of its own (issued
 * by the CA the nodes trust for gateways) — keep-alive, TLS sessions reused. One pool per
 * advertisement; when the leader changes the old pool is destroyed, closing its connections.
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Attributes as SpanAttributes } from '@opentelemetry/api';
import { type Dispatcher, Pool } from 'undici';
import type { Advertisement } from '../advertisement';
import type { ClientGone } from '../forward/client-gone';
import { type ForwardOutcome, LEADER_RETIRED } from '../forward/outcome';
import { endSpan, type Span, startClientSpan, tracingEnabled } from '../telemetry/tracing';
import { Admission, type Cancellation } from './admission';
import { type ProxyAttempt, proxyOnce } from './proxy-request';

/** Connections kept per leader by one process (a gateway or a standby). */
const DEFAULT_CONNECTIONS = 128;
/**
 * Idle keep-alive connections are closed after this long: shorter than the cluster listener's
 * idle timeout (CLUSTER_IDLE_TIMEOUT_MS, 70 s), so the client always closes first and never
 * reuses a connection the server is closing; long enough that a quiet minute does not cost a
 * fresh P-521 handshake per connection.
 */
const KEEP_ALIVE_MS = 60_000;
/** A leader that accepts no TCP/TLS connection within this is treated as gone. */
const CONNECT_TIMEOUT_MS = 2_000;

/** How long a retired leader's in-flight requests may take before their connections are cut. */
const RETIRE_BOUND_MS = 30_000;

/** Converts DER (base64) to PEM. */
export function derToPem(derBase64: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  const lines = derBase64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** What this process presents to a leader's cluster listener. */
export interface ClientIdentity {
  certPem: string;
  keyPem: string;
}

/** One attempt to forward a client request (see LeaderClient.forward). */
export interface ForwardAttempt extends ProxyAttempt {
  /** The client went away: stop waiting and abort the upstream request. */
  gone: ClientGone;
  /** How long to wait for a place in the pool before giving up as `busy`. */
  admissionWaitMs: number;
  /** The attempt's client span; `parent` when the caller passes its span explicitly (a gateway). */
  span: { name: string; attributes: SpanAttributes; parent?: Span };
}

/** A pool to one advertised leader. */
export class LeaderClient {
  private readonly pool: Pool;
  readonly origin: string;
  /** Admits at most `connections` requests into the pool at once (see Admission). */
  readonly admission: Admission;
  /** The TLS context every connection to this leader uses (also for reachability probes). */
  readonly context: SecureContext;

  constructor(
    readonly ad: Advertisement,
    identity: ClientIdentity,
    opts: { connections?: number } = {},
  ) {
    const certPem = derToPem(ad.cert, 'CERTIFICATE');
    // Parse once so a malformed cert fails here, not on the first request.
    new X509Certificate(certPem);
    this.origin = ad.cluster_addr;
    this.admission = new Admission(opts.connections ?? DEFAULT_CONNECTIONS);
    // One TLS context for every connection to this leader: building it per connection (the
    // default) parses the P-521 key and cert each time, which showed in the profile.
    this.context = createSecureContext({
      ca: [certPem],
      cert: identity.certPem,
      key: identity.keyPem,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    this.pool = new Pool(ad.cluster_addr, {
      connections: opts.connections ?? DEFAULT_CONNECTIONS,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: {
        secureContext: this.context,
        servername: `fw-${ad.uuid}`,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
        ALPNProtocols: ['http/1.1'],
        timeout: CONNECT_TIMEOUT_MS,
      },
    });
  }

  /**
   * Forwards one client request: waits for a place in the pool (admission), proxies it, and
   * classifies the outcome, under a client span. Never throws.
   */
  async forward(a: ForwardAttempt): Promise<ForwardOutcome> {
    // A trace header per attempt; without tracing the headers are shared, not copied.
    const headers = tracingEnabled() ? a.headers.slice() : a.headers;
    const span = startClientSpan(a.span.name, a.span.attributes, headers, a.span.parent);
    const admitted = await this.admission.enter(a.gone, a.admissionWaitMs);
    if (admitted !== 'admitted') {
      const kind = admitted === 'timeout' ? 'busy' : 'aborted';
      endSpan(span, kind, kind === 'busy');
      return { kind };
    }
    let outcome: Awaited<ReturnType<typeof proxyOnce>>;
    try {
      outcome = await proxyOnce(this.pool, { ...a, headers });
    } finally {
      this.admission.leave();
    }
    endSpan(
      span,
      outcome.kind,
      outcome.kind !== 'served',
      outcome.kind === 'served' ? { 'http.response.status_code': outcome.status } : {},
    );
    return outcome;
  }

  /**
   * A small internal request (a standby's heartbeat) through the same admission gate: skipped
   * (null) when the pool has no place within `waitMs`.
   */
  async request(opts: Dispatcher.RequestOptions, waitMs: number): Promise<Dispatcher.ResponseData | null> {
    if ((await this.admission.enter(undefined, waitMs)) !== 'admitted') return null;
    try {
      const r = await this.pool.request(opts);
      await r.body.dump();
      return r;
    } finally {
      this.admission.leave();
    }
  }

  /**
   * Sends an upgrade request (a WebSocket) through the admission gate: `handler(release)` must
   * call `release` once the leader's answer is over (switched, ended or failed). `busy` when the
   * pool had no place within `waitMs`; `aborted` when `cancel` (the client's socket closing)
   * fired first — a client gone while it waited takes no place.
   */
  async upgrade(
    opts: Dispatcher.DispatchOptions,
    handler: (release: () => void) => Dispatcher.DispatchHandler,
    waitMs: number,
    cancel?: Cancellation,
  ): Promise<'sent' | 'busy' | 'aborted'> {
    const admitted = await this.admission.enter(cancel, waitMs);
    if (admitted !== 'admitted') return admitted === 'timeout' ? 'busy' : 'aborted';
    let released = false;
    this.pool.dispatch(
      opts,
      handler(() => {
        if (released) return;
        released = true;
        this.admission.leave();
      }),
    );
    return 'sent';
  }

  /** Closes every connection now; requests in flight fail (callers decide whether to retry). */
  async destroy(): Promise<void> {
    // Requests still in flight may have reached the leader: fail them with an error that no
    // retry policy mistakes for "never sent" (undici's own UND_ERR_DESTROYED would be).
    const err = Object.assign(new Error('leader connection retired'), { code: LEADER_RETIRED });
    await this.pool.destroy(err).catch(() => undefined);
  }

  /**
   * Stops sending new requests here (they fail with UND_ERR_CLOSED, i.e. "never sent", so a
   * caller can retry them on the next leader) while requests in flight finish; whatever is left
   * after `boundMs` is destroyed. Destroying at once would turn requests the old leader is still
   * answering into failures of unknown outcome.
   */
  retire(boundMs = RETIRE_BOUND_MS): void {
    const t = setTimeout(() => void this.destroy(), boundMs);
    t.unref();
    this.pool.close().then(
      () => clearTimeout(t),
      () => undefined,
    );
  }
}
