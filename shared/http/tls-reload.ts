/**
 * An API listener's TLS certificate, reloaded without a restart: on SIGHUP (what OpenBao
 * operators send) and when the certificate or key file changes. Kubernetes updates a mounted
 * Secret by swapping a symlink in the file's directory, so the directory is watched, not the
 * file. New connections get the new certificate; open ones keep theirs. A new pair that does not
 * load (unreadable, malformed, key not matching the certificate) is refused: the old one stays,
 * with an error log line and a failed-reload count.
 */

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsSettings } from '../config/listener';
import { ConfigError } from '../config/load';

/** File events come in bursts (a Secret update is several renames): reload once they settle. */
const SETTLE_MS = 250;

export interface TlsReloadHooks {
  log: Logger;
  /** After every reload attempt that found new files: whether they were taken. */
  onReload?(ok: boolean, notAfter: Date | null): void;
}

interface Loaded {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
}

/** The listener's certificate and key, and where they come from. */
export class TlsCertificates {
  private current: Loaded;
  private server: HttpsServer | undefined;
  private readonly watchers: FSWatcher[] = [];
  private settle: NodeJS.Timeout | undefined;

  /** Loads the files; a problem at start is a configuration error (exit code 2). */
  constructor(
    private readonly tls: TlsSettings,
    private readonly hooks: TlsReloadHooks,
  ) {
    try {
      this.current = this.load();
    } catch (err) {
      throw new ConfigError(
        `listener TLS (LEADERWAY_TLS_CERT_FILE, LEADERWAY_TLS_KEY_FILE): ${(err as Error).message}`,
      );
    }
  }

  /** Options for `https.createServer` (and for every reload). */
  options(
    loaded: Loaded = this.current,
  ): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    const ca = this.tls.clientCaFile ? readFileSync(this.tls.clientCaFile) : undefined;
    return {
      cert: loaded.cert,
      key: loaded.key,
      minVersion: this.tls.minVersion,
      ...(this.tls.ciphers ? { ciphers: this.tls.ciphers } : {}),
      ...(ca ? { ca } : {}),
      requestCert: ca !== undefined,
      rejectUnauthorized: this.tls.requireClientCert,
    };
  }

  /** When the certificate in use expires. */
  notAfter(): Date {
    return this.current.notAfter;
  }

  /** Starts watching the files' directories; reloads go to `server`. */
  attach(server: HttpsServer): void {
    this.server = server;
    for (const dir of new Set([dirname(this.tls.certFile), dirname(this.tls.keyFile)])) {
      try {
        const w = watch(dir, () => {
          clearTimeout(this.settle);
          this.settle = setTimeout(() => this.reload('file'), SETTLE_MS);
          this.settle.unref();
        });
        w.on('error', (err) =>
          this.hooks.log.warn({ err: err.message, dir }, 'certificate directory watch failed'),
        );
        w.unref();
        this.watchers.push(w);
      } catch (err) {
        this.hooks.log.warn(
          { err: (err as Error).message, dir },
          'cannot watch the certificate directory; SIGHUP still reloads',
        );
      }
    }
  }

  /**
   * Reloads the files if they changed. Resolves true when the listener serves the files' current
   * certificate (new or unchanged), false when the new files were refused.
   */
  reload(trigger: 'sighup' | 'file'): boolean {
    let next: Loaded;
    try {
      next = this.load();
    } catch (err) {
      this.hooks.log.error(
        { trigger, err: (err as Error).message },
        'new TLS certificate refused; keeping the one in use',
      );
      this.hooks.onReload?.(false, null);
      return false;
    }
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return true;
    this.server?.setSecureContext(this.options(next));
    this.current = next;
    this.hooks.log.info({ trigger, not_after: next.notAfter.toISOString() }, 'TLS certificate reloaded');
    this.hooks.onReload?.(true, next.notAfter);
    return true;
  }

  close(): void {
    clearTimeout(this.settle);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }

  /** Reads and checks the pair: it parses, the key matches, and TLS accepts it. */
  private load(): Loaded {
    const cert = readFileSync(this.tls.certFile);
    const key = readFileSync(this.tls.keyFile);
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key)))
      throw new Error('the key does not match the certificate');
    createSecureContext({
      cert,
      key,
      minVersion: this.tls.minVersion,
      ...(this.tls.ciphers ? { ciphers: this.tls.ciphers } : {}),
    });
    return { cert, key, notAfter: new Date(x509.validTo) };
  }
}
