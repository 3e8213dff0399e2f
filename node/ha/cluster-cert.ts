/**
 * The active node's cluster identity: a fresh ECDSA P-521 key and a self-signed certificate for
 * `fw-<uuid>`, valid for server and client auth, signed with SHA-512 (selfsigned's default is
 * SHA-1, which is why the algorithm is explicit).
 */
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import selfsigned from 'selfsigned';

/** Backdating absorbs clock skew between nodes, as upstream does. */
const NOT_BEFORE_SKEW_MS = 30_000;
/** Long validity: the cert lives only as long as one active term. */
const VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;

/** A lock value and the cluster identity that goes with it. */
export interface ClusterIdentity {
  uuid: string;
  certPem: string;
  keyPem: string;
  /** DER base64, as advertised. */
  certDer: string;
  keyDer: string;
}

/** Generates a new lock value with its certificate and key (about 20 ms). */
export async function newClusterIdentity(): Promise<ClusterIdentity> {
  const uuid = randomUUID();
  const name = `fw-${uuid}`;
  const now = Date.now();
  const pems = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    curve: 'P-521',
    algorithm: 'sha512',
    notBeforeDate: new Date(now - NOT_BEFORE_SKEW_MS),
    notAfterDate: new Date(now + VALIDITY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, keyAgreement: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: name }] },
    ],
  });
  const certDer = new X509Certificate(pems.cert).raw.toString('base64');
  const keyDer = (createPrivateKey(pems.private).export({ format: 'der', type: 'pkcs8' }) as Buffer).toString(
    'base64',
  );
  return { uuid, certPem: pems.cert, keyPem: pems.private, certDer, keyDer };
}
