/**
 * A self-signed certificate for an API listener (a node's or a gateway's), for tests and the
 * bench: TLS to the listener as in production (HAProxy with `ssl verify none`, clients with
 * verification off).
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import selfsigned from 'selfsigned';

/** Paths of the PEM files written. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
}

/** Writes `api-cert.pem` and `api-key.pem` (ECDSA P-256, SHA-256, SAN 127.0.0.1) into `dir`. */
export async function writeApiCert(dir: string): Promise<CertFiles> {
  const now = Date.now();
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyAgreement: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  const certFile = path.join(dir, 'api-cert.pem');
  const keyFile = path.join(dir, 'api-key.pem');
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile };
}
