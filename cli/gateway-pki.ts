/**
 * A gateway CA and one gateway client certificate signed by it, for `leaderway dev` and the
 * tests (production issues them with cert-manager or your PKI: see docs/runbook.md). ECDSA
 * P-256, SHA-256; the client certificate has extended key usage clientAuth and its name as a DNS
 * SAN, which nodes match against LEADERWAY_GATEWAY_ALLOWED_NAMES (default: leaderway-gateway).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import selfsigned from 'selfsigned';

export interface GatewayPki {
  caCert: string;
  certPem: string;
  keyPem: string;
}

/** Generates the CA and a certificate for `name` (CN and DNS SAN; about 20 ms). */
export async function gatewayPki(name = 'leaderway-gateway'): Promise<GatewayPki> {
  const now = Date.now();
  const validity = { notBeforeDate: new Date(now - 60_000), notAfterDate: new Date(now + 365 * 86_400_000) };
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'leaderway gateway CA' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ...validity,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ...validity,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyAgreement: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: name }] },
    ],
  });
  return { caCert: ca.cert, certPem: leaf.cert, keyPem: leaf.private };
}

/** Where `writeGatewayPki` put the files. */
export interface GatewayPkiFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Generates a gateway PKI into a fresh temporary directory, removed when the process exits. */
export async function writeGatewayPki(prefix: string): Promise<GatewayPkiFiles> {
  const pki = await gatewayPki();
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const files = {
    caFile: path.join(dir, 'gateway-ca.pem'),
    certFile: path.join(dir, 'gateway.pem'),
    keyFile: path.join(dir, 'gateway-key.pem'),
  };
  writeFileSync(files.caFile, pki.caCert);
  writeFileSync(files.certFile, pki.certPem);
  writeFileSync(files.keyFile, pki.keyPem, { mode: 0o600 });
  return files;
}
