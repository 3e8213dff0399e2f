/**
 * The PROXY protocol parser (shared/http/proxy-protocol.ts): headers built by another
 * implementation (proxy-protocol-js) parse to the address they carry, at the length they have,
 * whatever follows and however they are cut; seeded garbage and mutated headers never crash it,
 * never claim more bytes than they have, and never yield an address that is not an IP. On a real
 * listener (plain and TLS), `deny_unauthorized` closes an unauthorized peer's connection at accept
 * even when it sends no header, and still serves an authorized peer without one. Real
 * connections through HAProxy are in test/integration/load-balancer.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { BlockList, isIP, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import * as pp from 'proxy-protocol-js';
import type { ListenerSettings } from '../../shared/config/listener';
import { type ProxyOutcome, parseProxyHeader } from '../../shared/http/proxy-protocol';
import { ApiListener } from '../../shared/http/server';
import { type Rng, rng } from '../chaos/rng';
import { writeApiCert } from '../helpers/api-cert';

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

  it('gives an IPv4-mapped IPv6 source as Node reports one (::ffff:a.b.c.d)', () => {
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 9, 9];
    const bytes = new pp.V2ProxyProtocol(
      pp.Command.PROXY,
      pp.TransportProtocol.STREAM,
      new pp.IPv6ProxyAddress(
        pp.IPv6Address.createFrom(mapped),
        40000,
        pp.IPv6Address.createFrom(Array(16).fill(0)),
        443,
      ),
    ).build();
    const parsed = parseProxyHeader(Buffer.from(bytes));
    assert.equal(parsed.state, 'header');
    if (parsed.state !== 'header') return;
    assert.deepEqual(parsed.header, { address: '::ffff:10.9.9.9', port: 40000 });
    // What the rest of the code does with it: strip the prefix, find an IPv4 address.
    assert.equal(isIP((parsed.header.address as string).slice(7)), 4);
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

/**
 * Sends a plain request with no PROXY header from `localAddress` and collects what comes back
 * until the server closes: the bytes, and whether a TLS handshake completed.
 */
function plainRequest(
  port: number,
  localAddress: string,
  tls: boolean,
): Promise<{ text: string; handshake: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let handshake = false;
    const request = 'GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const tcp = netConnect({ port, host: '127.0.0.1', localAddress });
    const socket: Socket = tls
      ? tlsConnect({ socket: tcp, rejectUnauthorized: false }, () => {
          handshake = true;
          socket.write(request);
        })
      : tcp.once('connect', () => tcp.write(request));
    tcp.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    // A refused connection ends in a reset or an EOF: either way, what matters is what was read.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ text, handshake }));
  });
}

describe('PROXY protocol deny_unauthorized on a listener', () => {
  let dir: string;
  let tlsFiles: { certFile: string; keyFile: string };
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lw-pp-'));
    tlsFiles = await writeApiCert(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const tls of [false, true]) {
    it(`${tls ? 'TLS' : 'plain'}: closes an unauthorized peer's connection even without a header; serves an authorized one`, async () => {
      const authorized = new BlockList();
      authorized.addSubnet('127.0.0.1', 32);
      const settings: ListenerSettings = {
        listen: { host: '127.0.0.1', port: 0 },
        tls: tls
          ? {
              ...tlsFiles,
              minVersion: 'TLSv1.2',
              ciphers: undefined,
              clientCaFile: null,
              requireClientCert: false,
            }
          : null,
        proxyProtocol: { behavior: 'deny_unauthorized', authorized },
        timeouts: { idleMs: 5_000, readHeaderMs: 5_000, readMs: 10_000, writeMs: 0 },
        unauthenticatedMetrics: false,
      };
      const outcomes: ProxyOutcome[] = [];
      let served = 0;
      const listener = new ApiListener(
        settings,
        (_req, res) => {
          served++;
          res.end('served');
        },
        { log: pino({ level: 'silent' }), onProxyProtocol: (o) => outcomes.push(o) },
      );
      await listener.listen();
      try {
        const { port } = listener.address();
        const stranger = await plainRequest(port, '127.0.0.2', tls);
        assert.equal(stranger.text, '', 'no HTTP answer to an unauthorized peer');
        assert.equal(stranger.handshake, false, 'no TLS handshake with an unauthorized peer');
        assert.equal(served, 0);
        assert.deepEqual(outcomes, ['refused']);
        const balancer = await plainRequest(port, '127.0.0.1', tls);
        assert.match(balancer.text, /^HTTP\/1\.1 200 [\s\S]*served$/);
        assert.equal(served, 1);
        assert.deepEqual(outcomes, ['refused', 'absent']);
      } finally {
        await listener.closeGracefully(() => 0, 0);
      }
    });
  }
});
