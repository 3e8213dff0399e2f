/**
 * The PROXY protocol parser (shared/http/proxy-protocol.ts): headers built by another
 * implementation (proxy-protocol-js) parse to the address they carry, at the length they have,
 * whatever follows and however they are cut; seeded garbage and mutated headers never crash it,
 * never claim more bytes than they have, and never yield an address that is not an IP. Real
 * connections through HAProxy are in test/integration/load-balancer.test.ts.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import * as pp from 'proxy-protocol-js';
import { parseProxyHeader } from '../../shared/http/proxy-protocol';
import { type Rng, rng } from '../chaos/rng';

const SEED = 1_234_567;

function v4(r: Rng): [number, number, number, number] {
  return [r.int(0, 255), r.int(0, 255), r.int(0, 255), r.int(0, 255)];
}
function v6(r: Rng): number[] {
  return Array.from({ length: 16 }, () => (r.chance(0.3) ? 0 : r.int(0, 255)));
}

/** A header from the reference encoder, and what it carries. */
function reference(r: Rng): { bytes: Buffer; address: string | null; port: number } {
  const port = r.int(0, 65535);
  const kind = r.int(0, 4);
  if (kind === 0) {
    const a = v4(r).join('.');
    const text = new pp.V1ProxyProtocol(
      pp.INETProtocol.TCP4,
      new pp.Peer(a, port),
      new pp.Peer('10.0.0.1', 443),
    ).build();
    return { bytes: Buffer.from(text), address: a, port };
  }
  if (kind === 1) {
    const src = v4(r);
    const proto = new pp.V2ProxyProtocol(
      pp.Command.PROXY,
      pp.TransportProtocol.STREAM,
      new pp.IPv4ProxyAddress(
        pp.IPv4Address.createFrom(src),
        port,
        pp.IPv4Address.createFrom([10, 0, 0, 1]),
        443,
      ),
    );
    return { bytes: Buffer.from(proto.build()), address: src.join('.'), port };
  }
  if (kind === 2) {
    const src = v6(r);
    const proto = new pp.V2ProxyProtocol(
      pp.Command.PROXY,
      pp.TransportProtocol.STREAM,
      new pp.IPv6ProxyAddress(
        pp.IPv6Address.createFrom(src),
        port,
        pp.IPv6Address.createFrom(Array(16).fill(0)),
        443,
      ),
    );
    const groups = Array.from(
      { length: 8 },
      (_, i) => ((src[2 * i] as number) << 8) | (src[2 * i + 1] as number),
    );
    // Node's canonical form, for comparison: let the URL parser compact it.
    const text = new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]`).hostname.slice(1, -1);
    return { bytes: Buffer.from(proto.build()), address: text, port };
  }
  if (kind === 3) {
    const proto = new pp.V2ProxyProtocol(
      pp.Command.LOCAL,
      pp.TransportProtocol.UNSPEC,
      new pp.UnspecProxyAddress(),
    );
    return { bytes: Buffer.from(proto.build()), address: null, port: 0 };
  }
  return { bytes: Buffer.from('PROXY UNKNOWN\r\n'), address: null, port: 0 };
}

describe('PROXY protocol parser', () => {
  it('parses what another implementation builds, cut anywhere, with anything after it', () => {
    const r = rng(SEED);
    for (let n = 0; n < 2_000; n++) {
      const h = reference(r);
      const rest = Buffer.from(r.pick(['GET / HTTP/1.1\r\n\r\n', '\x16\x03\x01', 'PROXY TCP4 6.6.6.6', '']));
      const all = Buffer.concat([h.bytes, rest]);
      // Every strict prefix of the header asks for more.
      const cut = r.int(0, h.bytes.length - 1);
      assert.deepEqual(
        parseProxyHeader(all.subarray(0, cut)).state,
        'more',
        `cut at ${cut}: ${all.toString('latin1')}`,
      );
      const parsed = parseProxyHeader(all);
      assert.equal(parsed.state, 'header', JSON.stringify(parsed));
      if (parsed.state !== 'header') continue;
      assert.equal(parsed.length, h.bytes.length);
      if (h.address === null) assert.equal(parsed.header.address, null);
      else assert.deepEqual(parsed.header, { address: h.address, port: h.port });
    }
  });

  it('says "no header" for HTTP and TLS openings, and refuses malformed headers', () => {
    for (const s of ['GET / HTTP/1.1\r\n', 'POST /v1/x', 'PUT /', 'PATCH /', '\x16\x03\x01\x02']) {
      assert.equal(parseProxyHeader(Buffer.from(s, 'latin1')).state, 'none', s);
    }
    assert.equal(parseProxyHeader(Buffer.from('P')).state, 'more');
    assert.equal(parseProxyHeader(Buffer.from('PROX')).state, 'more');
    for (const bad of [
      'PROXY TCP4 999.1.2.3 10.0.0.1 1 2\r\n',
      'PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n',
      'PROXY TCP4 ::1 ::2 1 2\r\n',
      'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ]) {
      assert.equal(parseProxyHeader(Buffer.from(bad)).state, 'error', bad);
    }
    const v2 = Buffer.from(
      new pp.V2ProxyProtocol(
        pp.Command.PROXY,
        pp.TransportProtocol.STREAM,
        new pp.IPv4ProxyAddress(
          pp.IPv4Address.createFrom([1, 2, 3, 4]),
          1,
          pp.IPv4Address.createFrom([5, 6, 7, 8]),
          2,
        ),
      ).build(),
    );
    const badVersion = Buffer.from(v2);
    badVersion[12] = 0x31;
    assert.equal(parseProxyHeader(badVersion).state, 'error');
    const short = Buffer.from(v2);
    short.writeUInt16BE(4, 14);
    assert.equal(parseProxyHeader(short).state, 'error');
    const huge = Buffer.from(v2);
    huge.writeUInt16BE(60_000, 14);
    assert.equal(parseProxyHeader(huge).state, 'error');
  });

  it('survives garbage and mutations: never throws, never over-reads, never yields a non-IP', () => {
    const r = rng(SEED + 1);
    for (let n = 0; n < 20_000; n++) {
      const base = r.chance(0.5) ? reference(r).bytes : Buffer.from([]);
      const bytes = Buffer.concat([
        base,
        Buffer.from(Array.from({ length: r.int(0, 40) }, () => r.int(0, 255))),
      ]);
      for (let m = r.int(0, 3); m > 0 && bytes.length > 0; m--)
        bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
      const res = parseProxyHeader(bytes);
      if (res.state === 'header') {
        assert.ok(res.length <= bytes.length);
        if (res.header.address !== null) {
          assert.notEqual(isIP(res.header.address), 0, res.header.address);
          assert.ok(res.header.port >= 0 && res.header.port <= 65535);
        }
      }
    }
  });
});
