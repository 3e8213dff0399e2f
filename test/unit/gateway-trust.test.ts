/**
 * Which certificates the cluster listener admits as gateways (GatewayTrust) and the CRL reader,
 * against certificates and CRLs made by openssl as an operator's PKI makes them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { normalizeSerial, parseCrlFile } from '../../node/ha/gateway-crl';
import { parseNamePatterns } from '../../node/ha/gateway-names';
import { GatewayTrust } from '../../node/ha/gateway-trust';
import { ConfigError } from '../../shared/config/load';
import { type IssuedCert, TestGatewayCa } from '../helpers/gateway-ca';

describe('gateway admission', () => {
  let ca: TestGatewayCa;
  let other: TestGatewayCa;
  let good: IssuedCert;
  let good2: IssuedCert;
  let crlFile = '';
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => logs.push(JSON.parse(l)) });
  const x509 = (c: IssuedCert) => new X509Certificate(c.cert);
  const trust = (o: { crl?: string; names?: string; caFile?: string } = {}) => {
    if (o.crl !== undefined) writeFileSync(crlFile, o.crl);
    return new GatewayTrust(
      {
        caFile: o.caFile ?? ca.caFile,
        allowedNames: parseNamePatterns(o.names ?? 'leaderway-gateway'),
        crlFile: o.crl !== undefined ? crlFile : null,
      },
      log,
    );
  };

  before(() => {
    ca = TestGatewayCa.create();
    // Same CN as the real one: a lookalike CA, as a second make-secrets.sh run would make.
    other = TestGatewayCa.create();
    good = ca.issue('good', { dns: ['leaderway-gateway'] });
    good2 = ca.issue('good2', { dns: ['leaderway-gateway'] });
    crlFile = path.join(ca.dir, 'gateways.crl');
  });
  after(() => {
    ca?.remove();
    other?.remove();
  });

  it('admits a clientAuth certificate of the CA with an allowed name, and nothing else', () => {
    const t = trust().forTerm();
    assert.equal(t.refusal(x509(good)), null);
    assert.equal(t.refusal(x509(ca.issue('no-eku', { dns: ['leaderway-gateway'], eku: null }))), 'eku');
    assert.equal(
      t.refusal(x509(ca.issue('server', { dns: ['leaderway-gateway'], eku: 'serverAuth' }))),
      'eku',
    );
    const workload = ca.issue('workload', {
      dns: ['web.apps.svc'],
      uri: ['spiffe://example.org/ns/apps/sa/web'],
    });
    assert.equal(t.refusal(x509(workload)), 'name');
    assert.equal(t.refusal(x509(ca.issue('cn-only', { cn: 'leaderway-gateway' }))), 'name', 'no CN fallback');
    assert.equal(t.refusal(x509(other.issue('stranger', { dns: ['leaderway-gateway'] }))), 'issuer');
    const spiffe = 'spiffe://example.org/ns/vault/sa/leaderway-gateway';
    const t2 = trust({ names: `leaderway-gateway,${spiffe}` }).forTerm();
    assert.equal(t2.refusal(x509(ca.issue('spiffe', { uri: [spiffe] }))), null);
    assert.equal(t2.refusal(x509(workload)), 'name');
  });

  it('refuses a revoked certificate; a CRL file covers only the issuers it has a CRL from', () => {
    const t = trust({ crl: ca.crl([good]) });
    const term = t.forTerm();
    assert.equal(term.refusal(x509(good)), 'revoked');
    assert.equal(term.refusal(x509(good2)), null, 'another certificate of the CA');
    // A bundle of two CAs (a rotation) and a CRL from one: the other's certificates are refused.
    const bundle = path.join(ca.dir, 'bundle.pem');
    writeFileSync(bundle, ca.caPem + other.caPem);
    const both = trust({ crl: ca.crl([good]), caFile: bundle }).forTerm();
    assert.equal(both.refusal(x509(other.issue('other-gw', { dns: ['leaderway-gateway'] }))), 'crl_missing');
    assert.equal(both.refusal(x509(good2)), null);
  });

  it('keeps the CRL bound when the CA certificate is renewed with the same key', () => {
    const caFile = path.join(ca.dir, 'renewing-ca.crt');
    writeFileSync(caFile, ca.caPem);
    const t = trust({ crl: ca.crl([good]), caFile });
    assert.equal(t.forTerm().refusal(x509(good2)), null);
    // The same subject and key, a new certificate (a new fingerprint), as a CA renewal makes it.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-sha256',
        '-days',
        '30',
        '-subj',
        `/CN=${ca.cn}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-out',
        caFile,
      ],
      { cwd: ca.dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const renewed = t.forTerm();
    assert.equal(
      renewed.refusal(x509(good2)),
      null,
      'not crl_missing: the CRL verifies under the renewed certificate',
    );
    assert.equal(renewed.refusal(x509(good)), 'revoked');
  });

  it('reloads a changed CRL, tells the listener, and keeps the old one when the new one is bad', () => {
    const t = trust({ crl: ca.crl([]) });
    const term = t.forTerm();
    let changes = 0;
    const unsubscribe = term.onRevocationsChanged(() => changes++);
    assert.equal(term.refusal(x509(good)), null);
    writeFileSync(crlFile, ca.crl([good]));
    assert.equal(t.reloadCrl(), true);
    assert.equal(changes, 1);
    assert.equal(term.refusal(x509(good)), 'revoked', 'an open term sees the new list');
    assert.equal(t.reloadCrl(), true, 'unchanged');
    assert.equal(changes, 1);
    logs.length = 0;
    for (const bad of [other.crl([]), 'garbage', '']) {
      writeFileSync(crlFile, bad);
      assert.equal(t.reloadCrl(), false);
      assert.equal(term.refusal(x509(good)), 'revoked', 'the previous list stays');
    }
    assert.equal(changes, 1);
    assert.equal(logs.filter((l) => l.msg === 'new gateway CRL refused; keeping the one in use').length, 3);
    unsubscribe();
  });

  it('at start, a bad CRL or CA file is a configuration error naming the variable', () => {
    for (const bad of [other.crl([]), 'garbage', ca.crl([], { criticalIdp: true })]) {
      assert.throws(
        () => trust({ crl: bad }),
        (e: unknown) => e instanceof ConfigError && /LEADERWAY_GATEWAY_CRL_FILE/.test(e.message),
      );
    }
    assert.throws(
      () => trust({ caFile: path.join(ca.dir, 'missing.pem') }),
      (e: unknown) => e instanceof ConfigError && /LEADERWAY_GATEWAY_CA_FILE/.test(e.message),
    );
  });
});

describe('CRL reader', () => {
  let ca: TestGatewayCa;
  before(() => {
    ca = TestGatewayCa.create();
  });
  after(() => ca?.remove());

  it('reads the serials openssl wrote, and only from a CRL the CA signed', () => {
    const certs = Array.from({ length: 5 }, (_, i) => ca.issue(`c${i}`, { dns: ['leaderway-gateway'] }));
    const pem = ca.crl(certs.slice(0, 4));
    const caCert = new X509Certificate(ca.caPem);
    const list = parseCrlFile(pem, [caCert]);
    const text = execFileSync('openssl', ['crl', '-noout', '-text'], { input: pem }).toString();
    const fromOpenssl = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
      normalizeSerial(m[1] as string),
    );
    assert.equal(fromOpenssl.length, 4);
    assert.deepEqual([...(list.revoked.get(caCert.fingerprint256) ?? [])].sort(), fromOpenssl.sort());
    assert.deepEqual(
      [...(list.revoked.get(caCert.fingerprint256) ?? [])].sort(),
      certs
        .slice(0, 4)
        .map((c) => normalizeSerial(new X509Certificate(c.cert).serialNumber))
        .sort(),
    );
    // Every single-byte change to the DER is refused (signature or structure), never misread.
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    for (let i = 0; i < der.length; i += 7) {
      const tampered = Buffer.from(der);
      tampered[i] = (tampered[i] as number) ^ 0x01;
      const b64 = tampered.toString('base64');
      assert.throws(() =>
        parseCrlFile(`-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n`, [caCert]),
      );
    }
    assert.throws(() => parseCrlFile(pem, []), /not signed by a certificate of the gateway CA bundle/);
    assert.throws(
      () => parseCrlFile(ca.crl([], { criticalIdp: true }), [caCert]),
      /critical extension 2\.5\.29\.28/,
    );
    assert.throws(() => parseCrlFile(ca.caPem, [caCert]), /no "-----BEGIN X509 CRL-----" block/);
  });
});
