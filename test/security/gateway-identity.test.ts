/**
 * Gateway identity on the active's cluster port, pinned and revocable (GUARANTEES G7): a
 * certificate from the gateway CA is admitted only with the clientAuth usage and a name
 * LEADERWAY_GATEWAY_ALLOWED_NAMES allows (default `leaderway-gateway`), and not once the CRL in
 * LEADERWAY_GATEWAY_CRL_FILE revokes it — rewritten on disk while the node runs. A refused peer
 * gets no HTTP answer, so it cannot claim a client address (X-Leaderway-Client-Addr) and pass a
 * CIDR binding from anywhere. The CA and certificates are made with openssl, as an operator's
 * PKI (cert-manager, SPIFFE) would make them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { Client } from 'undici';
import { CLIENT_ADDR_HEADER } from '../../shared/http/internal-headers';
import { derToPem } from '../../shared/leader/leader-client';
import { readAdvertisement, waitActive } from '../helpers/cluster';
import { type IssuedCert, TestGatewayCa } from '../helpers/gateway-ca';
import { call, initCluster } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { BIN, type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { tlsAccepted } from '../helpers/tls-probe';
import { vaultApi } from '../helpers/vault-api';

/** The office the AppRole is bound to, and an address inside it a forger would claim. */
const OFFICE = '10.1.2.0/24';
const IN_OFFICE = '10.1.2.3';

