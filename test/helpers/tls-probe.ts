/** Probes of the cluster port: does a TLS client with these credentials get an HTTP answer? */
import { connect } from 'node:tls';

/** Handshake timeout for a probe. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * Resolves true when the TLS handshake succeeds and a request gets an HTTP response; false when
 * the handshake is refused, the connection is closed or nothing listens. The server is not
 * verified here (`rejectUnauthorized: false`): what is tested is whether it accepts *us*.
 */
export async function tlsAccepted(port: number, creds: { cert?: string; key?: string }): Promise<boolean> {
  return (await servedBy(port, creds)) !== null;
}

/**
 * The certificate (DER, base64) of the server that accepted us and answered a request; null when
 * the handshake is refused, the connection is closed or nothing listens.
 */
export function servedBy(port: number, creds: { cert?: string; key?: string }): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      ...creds,
    });
    let done = false;
    const finish = (cert: string | null) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(cert);
    };
    s.once('secureConnect', () =>
      s.write('GET /v1/sys/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'),
    );
    s.on('data', (d: Buffer) =>
      finish(
        d.toString('latin1').startsWith('HTTP/1.1') ? s.getPeerCertificate().raw.toString('base64') : null,
      ),
    );
    s.once('error', () => finish(null));
    s.once('close', () => finish(null));
    setTimeout(() => finish(null), PROBE_TIMEOUT_MS).unref();
  });
}
