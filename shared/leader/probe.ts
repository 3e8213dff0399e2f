/**
 * Does an advertised cluster_addr reach the leader's cluster listener? One mutual-TLS handshake,
 * nothing sent: it succeeds only if the certificate on the other end is the advertised one. The
 * active node runs it against its own cluster_addr (the "api_addr is the load balancer" trap:
 * the derived cluster_addr then points at the load balancer), and a gateway against every leader
 * it starts following, so a misconfiguration is named in logs and /-/ready, not only seen as 503s.
 */
import { connect, type SecureContext } from 'node:tls';

/** A handshake that has not finished by then counts as unreachable. */
const PROBE_TIMEOUT_MS = 2_000;

export type ProbeResult = { ok: true } | { ok: false; error: string };

/**
 * Handshakes with `clusterAddr` (https://host:port) presenting `context`'s certificate, and
 * checks the server presents `expectDer` under `servername`.
 */
export function probeClusterAddr(
  clusterAddr: string,
  context: SecureContext,
  servername: string,
  expectDer: Buffer,
): Promise<ProbeResult> {
  let url: URL;
  try {
    url = new URL(clusterAddr);
  } catch {
    return Promise.resolve({ ok: false, error: 'not a URL' });
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(r);
    };
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      secureContext: context,
      servername,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      timeout: PROBE_TIMEOUT_MS,
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      done(
        peer?.raw?.equals(expectDer)
          ? { ok: true }
          : { ok: false, error: 'another certificate answered (not this leader)' },
      );
    });
    socket.once('timeout', () => done({ ok: false, error: 'timeout' }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? err.message }));
  });
}
