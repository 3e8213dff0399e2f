/** Probes of the cluster port: does a TLS client with these credentials get an HTTP answer? */
import { connect } from 'node:tls';

/** Handshake timeout for a probe. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * Resolves true when the TLS handshake succeeds and a request gets an HTTP response; false when
 * the handshake is refused, the connection is closed or nothing listens. The server is not
 * verified here (`rejectUnauthorized: false`): what is tested is whether it accepts *us*.
 */
export function tlsAccepted(port: number, creds: { cert?: string; key?: string }): Promise<boolean> {
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
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(ok);
    };
    s.once('secureConnect', () =>
      s.write('GET /v1/sys/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'),
    );
    s.on('data', (d: Buffer) => finish(d.toString('latin1').startsWith('HTTP/1.1')));
    s.once('error', () => finish(false));
    s.once('close', () => finish(false));
    setTimeout(() => finish(false), PROBE_TIMEOUT_MS).unref();
  });
}
