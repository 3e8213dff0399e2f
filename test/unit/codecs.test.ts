/**
 * Pure codecs: the AEAD primitive, the barrier, the leader advertisement, request-path parsing,
 * the standby's redirect target, proxy header filtering and the replayable request body.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseRequest } from '../../node/api/request';
import { Barrier } from '../../node/barrier/barrier';
import { redirectLocation } from '../../node/ha/standby-policy';
import {
  type Advertisement,
  advertisementPath,
  decodeAdvertisement,
  decodeLegacyAdvertisement,
  encodeAdvertisement,
  encodeLegacyAdvertisement,
  legacyAdvertisementPath,
} from '../../shared/advertisement';
import { keyId, open, seal, sealText } from '../../shared/crypto/aead';
import { signingKeyFromSeed, verifyKeyFromRaw } from '../../shared/crypto/signing';
import { isLwError } from '../../shared/errors';
import { downstreamHeaders, rawResponseHeaders, upstreamHeaders } from '../../shared/http/headers';
import { ReplayBudget } from '../../shared/http/replay-budget';
import { ReplayableBody } from '../../shared/http/replayable-body';
import { routeClass } from '../../shared/http/route-class';

const key = (): Buffer => randomBytes(32);

describe('aead', () => {
  const k = key();
  const plain = Buffer.from('the quick brown fox');

  it('round-trips, with a fresh nonce each time', () => {
    const a = seal(k, plain, 'core/x');
    const b = seal(k, plain, 'core/x');
    assert.ok(!a.equals(b), 'two seals of one plaintext differ');
    assert.ok(!a.includes(plain), 'ciphertext does not contain the plaintext');
    assert.deepEqual(open(k, a, 'core/x'), plain);
    assert.deepEqual(open(k, seal(k, Buffer.alloc(0), ''), ''), Buffer.alloc(0));
  });

  it('returns null for a wrong key, wrong associated data, any tampered byte or a short input', () => {
    const sealed = seal(k, plain, 'core/x');
    assert.equal(open(key(), sealed, 'core/x'), null);
    assert.equal(open(k, sealed, 'core/y'), null);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = (bad[i] as number) ^ 0x01;
      assert.equal(open(k, bad, 'core/x'), null, `flipping byte ${i} is detected`);
    }
    assert.equal(open(k, sealed.subarray(0, sealed.length - 1), 'core/x'), null);
    assert.equal(open(k, Buffer.alloc(10), 'core/x'), null);
  });

  it('sealText seals a text as seal seals its UTF-8, a slice at a time, never splitting a surrogate pair', () => {
    const header = Buffer.from([9, 8, 7]);
    const slice = 1 << 20;
    // A pair straddling each slice boundary, multi-byte characters, and texts around one slice.
    const texts = [
      '',
      'plain',
      `${'a'.repeat(slice - 1)}\u{1F511}${'é'.repeat(1000)}\u{1F511}`,
      `${'b'.repeat(slice)}\u00e9`,
      `${'ü'.repeat(2 * slice - 1)}\u{1F511}${'z'.repeat(slice + 1)}`,
    ];
    for (const text of texts) {
      const utf8 = Buffer.from(text, 'utf8');
      const sealed = sealText(k, text, 'core/t', header);
      assert.deepEqual(sealed.subarray(0, 3), header);
      assert.equal(sealed.length, 3 + 12 + utf8.length + 16);
      const opened = open(k, sealed.subarray(3), 'core/t');
      assert.ok(opened?.equals(utf8), `text of ${text.length} characters round-trips byte for byte`);
    }
    assert.equal(open(k, sealText(k, 'x', 'core/t').subarray(0), 'core/u'), null, 'bound to its path');
  });

  it('keyId is 4 stable bytes that differ between keys', () => {
    assert.equal(keyId(k).length, 4);
    assert.deepEqual(keyId(Buffer.from(k)), keyId(k));
    assert.notDeepEqual(keyId(key()), keyId(k));
  });
});

describe('Barrier', () => {
  const k1 = key();
  const k2 = key();
  const ring = (activeTerm: number) =>
    new Barrier({
      terms: [
        { term: 1, key: k1 },
        { term: 2, key: k2 },
      ],
      activeTerm,
      hmacKey: key(),
    });

  it('round-trips under the active term and records the term in each entry', () => {
    const b1 = ring(1);
    const e1 = b1.seal('kv/secret/meta/app', Buffer.from('{"a":1}'));
    assert.equal(e1.readUInt32BE(1), 1);
    assert.deepEqual(b1.open('kv/secret/meta/app', e1), Buffer.from('{"a":1}'));
    const b2 = ring(2);
    const e2 = b2.seal('p', Buffer.from('v'));
    assert.equal(e2.readUInt32BE(1), 2);
    // Rotated keyring: an entry of the old term still opens.
    assert.deepEqual(b2.open('kv/secret/meta/app', e1), Buffer.from('{"a":1}'));
  });

  it('refuses an entry moved to another path, tampered, of an unknown term or format', () => {
    const b = ring(1);
    const entry = b.seal('kv/secret/meta/a', Buffer.from('alpha'));
    const corrupt = (e: unknown) => isLwError(e, 'LW_ERR_CORRUPT');
    assert.throws(() => b.open('kv/secret/meta/b', entry), corrupt);
    const tampered = Buffer.from(entry);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0xff;
    assert.throws(() => b.open('kv/secret/meta/a', tampered), corrupt);
    const otherTerm = Buffer.from(entry);
    otherTerm.writeUInt32BE(7, 1);
    assert.throws(() => b.open('kv/secret/meta/a', otherTerm), corrupt);
    const wrongTerm = Buffer.from(entry);
    wrongTerm.writeUInt32BE(2, 1); // a known term, but not the one that sealed it
    assert.throws(() => b.open('kv/secret/meta/a', wrongTerm), corrupt);
    const badVersion = Buffer.from(entry);
    badVersion[0] = 0x01;
    assert.throws(() => b.open('kv/secret/meta/a', badVersion), corrupt);
    assert.throws(() => b.open('kv/secret/meta/a', Buffer.alloc(3)), corrupt);
  });

  it('refuses a keyring without its active term', () => {
    assert.throws(
      () => new Barrier({ terms: [{ term: 1, key: k1 }], activeTerm: 2, hmacKey: key() }),
      (e: unknown) => isLwError(e, 'LW_ERR_CORRUPT'),
    );
  });

  it('hmac is keyed: same input, different keyrings, different digests', () => {
    const a = ring(1);
    assert.equal(a.hmac('token'), a.hmac('token'));
    assert.notEqual(a.hmac('token'), ring(1).hmac('token'));
    assert.match(a.hmac('token'), /^[0-9a-f]{64}$/);
  });
});

describe('advertisement codec', () => {
  const ad = (): Advertisement => ({
    uuid: randomUUID(),
    epoch: 3,
    node_id: 'node-1',
    api_addr: 'http://10.0.0.1:8200',
    cluster_addr: 'https://10.0.0.1:8201',
    cert: randomBytes(64).toString('base64'),
    active_time: new Date().toISOString(),
  });
  const [k1, k2, k3] = [key(), key(), key()];
  const signer = signingKeyFromSeed(randomBytes(32));
  const other = signingKeyFromSeed(randomBytes(32));
  const verify = [verifyKeyFromRaw(signer.publicRaw)];
  /** A well-formed body for `path`, sealed with `k`, signed (or not) as given. */
  const sealed = (path: string, body: unknown, k = k1) =>
    Buffer.concat([Buffer.from([0x02]), keyId(k), seal(k, Buffer.from(JSON.stringify(body)), path)]);

  it('round-trips, carries no private key, and hides every field', () => {
    const a = ad();
    const raw = encodeAdvertisement(a, [k1], signer);
    assert.deepEqual(decodeAdvertisement(raw, advertisementPath(a.uuid), [k1], verify), { ok: true, ad: a });
    for (const v of [a.uuid, a.api_addr, a.cluster_addr, a.node_id, '10.0.0.1']) {
      assert.ok(!raw.includes(Buffer.from(v)), `${v} is not readable in the ciphertext`);
    }
    // Extra fields (a private key someone adds) are not carried.
    const withKey = encodeAdvertisement({ ...a, key: 'secret' } as Advertisement, [k1], signer);
    const d = decodeAdvertisement(withKey, advertisementPath(a.uuid), [k1], verify);
    assert.ok(d.ok && !('key' in d.ad));
  });

  it('rotates keys: the first key encrypts, every listed key decrypts; verify keys rotate too', () => {
    const a = ad();
    const path = advertisementPath(a.uuid);
    const raw = encodeAdvertisement(a, [k2, k1], signer);
    assert.deepEqual(decodeAdvertisement(raw, path, [k1, k2], verify), { ok: true, ad: a });
    assert.deepEqual(decodeAdvertisement(raw, path, [k2], verify), { ok: true, ad: a });
    assert.deepEqual(decodeAdvertisement(raw, path, [k1], verify), { ok: false, reason: 'unknown-key' });
    const both = [verifyKeyFromRaw(other.publicRaw), ...verify];
    assert.deepEqual(decodeAdvertisement(raw, path, [k2], both), { ok: true, ad: a });
  });

  it('refuses what the advertisement key alone can make: unsigned, signed by another key, tampered', () => {
    const a = ad();
    const path = advertisementPath(a.uuid);
    // Whoever holds only the advertisement key (a gateway) can encrypt, but not sign.
    assert.deepEqual(decodeAdvertisement(sealed(path, { ad: a }), path, [k1], verify), {
      ok: false,
      reason: 'unsigned',
    });
    const byOther = encodeAdvertisement(a, [k1], other);
    assert.deepEqual(decodeAdvertisement(byOther, path, [k1], verify), {
      ok: false,
      reason: 'unknown-signer',
    });
    // A real signature, with a field changed afterwards (the address pointed elsewhere).
    const good = JSON.parse(decodeRaw(encodeAdvertisement(a, [k1], signer), path, k1)) as {
      ad: Advertisement;
      sig_key: string;
      sig: string;
    };
    const tampered = sealed(path, { ...good, ad: { ...good.ad, cluster_addr: 'https://evil:8201' } });
    assert.deepEqual(decodeAdvertisement(tampered, path, [k1], verify), {
      ok: false,
      reason: 'bad-signature',
    });
    // The previous format (unsigned, with the key) is refused where the signed one is expected.
    const legacy = encodeLegacyAdvertisement({ ...a, key: 'k' }, [k1]);
    assert.deepEqual(decodeAdvertisement(legacy, path, [k1], verify), { ok: false, reason: 'unsigned' });
  });

  it('rejects an unknown key, a forgery under another key, a moved entry and garbage', () => {
    const a = ad();
    const path = advertisementPath(a.uuid);
    assert.deepEqual(decodeAdvertisement(encodeAdvertisement(a, [k3], signer), path, [k1, k2], verify), {
      ok: false,
      reason: 'unknown-key',
    });
    // A forger who knows k1's (public) key id but not k1 itself.
    const forged = Buffer.concat([Buffer.from([0x02]), keyId(k1), seal(k3, Buffer.from('{}'), path)]);
    assert.deepEqual(decodeAdvertisement(forged, path, [k1], verify), { ok: false, reason: 'decrypt' });
    // The ciphertext copied to another uuid's path: the path is associated data.
    const elsewhere = advertisementPath(randomUUID());
    assert.deepEqual(decodeAdvertisement(encodeAdvertisement(a, [k1], signer), elsewhere, [k1], verify), {
      ok: false,
      reason: 'decrypt',
    });
    // Authentic but malformed contents.
    for (const body of [
      'not json',
      { ad: { ...a, epoch: 0 } },
      { ad: { ...a, cluster_addr: 'http://x:1' } },
    ]) {
      const raw =
        typeof body === 'string'
          ? Buffer.concat([Buffer.from([0x02]), keyId(k1), seal(k1, Buffer.from(body), path)])
          : sealed(path, body);
      assert.deepEqual(decodeAdvertisement(raw, path, [k1], verify), { ok: false, reason: 'schema' });
    }
    for (const garbage of [
      Buffer.alloc(0),
      Buffer.from('{"uuid":"x"}'),
      randomBytes(200),
      Buffer.from([1, 2, 3]),
    ]) {
      assert.equal(decodeAdvertisement(garbage, path, [k1], verify).ok, false);
    }
  });

  it('reads the previous format (legacy mode) with its key, and only at its own path', () => {
    const a = { ...ad(), key: randomBytes(32).toString('base64') };
    const path = legacyAdvertisementPath(a.uuid);
    const raw = encodeLegacyAdvertisement(a, [k1]);
    assert.deepEqual(decodeLegacyAdvertisement(raw, path, [k1]), { ok: true, ad: a });
    assert.equal(decodeLegacyAdvertisement(raw, legacyAdvertisementPath(randomUUID()), [k1]).ok, false);
    assert.equal(decodeLegacyAdvertisement(encodeAdvertisement(a, [k1], signer), path, [k1]).ok, false);
  });
});