/** `leaderway_cluster_peer_rejected_total{reason}` on a node's metrics listener. */
async function rejected(node: Proc, reason: string): Promise<number> {
  const text = (await call(node.metricsUrl, '/metrics')).text;
  const m = new RegExp(`^leaderway_cluster_peer_rejected_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(
    text,
  );
  return m ? Number(m[1]) : 0;
}

describe('gateway identity: pinned names, clientAuth, revocation', () => {
  let redis: RedisServer;
  let ca: TestGatewayCa;
  let other: TestGatewayCa;
  const keys = testKeys();
  let node: Proc;
  let gw: Proc;
  let token = '';
  let crlFile = '';
  /** The real gateway's certificate. */
  let gateway: IssuedCert;
  /** Another certificate with the gateway's name: a second gateway (the positive control). */
  let sibling: IssuedCert;
  /** A workload certificate from the same CA, with clientAuth: not a gateway's name. */
  let workload: IssuedCert;
  /** The gateway's name but no extended key usage at all (OpenSSL's TLS lets it through). */
  let noEku: IssuedCert;
  const { api } = vaultApi(
    () => gw.url,
    () => token,
  );

  /** Replaces the CRL as a Kubernetes volume update does: a new file renamed into place. */
  const writeCrl = (pem: string) => {
    const tmp = `${crlFile}.new`;
    writeFileSync(tmp, pem);
    renameSync(tmp, crlFile);
  };

  /** Sends a request straight to the active's cluster port as `creds`; its status, or the error. */
  const direct = async (
    creds: IssuedCert,
    path: string,
    o: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<number | Error> => {
    const ad = await readAdvertisement(redis.url, keys);
    const client = new Client(ad.cluster_addr, {
      connect: {
        ca: derToPem(ad.cert, 'CERTIFICATE'),
        servername: `fw-${ad.uuid}`,
        cert: creds.cert,
        key: creds.key,
      },
    });
    try {
      const r = await client.request({
        path,
        method: o.body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...o.headers },
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
      });
      await r.body.dump();
      return r.statusCode;
    } catch (err) {
      return err as Error;
    } finally {
      await client.destroy();
    }
  };

  before(async () => {
    redis = await startRedis();
    ca = TestGatewayCa.create();
    other = TestGatewayCa.create();
    gateway = ca.issue('gateway', { dns: ['leaderway-gateway'] });
    sibling = ca.issue('sibling', { dns: ['leaderway-gateway'] });
    workload = ca.issue('workload', {
      cn: 'leaderway-gateway',
      dns: ['web.apps.svc.cluster.local'],
      uri: ['spiffe://example.org/ns/apps/sa/web'],
    });
    noEku = ca.issue('no-eku', { dns: ['leaderway-gateway'], eku: null });
    // In a directory of its own, as a mounted ConfigMap or Secret is.
    mkdirSync(path.join(ca.dir, 'crl'));
    crlFile = path.join(ca.dir, 'crl', 'gateways.crl');
    writeFileSync(crlFile, ca.crl([]));
    const port = await freePort();
    // LEADERWAY_GATEWAY_ALLOWED_NAMES is left at its default.
    node = await spawnNode('n1', {
      redisUrl: redis.url,
      keys,
      apiAddr: `http://127.0.0.1:${port}`,
      env: { LEADERWAY_GATEWAY_CA_FILE: ca.caFile, LEADERWAY_GATEWAY_CRL_FILE: crlFile },
    });
    token = await initCluster(node.url);
    await waitActive([node]);
    gw = await spawnGateway('gw', {
      redisUrl: redis.url,
      keys,
      port,
      env: {
        LEADERWAY_GATEWAY_CERT_FILE: gateway.certFile,
        LEADERWAY_GATEWAY_KEY_FILE: gateway.keyFile,
        // Without a reachable leader, a request is held this long, then 503.
        LEADERWAY_FAILOVER_WAIT: '1s',
      },
    });
  });

  after(async () => {
    await Promise.all([gw?.stop('SIGKILL'), node?.stop('SIGKILL')]);
    await redis?.stop();
    ca?.remove();
    other?.remove();
  });

  it('the real gateway, with the name the default allows, works end to end', async () => {
    await waitFor(
      async () =>
        (await call(gw.url, '/v1/secret/data/id', { token, body: { data: { v: 1 } } })).status === 200,
      15_000,
      'a write through the gateway',
    );
    const r = await call(gw.url, '/v1/secret/data/id', { token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.body as { data: { data: unknown } }).data.data, { v: 1 });
    assert.equal(await tlsAccepted(node.clusterPort, gateway), true);
    assert.equal(await tlsAccepted(node.clusterPort, sibling), true);
  });

  it('a certificate of the gateway CA without the clientAuth usage is refused, with no HTTP answer', async () => {
    const before = await rejected(node, 'eku');
    assert.equal(await tlsAccepted(node.clusterPort, noEku), false);
    assert.equal(await rejected(node, 'eku'), before + 1);
    const line = await waitFor(
      () =>
        node
          .logs()
          .find((l) => l.msg === 'cluster connection refused: not an admitted gateway' && l.reason === 'eku'),
      5_000,
      'the refusal logged',
    );
    assert.equal(line.subject, 'CN=no-eku');
    assert.match(String(line.serial), /^[0-9A-F]+$/);
    assert.ok(!node.lines.some((l) => l.includes('BEGIN CERTIFICATE')), 'a certificate was logged');
    // Over HTTP/2 (the server sets a session up before the check runs) it is refused the same way.
    const session = http2.connect(`https://127.0.0.1:${node.clusterPort}`, {
      rejectUnauthorized: false,
      cert: noEku.cert,
      key: noEku.key,
    });
    session.on('error', () => {});
    const status = await new Promise<unknown>((resolve) => {
      const req = session.request({ ':path': '/v1/sys/health' });
      req.on('response', (h) => resolve(h[':status']));
      req.on('error', (err) => resolve(err));
      req.on('close', () => resolve('closed'));
      req.end();
    });
    session.destroy();
    assert.ok(typeof status !== 'number', `HTTP/2 answered ${String(status)}`);
    assert.equal(await rejected(node, 'eku'), before + 2);
    assert.equal(node.child.exitCode, null, 'the node is still up');
  });

  it('one with clientAuth but no allowed name (a workload certificate, even with CN leaderway-gateway) is refused', async () => {
    const before = await rejected(node, 'name');
    assert.equal(await tlsAccepted(node.clusterPort, workload), false);
    assert.equal(await rejected(node, 'name'), before + 1);
    // Another CA's certificate with the right name and usage fails the handshake itself.
    const stranger = other.issue('stranger', { dns: ['leaderway-gateway'] });
    const handshakes = await rejected(node, 'handshake');
    assert.equal(await tlsAccepted(node.clusterPort, stranger), false);
    await waitFor(async () => (await rejected(node, 'handshake')) > handshakes, 5_000, 'a handshake refusal');
  });

  it('a CIDR-bound AppRole login sent straight to the cluster port with a non-admitted certificate is refused', async () => {
    assert.equal((await api('sys/auth/approle', { body: { type: 'approle' } })).status, 204);
    const role = await api('auth/approle/role/office', {
      body: { token_policies: 'default', secret_id_bound_cidrs: OFFICE, token_bound_cidrs: [OFFICE] },
    });
    assert.equal(role.status, 204, role.text);
    const roleId = String((await api('auth/approle/role/office/role-id')).json.data?.role_id);
    const secretId = String(
      (await api('auth/approle/role/office/secret-id', { body: {} })).json.data?.secret_id,
    );
    const body = { role_id: roleId, secret_id: secretId };
    // Through the gateway from here (127.0.0.1): outside the office.
    assert.equal((await api('auth/approle/login', { token: '', body })).status, 403);
    const claim = { headers: { [CLIENT_ADDR_HEADER]: IN_OFFICE }, body };
    for (const cert of [workload, noEku]) {
      const r = await direct(cert, '/v1/auth/approle/login', claim);
      assert.ok(r instanceof Error, `answered ${String(r)}: the claimed client address was believed`);
    }
    // Positive control: an admitted gateway is believed — which is why admission must be narrow.
    assert.equal(await direct(sibling, '/v1/auth/approle/login', claim), 200);
  });

  it('a CRL revoking the gateway (rewritten while the node runs) refuses it and cuts its open connections', async () => {
    // An open, working connection with the gateway's certificate.
    const open: TLSSocket = connect({
      host: '127.0.0.1',
      port: node.clusterPort,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      cert: gateway.cert,
      key: gateway.key,
    });
    open.on('error', () => {});
    const closed = new Promise<void>((r) => open.once('close', () => r()));
    const answered = new Promise<string>((r) => {
      open.once('data', (d: Buffer) => r(d.toString('latin1')));
      open.once('close', () => r('closed'));
    });
    open.once('secureConnect', () => open.write('GET /v1/sys/health HTTP/1.1\r\nhost: x\r\n\r\n'));
    assert.match(await answered, /^HTTP\/1\.1 200/);

    const before = await rejected(node, 'revoked');
    writeCrl(ca.crl([gateway]));
    await waitFor(
      () => node.logs().some((l) => l.msg === 'gateway CRL loaded' && l.revoked === 1),
      5_000,
      'the new CRL loaded',
    );
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the open connection was not cut')), 5_000),
      ),
    ]);
    assert.equal(await tlsAccepted(node.clusterPort, gateway), false, 'a new connection');
    assert.ok((await rejected(node, 'revoked')) >= before + 2, 'the open one and the new one');
    assert.equal(await tlsAccepted(node.clusterPort, sibling), true, 'another gateway still connects');
    // The revoked gateway's requests are no longer served.
    const r = await call(gw.url, '/v1/secret/data/id', { token });
    assert.equal(r.status, 503, r.text);
  });

  it('a CRL not signed by the gateway CA is refused and the previous one kept', async () => {
    writeCrl(other.crl([]));
    await waitFor(
      () => node.logs().some((l) => l.msg === 'new gateway CRL refused; keeping the one in use'),
      5_000,
      'the bad CRL refused',
    );
    assert.equal(await tlsAccepted(node.clusterPort, gateway), false, 'still revoked');
    assert.equal(await tlsAccepted(node.clusterPort, sibling), true);
  });

  it('at start, a bad or missing CRL, or a blank or bad list of allowed names, stops the node (exit 2)', async () => {
    const badCrl = path.join(ca.dir, 'other.crl');
    writeFileSync(badCrl, other.crl([]));
    const env = {
      PATH: process.env.PATH ?? '',
      LEADERWAY_REDIS_URL: redis.url,
      LEADERWAY_SEAL_KEY: keys.sealKey,
      LEADERWAY_ADVERTISEMENT_KEY: keys.adKey,
      LEADERWAY_ADVERTISEMENT_SIGNING_KEY: keys.signingKey,
      LEADERWAY_GATEWAY_CA_FILE: ca.caFile,
      LEADERWAY_LISTEN_ADDR: `127.0.0.1:${await freePort()}`,
      VAULT_API_ADDR: 'http://127.0.0.1:1',
    };
    for (const [extra, variable] of [
      [{ LEADERWAY_GATEWAY_CRL_FILE: badCrl }, 'LEADERWAY_GATEWAY_CRL_FILE'],
      [{ LEADERWAY_GATEWAY_CRL_FILE: path.join(ca.dir, 'missing.crl') }, 'LEADERWAY_GATEWAY_CRL_FILE'],
      // (An empty variable is unset, as every variable: the default applies.)
      [{ LEADERWAY_GATEWAY_ALLOWED_NAMES: ' ' }, 'LEADERWAY_GATEWAY_ALLOWED_NAMES'],
      [{ LEADERWAY_GATEWAY_ALLOWED_NAMES: 'spiffe://*/ns/vault' }, 'LEADERWAY_GATEWAY_ALLOWED_NAMES'],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, 'server'], {
        env: { ...env, ...extra },
        encoding: 'utf8',
        timeout: 15_000,
      });
      assert.equal(r.status, 2, `${JSON.stringify(extra)}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(variable));
    }
  });
});
