/** LEADERWAY_GATEWAY_ALLOWED_NAMES: the patterns, and which certificate names they allow. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allowedName,
  type CertificateNames,
  certificateNames,
  DEFAULT_GATEWAY_NAME,
  parseNamePatterns,
} from '../../node/ha/gateway-names';
import { nodeSchema } from '../../shared/config/node-schema';

/** Whether `patterns` allow a certificate with these SANs. */
function allows(patterns: string, names: Partial<CertificateNames>): boolean {
  return allowedName(parseNamePatterns(patterns), { dns: [], uri: [], ...names }) !== null;
}

describe('gateway name patterns', () => {
  it('the default is what leaderway dev and make-secrets.sh issue', () => {
    assert.equal(nodeSchema.gateway_allowed_names.default, DEFAULT_GATEWAY_NAME);
    assert.ok(allows(DEFAULT_GATEWAY_NAME, { dns: ['leaderway-gateway'] }));
    assert.ok(allows(DEFAULT_GATEWAY_NAME, { dns: ['LeaderWay-Gateway'] }), 'DNS is case-insensitive');
    assert.ok(!allows(DEFAULT_GATEWAY_NAME, { dns: ['leaderway-gateway.evil.example'] }));
    assert.ok(!allows(DEFAULT_GATEWAY_NAME, { dns: ['leaderway-gateway2'] }));
    assert.ok(!allows(DEFAULT_GATEWAY_NAME, { uri: ['leaderway-gateway'] }), 'a DNS pattern is not a URI');
  });

  it('* is one or more characters within one DNS label', () => {
    const p = '*.gateways.example.org';
    assert.ok(allows(p, { dns: ['gw-1.gateways.example.org'] }));
    assert.ok(!allows(p, { dns: ['gateways.example.org'] }), 'not an empty label');
    assert.ok(!allows(p, { dns: ['a.b.gateways.example.org'] }), 'not across a dot');
    assert.ok(!allows(p, { dns: ['gw.gateways.example.org.evil'] }));
    assert.ok(allows('gw-*.example.org', { dns: ['gw-eu1.example.org'] }));
    assert.ok(!allows('gw-*.example.org', { dns: ['gw-.example.org'] }), 'one or more');
    assert.ok(!allows('gw-*.example.org', { dns: ['xgw-1.example.org'] }), 'anchored');
  });

  it('certificate names are literal: a wildcard certificate is nobody', () => {
    assert.ok(!allows('*.example.org', { dns: ['*.example.org'] }));
    assert.ok(!allows('*', { dns: ['*'] }));
    assert.ok(allows('*', { dns: ['gateway'] }));
  });

  it('URI patterns (SPIFFE IDs): * in the path only, one segment, exact case', () => {
    const id = 'spiffe://example.org/ns/vault/sa/leaderway-gateway';
    assert.ok(allows(id, { uri: [id] }));
    assert.ok(!allows(id, { dns: [id] }));
    assert.ok(!allows(id, { uri: [`${id}/x`] }));
    assert.ok(!allows(id, { uri: ['spiffe://example.org/ns/vault/sa/Leaderway-Gateway'] }), 'path case');
    assert.ok(allows(id, { uri: ['SPIFFE://Example.ORG/ns/vault/sa/leaderway-gateway'] }), 'scheme, host');
    assert.ok(!allows(id, { uri: ['spiffe://example.org.evil/ns/vault/sa/leaderway-gateway'] }));
    assert.ok(!allows(id, { uri: [`${id}?x=1`] }), 'no query');
    assert.ok(!allows(id, { uri: ['spiffe://u@example.org/ns/vault/sa/leaderway-gateway'] }), 'no user info');
    const ns = 'spiffe://example.org/ns/*/sa/leaderway-gateway';
    assert.ok(allows(ns, { uri: ['spiffe://example.org/ns/team-a/sa/leaderway-gateway'] }));
    assert.ok(!allows(ns, { uri: ['spiffe://example.org/ns/a/b/sa/leaderway-gateway'] }), 'one segment');
    assert.ok(!allows(ns, { uri: ['spiffe://example.org/ns//sa/leaderway-gateway'] }), 'not empty');
  });

  it('a list allows a name any pattern allows', () => {
    const list = 'leaderway-gateway, spiffe://example.org/ns/vault/sa/leaderway-gateway';
    assert.ok(allows(list, { dns: ['web'], uri: ['spiffe://example.org/ns/vault/sa/leaderway-gateway'] }));
    assert.ok(allows(list, { dns: ['leaderway-gateway'] }));
    assert.ok(!allows(list, { dns: ['web'], uri: ['spiffe://example.org/ns/apps/sa/web'] }));
    assert.ok(!allows('', { dns: ['leaderway-gateway'] }), 'an empty list allows nothing');
  });

  it('refuses patterns that are wrong or would reach past the path', () => {
    for (const bad of [
      'a,,b',
      'spiffe://*/ns/vault',
      'spiffe://example.*/x',
      '*://example.org/x',
      'spiffe://example.org/ns//x',
      'spiffe://example.org/x?y',
      'gw..example.org',
      'gw.example.org.',
      'gw/1',
      '**.example.org',
    ]) {
      assert.throws(() => parseNamePatterns(bad), Error, bad);
    }
  });

  it("reads Node's subjectAltName string, quoted values included", () => {
    assert.deepEqual(
      certificateNames(
        'DNS:leaderway-gateway, IP Address:10.0.0.1, URI:spiffe://example.org/ns/a/sa/b, email:a@b',
      ),
      { dns: ['leaderway-gateway'], uri: ['spiffe://example.org/ns/a/sa/b'] },
    );
    // A value holding a comma is quoted (and the comma escaped) by Node: one name, not two.
    const quoted = certificateNames('DNS:"evil\\u002c DNS:leaderway-gateway", DNS:web');
    assert.deepEqual(quoted, { dns: ['evil, DNS:leaderway-gateway', 'web'], uri: [] });
    assert.ok(!allowedName(parseNamePatterns(DEFAULT_GATEWAY_NAME), quoted));
    assert.deepEqual(certificateNames(undefined), { dns: [], uri: [] });
  });
});