/** Opens an advertisement's ciphertext (the test reads what it signs). */
function decodeRaw(raw: Buffer, path: string, k: Buffer): string {
  const plain = open(k, raw.subarray(5), path);
  if (!plain) throw new Error('cannot open');
  return plain.toString('utf8');
}

describe('parseRequest', () => {
  const parse = (url: string, method = 'GET') => parseRequest({ url, method, headers: {} } as never);
  const rejects = (url: string, status: number, what: RegExp) =>
    assert.throws(
      () => parse(url),
      (e: unknown) => isLwError(e) && e.status === status && what.test(e.message),
      url,
    );

  it('decodes a normal path and keeps the raw URL for redirects', () => {
    const r = parse('/v1/secret/data/my%20app?version=2');
    assert.equal(r.path, 'secret/data/my app');
    assert.equal(r.operation, 'read');
    assert.equal(r.query.get('version'), '2');
    assert.equal(r.url, '/v1/secret/data/my%20app?version=2');
    assert.equal(parse('/v1/secret/data/x', 'PUT').operation, 'write');
    assert.equal(parse('/v1/secret/data/x', 'POST').operation, 'write');
    assert.equal(parse('/v1/secret/data/x', 'DELETE').operation, 'delete');
    assert.equal(parse('/v1/sys/health', 'HEAD').operation, 'head');
    assert.equal(parse('/v1/x', 'BREW').operation, null);
  });

  it('maps ?list=true (and LIST) to the list operation, only for reads', () => {
    const r = parse('/v1/secret/metadata/?list=true');
    assert.equal(r.operation, 'list');
    assert.equal(r.path, 'secret/metadata');
    assert.equal(r.trailingSlash, true);
    assert.equal(parse('/v1/secret/metadata?list=1').operation, 'list');
    assert.equal(parse('/v1/secret/metadata?list=false').operation, 'read');
    assert.equal(parse('/v1/secret/metadata/', 'LIST').operation, 'list');
    assert.equal(parse('/v1/secret/metadata?list=true', 'POST').operation, 'write');
  });

  it('rejects . and .., raw or percent-encoded', () => {
    for (const url of [
      '/v1/secret/../sys/init',
      '/v1/secret/./x',
      '/v1/secret/%2e%2e/x',
      '/v1/secret/data/%2E',
    ]) {
      rejects(url, 400, /\. or \.\./);
    }
    assert.equal(parse('/v1/secret/data/a..b').path, 'secret/data/a..b', 'dots inside a name are fine');
  });

  it('rejects empty segments, NUL, control characters and encoded separators', () => {
    rejects('/v1/secret//x', 400, /empty segment/);
    rejects('/v1//secret', 400, /empty segment/);
    for (const url of [
      '/v1/secret/%00x',
      '/v1/secret/a\x01b',
      '/v1/secret/%0a',
      '/v1/secret/%7f',
      '/v1/secret/%2F',
      '/v1/secret/a%5Cb',
    ]) {
      rejects(url, 400, /invalid character/);
    }
  });

  it('rejects a segment over 512 bytes (counted after decoding, in UTF-8)', () => {
    assert.equal(parse(`/v1/secret/${'a'.repeat(512)}`).path.length, 'secret/'.length + 512);
    rejects(`/v1/secret/${'a'.repeat(513)}`, 400, /longer than 512 bytes/);
    rejects(`/v1/secret/${encodeURIComponent('é'.repeat(257))}`, 400, /longer than 512 bytes/);
    rejects(`/v1/${'a/'.repeat(2100)}x`, 400, /too long/);
  });

  it('rejects bad percent-encoding', () => {
    for (const url of ['/v1/secret/%zz', '/v1/secret/%E0%A4%A', '/v1/secret/%', '/v1/secret/%C3']) {
      rejects(url, 400, /percent-encoding/);
    }
  });

  it('answers 404 outside /v1/', () => {
    rejects('/v2/secret', 404, /unsupported path/);
    rejects('/v1', 404, /unsupported path/);
    rejects('/', 404, /unsupported path/);
  });
});

