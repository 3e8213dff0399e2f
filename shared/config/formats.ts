/**
 * convict formats shared by the node and gateway schemas. Each format's error message names
 * what is expected but never echoes the value (convict adds the value itself, except for
 * `sensitive` keys, which it masks).
 */
import { BlockList, isIP } from 'node:net';
import convict from 'convict';
import { parseTargets } from '../storage/postgres/hosts';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Parses `500ms`, `5s`, `1m`, `1h` or a bare number of milliseconds. */
export function parseDuration(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(String(v));
  if (!m) return Number.NaN;
  return Math.round(Number(m[1]) * (DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()] ?? Number.NaN));
}

/** Parses `32MiB`, `512KB`, `1048576` into bytes. */
export function parseSize(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(v));
  if (!m) return Number.NaN;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] || 'b').toLowerCase()] ?? Number.NaN));
}

/** A parsed `host:port`. IPv6 hosts are written `[::1]:8200`. */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port` / `[v6]:port`; null when malformed. */
export function parseHostPort(v: string): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return null;
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host, port };
}

/** Formats a HostPort back into `host:port`, bracketing IPv6. */
export function formatHostPort(hp: HostPort): string {
  return isIP(hp.host) === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** Decodes a comma-separated list of base64 32-byte keys; throws with a safe message. */
export function parseKeyList(v: string): Buffer[] {
  const parts = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return parts.map((p, i) => {
    const key = Buffer.from(p, 'base64');
    if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== p.replace(/=+$/, '')) {
      throw new Error(`key #${i + 1} must be base64 of exactly 32 bytes`);
    }
    return key;
  });
}

/** Builds a BlockList from comma-separated CIDRs or addresses; throws on a bad entry. */
export function parseCidrList(v: string): BlockList {
  const list = new BlockList();
  for (const raw of v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [addr = '', bits] = raw.split('/');
    const family = isIP(addr);
    if (family === 0) throw new Error(`"${raw}" is not an IP address or CIDR`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) {
      list.addAddress(addr, type);
      continue;
    }
    const prefix = Number(bits);
    if (!/^\d+$/.test(bits) || prefix > (family === 6 ? 128 : 32))
      throw new Error(`"${raw}" has a bad prefix length`);
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

const REDIS_URL = /^(rediss?|rediss?\+sentinel):\/\/[^\s]+$/i;
const REDIS_URL_FORMS = 'must be a redis://, rediss://, redis+sentinel:// or rediss+sentinel:// URL';
const POSTGRES_URL = /^postgres(ql)?:\/\/[^\s]+$/i;
const POSTGRES_URL_FORMS = 'must be a postgres:// or postgresql:// URL';

/** A (possibly multi-host) postgres URL whose target_session_attrs leaderway can use (hosts.ts). */
function validatePostgresUrl(v: unknown): void {
  if (typeof v !== 'string' || !POSTGRES_URL.test(v)) throw new Error(POSTGRES_URL_FORMS);
  try {
    parseTargets(v);
  } catch (err) {
    throw new Error((err as Error).message.replace(/^postgresql connection_url: /, ''));
  }
}

let registered = false;

/** Registers our formats with convict (idempotent). */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormats({
    duration: {
      validate(v: unknown) {
        const ms = typeof v === 'number' ? v : Number.NaN;
        if (!Number.isFinite(ms) || ms < 0) throw new Error('must be a duration such as 500ms, 5s or 1m');
      },
      coerce: parseDuration,
    },
    'byte-size': {
      validate(v: unknown) {
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
          throw new Error('must be a size such as 32MiB, 512KiB or a number of bytes');
        }
      },
      coerce: parseSize,
    },
    'host-port': {
      validate(v: unknown) {
        if (typeof v !== 'string' || !parseHostPort(v))
          throw new Error('must be host:port (IPv6 as [::1]:8200)');
      },
    },
    'optional-host-port': {
      validate(v: unknown) {
        if (v === '') return;
        if (typeof v !== 'string' || !parseHostPort(v))
          throw new Error('must be host:port (IPv6 as [::1]:8200)');
      },
    },
    'optional-url': {
      validate(v: unknown) {
        if (v === '') return;
        if (typeof v !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
          throw new Error("redirect address must include scheme (ex. 'http')");
        }
        try {
          new URL(v);
        } catch {
          throw new Error('must be a full URL such as https://vault.example.com:8200');
        }
      },
    },
    'redis-url': {
      validate(v: unknown) {
        if (typeof v !== 'string' || !REDIS_URL.test(v)) throw new Error(REDIS_URL_FORMS);
      },
    },
    'optional-redis-url': {
      validate(v: unknown) {
        if (v === '') return;
        if (typeof v !== 'string' || !REDIS_URL.test(v)) throw new Error(REDIS_URL_FORMS);
      },
    },
    'postgres-url': {
      validate: validatePostgresUrl,
    },
    'optional-postgres-url': {
      validate(v: unknown) {
        if (v !== '') validatePostgresUrl(v);
      },
    },
    'pg-identifier': {
      validate(v: unknown) {
        if (typeof v !== 'string' || !/^[a-z_][a-z0-9_]{0,47}$/.test(v) || v === 'leaderway_schema') {
          throw new Error(
            'must be 1-48 characters of a-z 0-9 _, not starting with a digit (not leaderway_schema)',
          );
        }
      },
    },
    'key-list': {
      validate(v: unknown) {
        if (typeof v !== 'string') throw new Error('must be base64 keys separated by commas');
        parseKeyList(v);
      },
    },
    'cidr-list': {
      validate(v: unknown) {
        if (typeof v !== 'string') throw new Error('must be CIDRs separated by commas');
        parseCidrList(v);
      },
    },
    'min-replicas': {
      validate(v: unknown) {
        if (v === 'auto') return;
        if (typeof v !== 'string' || !/^\d{1,2}$/.test(v))
          throw new Error('must be auto or a number of replicas (0 to 99)');
      },
    },
    'redis-prefix': {
      validate(v: unknown) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(v)) {
          throw new Error('must be 1-64 characters of A-Z a-z 0-9 . _ : -');
        }
      },
    },
  });
}
