/**
 * Which gateways the active node's cluster listener admits. A gateway's certificate must
 *   1. chain to the gateway CA bundle (LEADERWAY_GATEWAY_CA_FILE) — TLS checks that in the
 *      handshake — and be issued by a certificate of that bundle (put intermediates in it);
 *   2. carry the clientAuth extended key usage (OpenSSL lets a certificate with no EKU
 *      extension through, and an org CA signs plenty of those for workloads);
 *   3. have a DNS or URI SAN that LEADERWAY_GATEWAY_ALLOWED_NAMES allows (./gateway-names.ts);
 *   4. not be revoked by the CRL file (LEADERWAY_GATEWAY_CRL_FILE), when one is set: then every
 *      gateway certificate's issuer must have a CRL in that file, or it is refused.
 *
 * The CA bundle is read again at every term (rotation without a restart). The CRL file is read
 * at start — a problem is a configuration error — and again whenever its directory changes
 * (a Kubernetes volume update swaps a symlink there); a new file that does not parse or is not
 * signed by the bundle is refused with an error log line and the previous list stays. After a
 * reload the listener re-checks its open gateway connections and cuts the revoked ones.
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../../shared/config/load';
import { watchSettled } from '../../shared/dir-watch';
import { normalizeSerial, parseCrlFile, pemBlocks, type RevocationList } from './gateway-crl';
import { allowedName, certificateNames, type NamePattern } from './gateway-names';

/** The clientAuth extended key usage. */
const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/** Why a certificate that passed the TLS handshake is not admitted as a gateway. */
export type GatewayRefusal = 'issuer' | 'eku' | 'name' | 'revoked' | 'crl_missing';

/** What the node is configured to admit. */
export interface GatewaySettings {
  /** PEM CA bundle of gateway certificates. */
  caFile: string;
  /** Never empty (settings refuse an empty list while a CA is set). */
  allowedNames: readonly NamePattern[];
  crlFile: string | null;
}

/** The gateway CA bundle as one term's listener uses it. */
export interface TermGateways {
  /** PEM, for the TLS context. */
  readonly caPem: string;
  /** Why `cert` (its chain already verified by TLS) is not admitted, or null when it is. */
  refusal(cert: X509Certificate): GatewayRefusal | null;
  /** Calls `cb` after the revocation list changed; returns the unsubscribe. */
  onRevocationsChanged(cb: () => void): () => void;
}

interface CaBundle {
  pem: string;
  certs: X509Certificate[];
}

/** Reads and parses the gateway CA bundle. Throws an Error. */
function readCaBundle(file: string): CaBundle {
  const pem = readFileSync(file, 'utf8');
  const certs = pemBlocks(pem, 'CERTIFICATE').map((der) => new X509Certificate(der));
  if (certs.length === 0) throw new Error('no certificate in the file');
  return { pem, certs };
}

export class GatewayTrust {
  private ca: CaBundle;
  private crl: RevocationList | null = null;
  private crlText: string | null = null;
  private readonly listeners = new Set<() => void>();
  private stopWatching: (() => void) | undefined;

  /** Reads the CA bundle and the CRL file; a problem is a ConfigError (exit code 2) naming the variable. */
  constructor(
    private readonly o: GatewaySettings,
    private readonly log: Logger,
  ) {
    try {
      this.ca = readCaBundle(o.caFile);
    } catch (err) {
      throw new ConfigError(`gateway_ca_file (LEADERWAY_GATEWAY_CA_FILE): ${(err as Error).message}`);
    }
    if (o.crlFile) {
      try {
        this.loadCrl(o.crlFile);
      } catch (err) {
        throw new ConfigError(`gateway_crl_file (LEADERWAY_GATEWAY_CRL_FILE): ${(err as Error).message}`);
      }
    }
  }

  /** Starts watching the CRL file's directory (idempotent; nothing to watch without a CRL file). */
  start(): void {
    const file = this.o.crlFile;
    if (!file || this.stopWatching) return;
    this.stopWatching = watchSettled([dirname(file)], () => this.reloadCrl(), this.log, 'gateway CRL');
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /** The CA bundle for a new term: read again, keeping the last good one if it does not load. */
  forTerm(): TermGateways {
    try {
      this.ca = readCaBundle(this.o.caFile);
    } catch (err) {
      this.log.error(
        { err: (err as Error).message, file: this.o.caFile },
        'gateway CA bundle unreadable: keeping the one read before',
      );
    }
    // Revocations are keyed by the bundle certificate that signed the CRL: bind them to this
    // bundle, or a CA certificate renewed with the same key (a new fingerprint) would find no CRL
    // and refuse every gateway until the CRL file changed.
    if (this.crlText !== null) {
      try {
        this.crl = parseCrlFile(this.crlText, this.ca.certs);
      } catch (err) {
        this.log.error(
          { err: (err as Error).message, file: this.o.crlFile },
          'the gateway CRL is not signed by the current CA bundle: keeping the revocations read before',
        );
      }
    }
    const ca = this.ca;
    return {
      caPem: ca.pem,
      refusal: (cert) => this.refusal(cert, ca.certs),
      onRevocationsChanged: (cb) => {
        this.listeners.add(cb);
        return () => this.listeners.delete(cb);
      },
    };
  }

  /** Reloads the CRL file if it changed. True when the file in use is current. */
  reloadCrl(): boolean {
    const file = this.o.crlFile;
    if (!file) return true;
    try {
      if (!this.loadCrl(file)) return true;
    } catch (err) {
      this.log.error(
        { file, err: (err as Error).message },
        'new gateway CRL refused; keeping the one in use',
      );
      return false;
    }
    for (const cb of this.listeners) cb();
    return true;
  }

  /** Reads, checks and takes the CRL file; false when it is unchanged. Throws an Error. */
  private loadCrl(file: string): boolean {
    const text = readFileSync(file, 'utf8');
    if (text === this.crlText) return false;
    // The CRL must be signed by the bundle as it is on disk now (a rotation may have added a CA).
    let cas = this.ca.certs;
    try {
      cas = readCaBundle(this.o.caFile).certs;
    } catch {
      // keep the bundle read before; the term start logs the problem
    }
    const list = parseCrlFile(text, cas);
    this.crl = list;
    this.crlText = text;
    const now = Date.now();
    for (const c of list.crls) {
      const fields = {
        issuer: c.issuer,
        revoked: c.entries,
        this_update: c.thisUpdate.toISOString(),
        next_update: c.nextUpdate?.toISOString() ?? null,
      };
      // A stale list still revokes what it lists; refusing every gateway over it would be an outage.
      if (c.nextUpdate && c.nextUpdate.getTime() < now)
        this.log.warn(fields, 'gateway CRL is past its next update: publish a fresh one');
      else this.log.info(fields, 'gateway CRL loaded');
    }
    return true;
  }

  private refusal(cert: X509Certificate, cas: readonly X509Certificate[]): GatewayRefusal | null {
    // The certificate of the bundle that signed it (TLS verified a chain to *some* anchor it was
    // given, and this term's own certificate is one of them).
    const issuer = cas.find((c) => cert.checkIssued(c) && cert.verify(c.publicKey));
    if (!issuer) return 'issuer';
    if (!cert.keyUsage?.includes(CLIENT_AUTH_EKU)) return 'eku';
    if (allowedName(this.o.allowedNames, certificateNames(cert.subjectAltName)) === null) return 'name';
    if (this.crl) {
      const revoked = this.crl.revoked.get(issuer.fingerprint256);
      if (!revoked) return 'crl_missing';
      if (revoked.has(normalizeSerial(cert.serialNumber))) return 'revoked';
    }
    return null;
  }
}