describe('redirectLocation', () => {
  it('keeps scheme and host of api_addr, and the original path with its raw query', () => {
    assert.equal(
      redirectLocation('https://vault.example.com:8200', '/v1/secret/data/x?version=2&list=true'),
      'https://vault.example.com:8200/v1/secret/data/x?version=2&list=true',
    );
    // A path on api_addr is not prefixed; encoded bytes in the URL are not re-encoded.
    assert.equal(
      redirectLocation('http://10.0.0.2:8200/ignored/', '/v1/secret/data/a%20b?x=%2F'),
      'http://10.0.0.2:8200/v1/secret/data/a%20b?x=%2F',
    );
    assert.equal(
      redirectLocation('https://[::1]:8200', '/v1/sys/ha-status'),
      'https://[::1]:8200/v1/sys/ha-status',
    );
    assert.equal(redirectLocation('https://vault.example.com', 'v1/x'), 'https://vault.example.com/v1/x');
  });
});

describe('header filtering', () => {
  const fwd = {
    remoteAddress: '192.0.2.9',
    proto: 'https' as const,
    host: 'vault.example.com',
    trustClientForwarded: false,
  };
  const asMap = (flat: string[]): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (let i = 0; i < flat.length; i += 2) {
      const k = flat[i] as string;
      m.set(k, [...(m.get(k) ?? []), flat[i + 1] as string]);
    }
    return m;
  };
  const incoming: IncomingHttpHeaders = {
    host: 'vault.example.com',
    connection: 'keep-alive, X-Secret-Hop',
    'keep-alive': 'timeout=5',
    'x-secret-hop': 'drop me',
    'transfer-encoding': 'chunked',
    te: 'trailers',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic abc',
    'x-vault-token': 'hvs.abc',
    'content-type': 'application/json',
    'x-forwarded-for': '203.0.113.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'evil.example.com',
    forwarded: 'for=203.0.113.1',
    'x-leaderway-not-served': 'LW_ERR_NOT_ACTIVE',
    'x-leaderway-anything': '1',
    'set-cookie': ['a=1', 'b=2'],
  };

  it('drops hop-by-hop headers (also those named in Connection) and internal ones', () => {
    const out = asMap(upstreamHeaders(incoming, fwd));
    for (const h of [
      'host',
      'connection',
      'keep-alive',
      'x-secret-hop',
      'transfer-encoding',
      'te',
      'upgrade',
      'proxy-authorization',
      'x-leaderway-not-served',
      'x-leaderway-anything',
    ]) {
      assert.ok(!out.has(h), `${h} is dropped`);
    }
    assert.deepEqual(out.get('x-vault-token'), ['hvs.abc']);
    assert.deepEqual(out.get('content-type'), ['application/json']);
    assert.deepEqual(out.get('set-cookie'), ['a=1', 'b=2']);
  });

  it('replaces untrusted X-Forwarded-* with what this hop saw', () => {
    const out = asMap(upstreamHeaders(incoming, fwd));
    assert.deepEqual(out.get('x-forwarded-for'), ['192.0.2.9']);
    assert.deepEqual(out.get('x-forwarded-proto'), ['https']);
    assert.deepEqual(out.get('x-forwarded-host'), ['vault.example.com']);
    assert.ok(!out.has('forwarded'));
  });

  it('keeps and appends to X-Forwarded-* from a trusted proxy', () => {
    const out = asMap(upstreamHeaders(incoming, { ...fwd, trustClientForwarded: true }, { 'x-extra': '1' }));
    assert.deepEqual(out.get('x-forwarded-for'), ['203.0.113.1, 192.0.2.9']);
    assert.deepEqual(out.get('x-forwarded-proto'), ['http']);
    assert.deepEqual(out.get('x-forwarded-host'), ['evil.example.com']);
    assert.deepEqual(out.get('forwarded'), ['for=203.0.113.1']);
    assert.deepEqual(out.get('x-extra'), ['1']);
  });

  it('tells the node the client address: the peer, or the right-most untrusted hop behind trusted proxies', () => {
    const addr = (xff: string | undefined, trust: boolean, trustedHops: string[] = []) =>
      asMap(
        upstreamHeaders(
          { ...incoming, 'x-forwarded-for': xff },
          { ...fwd, trustClientForwarded: trust, isTrusted: (a) => trustedHops.includes(a) },
        ),
      ).get('x-leaderway-client-addr');
    assert.deepEqual(addr('203.0.113.1', false), ['192.0.2.9'], 'an untrusted peer is the client');
    assert.deepEqual(addr('203.0.113.1', true), ['203.0.113.1']);
    // A client-chosen left-most entry is not believed: the load balancer appended the real one.
    assert.deepEqual(addr('6.6.6.6, 203.0.113.1', true), ['203.0.113.1']);
    assert.deepEqual(addr('6.6.6.6, 203.0.113.1, 10.0.0.2', true, ['10.0.0.2']), ['203.0.113.1']);
    assert.deepEqual(addr('10.0.0.3, 10.0.0.2', true, ['10.0.0.2', '10.0.0.3']), ['10.0.0.3']);
    assert.deepEqual(addr(undefined, true), ['192.0.2.9']);
    // A client cannot send the header itself.
    const forged = asMap(upstreamHeaders({ ...incoming, 'x-leaderway-client-addr': '1.2.3.4' }, fwd));
    assert.deepEqual(forged.get('x-leaderway-client-addr'), ['192.0.2.9']);
  });

  it('filters responses the same way', () => {
    const out = downstreamHeaders({
      connection: 'close, X-Hop',
      'x-hop': '1',
      'transfer-encoding': 'chunked',
      'keep-alive': 'timeout=5',
      'x-leaderway-not-served': 'LW_ERR_DRAINING',
      'content-type': 'application/json',
      'cache-control': 'no-store',
      location: 'http://x/v1/y',
    });
    assert.deepEqual(out, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      location: 'http://x/v1/y',
    });
  });

  it('filters raw response headers (as undici hands them over) the same way, in one flat list', () => {
    const raw = [
      ['Connection', 'close, X-Hop'],
      ['X-Hop', '1'],
      ['Transfer-Encoding', 'chunked'],
      ['Keep-Alive', 'timeout=5'],
      ['X-Leaderway-Not-Served', 'LW_ERR_DRAINING'],
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['Location', 'http://x/v1/y'],
    ].flatMap(([k, v]) => [Buffer.from(k as string), Buffer.from(v as string, 'latin1')]);
    assert.deepEqual(rawResponseHeaders(raw), {
      pass: [
        'content-type',
        'application/json',
        'set-cookie',
        'a=1',
        'set-cookie',
        'b=2',
        'location',
        'http://x/v1/y',
      ],
      notServed: 'LW_ERR_DRAINING',
      location: 'http://x/v1/y',
    });
    // Bytes outside ASCII survive (latin1 both ways, as Node writes header strings).
    const v = rawResponseHeaders([Buffer.from('x-name'), Buffer.from([0xe9])]).pass[1] as string;
    assert.deepEqual(Buffer.from(v, 'latin1'), Buffer.from([0xe9]));
  });

  it('classifies routes for metrics into a bounded set', () => {
    const cases: Array<[string | undefined, string]> = [
      ['/v1/secret/data/app?version=2', 'secret/data'],
      ['/v1/secret/data', 'secret/data'],
      ['/v1/sys/health?standbyok=true', 'sys/health'],
      ['/v1/sys/health/', 'sys/health'],
      ['/v1/sys', 'other'],
      ['/v1/sys?x=/y/z', 'other'],
      ['/v1/secret?data/x', 'other'],
      ['/v1/random/path', 'other'],
      ['/v2/sys/health', 'other'],
      [undefined, 'other'],
    ];
    for (const [url, route] of cases) assert.equal(routeClass(url), route, String(url));
  });
});

