/**
 * A standby's listener for gateways (spread routing): the cluster listener's kind of server —
 * mutual TLS 1.2, admitting only gateways by the same checks as the active's (./gateway-trust.ts)
 * — but presenting this process's own identity: a P-521 key and self-signed certificate for
 * `fw-<id>`, made once per process (./cluster-cert.ts), which the standby announces in its echo
 * and the active vouches for in the signed membership record. Requests go through the node's
 * API entry as `via: 'gateway'`: a standby serves the reads it may and answers the rest "not
 * served", which the gateway retries on the active.
 *
 * The port: it listens on the node's cluster port, which the active's cluster listener needs only
 * while this node is active. The node pauses it (closed at once: requests arriving meanwhile are
 * refused at connect and retried on the active by gateways) before its active term opens the
 * cluster listener, and opens it again after stepping down — so a node has one cluster port, as
 * upstream, and nothing new to configure. `open` and `pause` run one after the other in the order
 * called; `close` ends them for good.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Logger } from 'pino';
import type { HostPort } from '../../shared/config/formats';
import { LwError } from '../../shared/errors';
import { sendError } from '../../shared/http/respond';
import { type ClusterIdentity, newClusterIdentity } from './cluster-cert';
import { ClusterListener, type PeerRejection } from './cluster-listener';
import type { GatewayTrust } from './gateway-trust';
import type { ReadListenerInfo } from './peers';

/**
 * After closing, how long before the port is bound again: the listening socket is released in
 * the event loop's close phase, after the call that closed it returns.
 */
const PORT_RELEASE_MS = 20;

export interface StandbyListenerOptions {
  /** Where to listen: the node's cluster listen address. */
  address: HostPort;
  /** Where gateways connect: the node's cluster_addr. */
  advertise: string;
  gateways: GatewayTrust;
  log: Logger;
  /** Serves a request from an admitted gateway. */
  handle(req: Http2ServerRequest, res: Http2ServerResponse): void;
  onPeerRejected(reason: PeerRejection): void;
}

/** Open while the node is an unsealed standby. */
export class StandbyListener {
  private listener: ClusterListener | null = null;
  private identity: ClusterIdentity | null = null;
  /** The last open or pause: the next one runs after it. */
  private queue: Promise<void> = Promise.resolve();
  /** Closed for good (the node is shutting down): `open` does nothing any more. */
  private closed = false;

  constructor(private readonly o: StandbyListenerOptions) {}

  /** What the echo announces: the listener while open, else null. */
  info(): ReadListenerInfo | null {
    if (!this.listener || !this.identity) return null;
    return { id: this.identity.uuid, addr: this.o.advertise, cert: this.identity.certDer };
  }

  /** Opens the listener (no-op when open). A failure to listen is logged: reads then go to the active. */
  open(): Promise<void> {
    return this.enqueue(async () => {
      if (this.listener || this.closed) return;
      this.identity ??= await newClusterIdentity();
      const listener = new ClusterListener({
        address: this.o.address,
        identity: this.identity,
        // The CA bundle is read again at each opening, as for each active term.
        gateways: this.o.gateways.forTerm(),
        log: this.o.log,
        onPeerRejected: this.o.onPeerRejected,
        handle: (req, res) => this.o.handle(req, res),
        // Internal paths are for standbys reaching the active: none here.
        internal: (_req, res) => sendError(res, new LwError('LW_ERR_NOT_FOUND', '')),
      });
      try {
        await listener.start();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'standby listener for gateways did not open');
        return;
      }
      this.listener = listener;
      this.o.log.info({ addr: this.o.advertise }, 'standby listening for gateways');
    });
  }

  /** Closes the listener now and releases the port (no-op when closed). */
  pause(): Promise<void> {
    return this.enqueue(async () => {
      const listener = this.listener;
      if (!listener) return;
      this.listener = null;
      await listener.close(0);
      await new Promise((r) => setTimeout(r, PORT_RELEASE_MS));
    });
  }

  /** Closes the listener for good: an `open` called later (a late unseal) does nothing. */
  close(): Promise<void> {
    this.closed = true;
    return this.pause();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
