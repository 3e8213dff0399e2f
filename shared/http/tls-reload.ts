/**
 * A certificate and key from files, reloaded without a restart — an API listener's server
 * certificate, or a gateway's client certificate: on SIGHUP (what OpenBao operators send) and
 * when the certificate or key file changes. Kubernetes updates a mounted Secret by swapping a
 * symlink in the file's directory, so the directory is watched, not the file. New connections
 * get the new certificate; open ones keep theirs. A new pair that does not load (unreadable,
 * malformed, key not matching the certificate) is refused: the old one stays, with an error log
 * line and a failed-reload count.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsSettings } from '../config/listener';
import { ConfigError } from '../config/load';
import { watchSettled } from '../dir-watch';

export interface TlsReloadHooks {
  log: Logger;
  /** After every reload attempt that found new files: whether they were taken. */
  onReload?(ok: boolean, notAfter: Date | null): void;
}

/** A loaded certificate and key. */
export interface PemPair {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
}

/** Reads a certificate and its key and checks them: both parse and the key matches. Throws. */
export function readPemPair(certFile: string, keyFile: string): PemPair {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const x509 = new X509Certificate(cert);
  if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not match the certificate');
  return { cert, key, notAfter: new Date(x509.validTo) };
}

/** A certificate and key, and the files they come from. */
export class TlsCertificates {
  private current: PemPair;
  private onChange: ((pair: PemPair) => void) | undefined;
  private stopWatching: (() => void) | undefined;

  /** Loads the files; a problem at start is a configuration error (exit code 2) naming `what`. */
  constructor(
    private readonly tls: TlsSettings,
    private readonly hooks: TlsReloadHooks,
    what = 'listener TLS (LEADERWAY_TLS_CERT_FILE, LEADERWAY_TLS_KEY_FILE)',
  ) {
    try {
      this.current = this.load();
    } catch (err) {
      throw new ConfigError(`${what}: ${(err as Error).message}`);
    }
  }

  /** The pair in use. */
  pair(): PemPair {
    return this.current;
  }

  /** Options for `https.createServer` (and for every reload). */
  options(
    loaded: PemPair = this.current,
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

  /** Serves reloads on `server` (new connections get the new certificate). */
  attach(server: HttpsServer): void {
    this.watch((pair) => server.setSecureContext(this.options(pair)));
  }

  /** Starts watching the files' directories; each new pair goes to `onChange` (after the hooks). */
  watch(onChange: (pair: PemPair) => void): void {
    this.onChange = onChange;
    this.stopWatching?.();
    this.stopWatching = watchSettled(
      [dirname(this.tls.certFile), dirname(this.tls.keyFile)],
      () => this.reload('file'),
      this.hooks.log,
      'certificate',
    );
  }

  /**
   * Reloads the files if they changed. True when the current files are in use (new or
   * unchanged), false when new files were refused.
   */
  reload(trigger: 'sighup' | 'file'): boolean {
    let next: PemPair;
    try {
      next = this.load();
    } catch (err) {
      this.hooks.log.error(
        { trigger, file: this.tls.certFile, err: (err as Error).message },
        'new TLS certificate refused; keeping the one in use',
      );
      this.hooks.onReload?.(false, null);
      return false;
    }
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return true;
    this.current = next;
    this.onChange?.(next);
    this.hooks.log.info(
      { trigger, file: this.tls.certFile, not_after: next.notAfter.toISOString() },
      'TLS certificate reloaded',
    );
    this.hooks.onReload?.(true, next.notAfter);
    return true;
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /** Reads and checks the pair: it parses, the key matches, and TLS accepts it. */
  private load(): PemPair {
    const pair = readPemPair(this.tls.certFile, this.tls.keyFile);
    createSecureContext({
      cert: pair.cert,
      key: pair.key,
      minVersion: this.tls.minVersion,
      ...(this.tls.ciphers ? { ciphers: this.tls.ciphers } : {}),
    });
    return pair;
  }
}