describe('ReplayableBody', () => {
  const collect = async (s: Readable): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts);
  };
  const chunks = (n: number, size: number): Buffer[] => Array.from({ length: n }, () => randomBytes(size));
  const tick = () => new Promise((r) => setTimeout(r, 10));

  it('replays identical bytes on a second stream, after a full or a partial first attempt', async () => {
    const parts = chunks(8, 1000);
    const whole = Buffer.concat(parts);
    const body = new ReplayableBody(Readable.from(parts), { cap: 64 * 1024 });
    assert.deepEqual(await collect(body.stream()), whole);
    assert.ok(body.replayable());
    assert.deepEqual(await collect(body.stream()), whole);

    const partial = new ReplayableBody(Readable.from(parts), { cap: 64 * 1024 });
    const first = partial.stream();
    const got: Buffer[] = [];
    for await (const c of first) {
      got.push(c as Buffer);
      if (got.length === 3) break; // the attempt is abandoned part-way
    }
    assert.ok(partial.replayable());
    assert.deepEqual(await collect(partial.stream()), whole);
  });

  it('hands attempts the copy itself once the whole body is held, a stream before', async () => {
    const parts = chunks(8, 1000);
    const whole = Buffer.concat(parts);
    const joined = (b: Buffer | Iterable<Buffer> | Readable) =>
      Buffer.isBuffer(b) ? b : Buffer.concat([...(b as Iterable<Buffer>)]);
    const body = new ReplayableBody(Readable.from(parts), { cap: 64 * 1024 });
    assert.ok(body.forAttempt() instanceof Readable, 'not read yet: a stream');
    const held = new ReplayableBody(Readable.from(parts), { cap: 64 * 1024 });
    assert.equal(await held.prefetch(), true);
    const first = held.forAttempt();
    assert.ok(Array.isArray(first), 'several chunks: the chunks themselves, no copy');
    assert.deepEqual(joined(first), whole);
    assert.deepEqual(joined(held.forAttempt()), whole, 'again for a retry');
    assert.deepEqual(await collect(held.stream()), whole);
    const one = new ReplayableBody(Readable.from([whole]), { cap: 64 * 1024 });
    await one.prefetch();
    assert.ok(Buffer.isBuffer(one.forAttempt()), 'one chunk: a Buffer');
    const big = new ReplayableBody(Readable.from(parts), { cap: 4500 });
    assert.equal(await big.prefetch(), false);
    assert.ok(big.forAttempt() instanceof Readable, 'over the cap: a stream');
  });

  it('over the cap: replayable until a byte is taken, not after; the copy is dropped', async () => {
    const parts = chunks(10, 1000);
    const body = new ReplayableBody(Readable.from(parts), { cap: 4500 });
    assert.ok(body.replayable(), 'nothing taken yet');
    const first = body.stream();
    assert.deepEqual(await collect(first), Buffer.concat(parts), 'the one attempt still gets every byte');
    assert.equal(body.replayable(), false);
    assert.throws(() => body.stream(), /not replayable/);
    // Memory stays flat however large the body: nothing is kept once past the cap.
    assert.equal((body as unknown as { chunks: Buffer[] }).chunks.length, 0);

    const exact = new ReplayableBody(Readable.from(chunks(4, 1000)), { cap: 4000 });
    await collect(exact.stream());
    assert.ok(exact.replayable(), 'a body of exactly the cap stays replayable');
  });

  it('prefetch reads a small body whole before any attempt; a large one keeps its first overflow chunk', async () => {
    const parts = chunks(4, 1000);
    const small = new ReplayableBody(Readable.from(parts), { cap: 64 * 1024 });
    assert.equal(await small.prefetch(), true);
    assert.deepEqual(await collect(small.stream()), Buffer.concat(parts));
    assert.deepEqual(await collect(small.stream()), Buffer.concat(parts), 'still replayable');

    const big = chunks(10, 1000);
    const large = new ReplayableBody(Readable.from(big), { cap: 4500 });
    assert.equal(await large.prefetch(), false, 'did not fit');
    assert.ok(large.replayable(), 'no uncopied byte was sent yet');
    assert.deepEqual(
      await collect(large.stream()),
      Buffer.concat(big),
      'the attempt gets every byte, in order',
    );
    assert.equal(large.replayable(), false);
  });

  it('one client cannot use up the budget: its share runs out, other clients still get copies', async () => {
    const budget = new ReplayBudget({
      total: 10_000,
      smallReserve: 0,
      perAddress: { small: 0, large: 3_000 },
      perConnection: 10_000,
    });
    const held: ReplayableBody[] = [];
    for (let i = 0; i < 3; i++) {
      const b = new ReplayableBody(Readable.from(chunks(1, 1000)), { budget, client: 'attacker' });
      assert.equal(await b.prefetch(), true, `body ${i} fits the share`);
      held.push(b);
    }
    const over = new ReplayableBody(Readable.from(chunks(1, 1000)), { budget, client: 'attacker' });
    assert.equal(await over.prefetch(), false, 'the fourth is past the attacker’s share');
    const other = new ReplayableBody(Readable.from(chunks(1, 1000)), { budget, client: 'someone-else' });
    assert.equal(await other.prefetch(), true, 'another client still gets a copy');
    assert.equal(budget.held(), 4000);
    for (const b of [...held, over, other]) b.dispose();
    assert.equal(budget.held(), 0, 'every byte went back');
  });

  it('fails the new attempt, never sends a hole, when an abandoned attempt takes the chunk past the cap', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('aaaa');
      yield Buffer.from('bbbb');
      await gate; // the client is slow: the next chunk arrives after the attempt was abandoned
      yield Buffer.from('cccccccc');
      yield Buffer.from('dd');
    }
    const body = new ReplayableBody(source(), { cap: 10 });
    const first = body.stream();
    first.on('data', () => {});
    await tick();
    first.destroy(); // e.g. the leader died mid-request
    assert.ok(body.replayable());
    const second = body.stream();
    const got: Buffer[] = [];
    const outcome = new Promise<Error | null>((resolve) => {
      second.on('data', (c: Buffer) => got.push(c));
      second.on('error', resolve);
      second.on('end', () => resolve(null));
    });
    await tick();
    release();
    const err = await outcome;
    assert.ok(err instanceof Error, `the retry must fail, but it sent "${Buffer.concat(got).toString()}"`);
    assert.equal(body.replayable(), false);
  });
});
