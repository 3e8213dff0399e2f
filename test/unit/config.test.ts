/**
 * Configuration: convict schemas loaded by `loadConfig` (defaults < file < environment, strict
 * validation, errors that name the key and its variable without echoing secrets) and the node's
 * derived settings with upstream's rules and messages.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeSettings } from '../../node/settings';
import { type GatewayConfig, gatewaySchema } from '../../shared/config/gateway-schema';
import { ConfigError, loadConfig } from '../../shared/config/load';
import { type NodeConfig, nodeSchema } from '../../shared/config/node-schema';

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lw-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileNo = 0;
/** Writes `content` (an object as JSON, or raw text) to a fresh file with extension `ext`. */
function configFile(content: unknown, ext = 'json'): string {
  const file = path.join(dir, `config-${++fileNo}.${ext}`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const node = (env: Record<string, string>): NodeConfig => loadConfig<NodeConfig>(nodeSchema, { env });

/** The ConfigError thrown by `fn` (fails the test if it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected a ConfigError, nothing was thrown');
}

const key = (): string => randomBytes(32).toString('base64');

describe('loadConfig(nodeSchema)', () => {
  it('applies the documented defaults with an empty environment', () => {
    const c = node({});
    assert.equal(c.listener.address, '127.0.0.1:8200');
    assert.equal(c.listener.cluster_address, '');
    assert.equal(c.storage.type, 'redis');
    assert.equal(c.storage.redis_url, 'redis://127.0.0.1:6379');
    assert.equal(c.storage.prefix, 'leaderway');
    assert.equal(c.ha_storage.redis_url, '');
    assert.equal(c.seal.key, '');
    assert.equal(c.api_addr, '');
    assert.equal(c.disable_clustering, false);
    assert.equal(c.log_level, 'info');
    assert.equal(c.lock_ttl, 5000);
    assert.equal(c.shutdown_timeout, 10_000);
    assert.equal(c.max_request_size, 32 * 1024 * 1024);
    assert.ok(c.node_id.length > 0);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.listener), 'the loaded config is frozen');
  });

  it('reads a JSON file and lets the environment win over it', () => {
    const file = configFile({
      listener: { address: '0.0.0.0:9000' },
      storage: { prefix: 'from-file', redis_url: 'redis://file-host:6380' },
      api_addr: 'http://file.example.com:9000',
      log_level: 'debug',
    });
    const fromFile = node({ LEADERWAY_CONFIG: file });
    assert.equal(fromFile.listener.address, '0.0.0.0:9000');
    assert.equal(fromFile.storage.prefix, 'from-file');
    assert.equal(fromFile.api_addr, 'http://file.example.com:9000');
    assert.equal(fromFile.log_level, 'debug');
    const both = node({
      LEADERWAY_CONFIG: file,
      LEADERWAY_LISTEN_ADDR: '127.0.0.1:7000',
      LEADERWAY_REDIS_PREFIX: 'from-env',
      VAULT_API_ADDR: 'http://env.example.com:7000',
    });
    assert.equal(both.listener.address, '127.0.0.1:7000');
    assert.equal(both.storage.prefix, 'from-env');
    assert.equal(both.api_addr, 'http://env.example.com:7000', 'an alias variable also beats the file');
    assert.equal(both.storage.redis_url, 'redis://file-host:6380', 'unset variables keep the file value');
    assert.equal(both.log_level, 'debug');
  });

  it('reads a YAML file (stanza names as in bao server) and the environment wins over it', () => {
    const file = configFile(
      [
        'listener:',
        '  address: "0.0.0.0:9100"',
        'storage:',
        '  type: inmem',
        'api_addr: https://yaml.example.com:9100',
        'disable_clustering: true',
        'lock_ttl: 750ms',
        'max_request_size: 2MiB',
        '',
      ].join('\n'),
      'yaml',
    );
    const c = node({ LEADERWAY_CONFIG: file });
    assert.equal(c.listener.address, '0.0.0.0:9100');
    assert.equal(c.storage.type, 'inmem');
    assert.equal(c.api_addr, 'https://yaml.example.com:9100');
    assert.equal(c.disable_clustering, true);
    assert.equal(c.lock_ttl, 750);
    assert.equal(c.max_request_size, 2 * 1024 * 1024);
    const env = node({ LEADERWAY_CONFIG: file, LEADERWAY_STORAGE: 'redis', LEADERWAY_LOCK_TTL: '2s' });
    assert.equal(env.storage.type, 'redis');
    assert.equal(env.lock_ttl, 2000);
    assert.equal(env.listener.address, '0.0.0.0:9100');
  });

  it('takes BAO_API_ADDR over VAULT_API_ADDR, and either alone', () => {
    assert.equal(node({ VAULT_API_ADDR: 'http://vault:1' }).api_addr, 'http://vault:1');
    assert.equal(node({ BAO_API_ADDR: 'http://bao:1' }).api_addr, 'http://bao:1');
    assert.equal(
      node({ BAO_API_ADDR: 'http://bao:1', VAULT_API_ADDR: 'http://vault:1' }).api_addr,
      'http://bao:1',
    );
    assert.equal(node({ BAO_API_ADDR: '', VAULT_API_ADDR: 'http://vault:1' }).api_addr, 'http://vault:1');
    assert.equal(node({ VAULT_CLUSTER_ADDR: 'https://c:2' }).cluster_addr, 'https://c:2');
    assert.equal(
      node({ BAO_CLUSTER_ADDR: 'https://b:2', VAULT_CLUSTER_ADDR: 'https://c:2' }).cluster_addr,
      'https://b:2',
    );
  });

  it('parses durations and sizes from the environment', () => {
    const c = node({
      LEADERWAY_LOCK_TTL: '500ms',
      LEADERWAY_SHUTDOWN_TIMEOUT: '5s',
      LEADERWAY_STEP_DOWN_COOLDOWN: '1m',
      LEADERWAY_MAX_REQUEST_SIZE: '32MiB',
    });
    assert.equal(c.lock_ttl, 500);
    assert.equal(c.shutdown_timeout, 5000);
    assert.equal(c.step_down_cooldown, 60_000);
    assert.equal(c.max_request_size, 33_554_432);
    assert.equal(node({ LEADERWAY_MAX_REQUEST_SIZE: '64KiB' }).max_request_size, 65_536);
    assert.equal(node({ LEADERWAY_MAX_REQUEST_SIZE: '1000' }).max_request_size, 1000);
    assert.equal(node({ LEADERWAY_MAX_REQUEST_SIZE: '2KB' }).max_request_size, 2000);
    for (const [name, value] of [
      ['LEADERWAY_LOCK_TTL', 'soon'],
      ['LEADERWAY_LOCK_TTL', '5 parsecs'],
      ['LEADERWAY_MAX_REQUEST_SIZE', '32 lightyears'],
      ['LEADERWAY_MAX_REQUEST_SIZE', '0'],
    ] as const) {
      assert.match(configError(() => node({ [name]: value })).message, new RegExp(name));
    }
  });

  it('rejects an unknown key in the file, naming it (top level and nested)', () => {
    const top = configError(() => node({ LEADERWAY_CONFIG: configFile({ bogus_setting: 1 }) }));
    assert.match(top.message, /unknown configuration key 'bogus_setting'/);
    const nested = configError(() =>
      node({ LEADERWAY_CONFIG: configFile('listener:\n  address: "127.0.0.1:1"\n  adress: x\n', 'yml') }),
    );
    assert.match(nested.message, /listener\.adress/);
  });

  it('rejects a file that does not parse or is not an object, naming LEADERWAY_CONFIG', () => {
    assert.match(
      configError(() => node({ LEADERWAY_CONFIG: configFile('{"a":') })).message,
      /LEADERWAY_CONFIG/,
    );
    assert.match(
      configError(() => node({ LEADERWAY_CONFIG: configFile('[1, 2]') })).message,
      /LEADERWAY_CONFIG/,
    );
    const missing = path.join(dir, 'does-not-exist.json');
    assert.match(configError(() => node({ LEADERWAY_CONFIG: missing })).message, /LEADERWAY_CONFIG/);
  });

  it('names the key and its environment variable for an invalid value, from env or file', () => {
    const env = configError(() => node({ LEADERWAY_LISTEN_ADDR: 'not-an-address' }));
    assert.match(env.message, /listener\.address/);
    assert.match(env.message, /LEADERWAY_LISTEN_ADDR/);
    const file = configError(() => node({ LEADERWAY_CONFIG: configFile({ storage: { type: 'etcd' } }) }));
    assert.match(file.message, /storage\.type/);
    assert.match(file.message, /LEADERWAY_STORAGE/);
    const alias = configError(() => node({ VAULT_API_ADDR: 'http://ok:1', BAO_API_ADDR: 'ftp//nope' }));
    assert.match(alias.message, /api_addr/);
    assert.match(alias.message, /BAO_API_ADDR/);
    const redis = configError(() => node({ LEADERWAY_REDIS_URL: 'http://127.0.0.1:6379' }));
    assert.match(redis.message, /LEADERWAY_REDIS_URL/);
  });

  it('never echoes a sensitive value in an error, from env or file', () => {
    const secrets = [
      'VerySecretSealMaterial',
      // Valid base64, but 31 bytes.
      randomBytes(31).toString('base64'),
      // Two keys where a single key is fine but the second is bad.
      `${key()},AnotherSecretThing`,
    ];
    for (const secret of secrets) {
      const fromEnv = configError(() => node({ LEADERWAY_SEAL_KEY: secret }));
      assert.match(fromEnv.message, /LEADERWAY_SEAL_KEY/);
      for (const part of secret.split(',')) assert.ok(!fromEnv.message.includes(part), 'seal key echoed');
      const fromFile = configError(() =>
        node({ LEADERWAY_CONFIG: configFile({ seal: { key: secret }, advertisement_key: secret }) }),
      );
      assert.match(fromFile.message, /LEADERWAY_SEAL_KEY/);
      assert.match(fromFile.message, /LEADERWAY_ADVERTISEMENT_KEY/);
      for (const part of secret.split(',')) assert.ok(!fromFile.message.includes(part), 'key echoed');
    }
    const wrongType = configError(() =>
      node({ LEADERWAY_CONFIG: configFile({ seal: { key: 1234567890123 } }) }),
    );
    assert.ok(!wrongType.message.includes('1234567890123'));
    // A non-sensitive value may be echoed: that is what makes the message useful.
    assert.match(configError(() => node({ LEADERWAY_LOG_LEVEL: 'chatty' })).message, /LEADERWAY_LOG_LEVEL/);
  });
});

describe('nodeSettings', () => {
  const keys = { LEADERWAY_SEAL_KEY: key(), LEADERWAY_ADVERTISEMENT_KEY: key() };
  const settings = (env: Record<string, string>) => nodeSettings(node({ ...keys, ...env }));

  it('requires api_addr, with upstream’s exact message', () => {
    const err = configError(() => settings({}));
    assert.equal(err.message, 'missing API address, please set in configuration or via environment');
  });

  it('requires a scheme on api_addr, with upstream’s message', () => {
    for (const addr of ['10.0.0.5:8200', 'vault.example.com']) {
      const err = configError(() => settings({ BAO_API_ADDR: addr }));
      assert.match(err.message, /redirect address must include scheme \(ex\. 'http'\)/);
    }
  });

  it('derives cluster_addr from api_addr: same host, port + 1, always https', () => {
    const s = settings({ BAO_API_ADDR: 'http://10.0.0.5:8200' });
    assert.equal(s.apiAddr, 'http://10.0.0.5:8200');
    assert.equal(s.clusterAddr, 'https://10.0.0.5:8201');
    assert.equal(
      settings({ VAULT_API_ADDR: 'https://vault.example.com:443' }).clusterAddr,
      'https://vault.example.com:444',
    );
    assert.equal(
      settings({ VAULT_API_ADDR: 'http://vault.example.com' }).clusterAddr,
      'https://vault.example.com:81',
    );
    // An explicit cluster_addr keeps its host and port but is forced to https.
    const explicit = settings({ BAO_API_ADDR: 'http://a:8200', BAO_CLUSTER_ADDR: 'http://b:9201' });
    assert.equal(explicit.clusterAddr, 'https://b:9201');
    assert.equal(
      settings({ BAO_API_ADDR: 'http://a:8200', BAO_CLUSTER_ADDR: 'b:9201' }).clusterAddr,
      'https://b:9201',
    );
  });

  it('derives cluster_addr for an IPv6 api_addr', () => {
    assert.equal(settings({ BAO_API_ADDR: 'http://[::1]:8200' }).clusterAddr, 'https://[::1]:8201');
  });

  it('rejects a cluster_addr equal to api_addr (scheme aside)', () => {
    for (const cluster of ['https://10.0.0.5:8200', 'http://10.0.0.5:8200', '10.0.0.5:8200']) {
      const err = configError(() =>
        settings({ BAO_API_ADDR: 'http://10.0.0.5:8200', BAO_CLUSTER_ADDR: cluster }),
      );
      assert.match(err.message, /cluster_addr/);
    }
  });

  it('defaults the cluster listener to the API listener’s IP with port + 1', () => {
    const s = settings({ BAO_API_ADDR: 'http://vault:9100', LEADERWAY_LISTEN_ADDR: '0.0.0.0:9100' });
    assert.deepEqual(s.listen, { host: '0.0.0.0', port: 9100 });
    assert.deepEqual(s.clusterListen, { host: '0.0.0.0', port: 9101 });
    const set = settings({
      BAO_API_ADDR: 'http://vault:9100',
      LEADERWAY_CLUSTER_LISTEN_ADDR: '127.0.0.2:7777',
    });
    assert.deepEqual(set.clusterListen, { host: '127.0.0.2', port: 7777 });
    const disabled = settings({ BAO_API_ADDR: 'http://vault:9100', LEADERWAY_DISABLE_CLUSTERING: 'true' });
    assert.equal(disabled.clusterListen, null);
    assert.equal(disabled.clusterAddr, '');
    const edge = configError(() =>
      settings({ BAO_API_ADDR: 'http://v:1', LEADERWAY_LISTEN_ADDR: '127.0.0.1:65535' }),
    );
    assert.match(edge.message, /LEADERWAY_CLUSTER_LISTEN_ADDR/);
  });

  it('uses split storage only when an HA Redis is given', () => {
    const one = settings({ BAO_API_ADDR: 'http://v:8200', LEADERWAY_REDIS_URL: 'redis://data:6379' });
    assert.equal(one.haStorage, null);
    assert.equal(one.storage.redisUrl, 'redis://data:6379');
    const split = settings({
      BAO_API_ADDR: 'http://v:8200',
      LEADERWAY_REDIS_URL: 'redis://data:6379',
      LEADERWAY_HA_REDIS_URL: 'redis://lock:6379',
      LEADERWAY_REDIS_PREFIX: 'team-a',
    });
    assert.deepEqual(split.haStorage, { type: 'redis', redisUrl: 'redis://lock:6379', prefix: 'team-a' });
    assert.equal(split.storage.redisUrl, 'redis://data:6379');
    const err = configError(() => settings({ BAO_API_ADDR: 'http://v:8200', LEADERWAY_HA_STORAGE: 'redis' }));
    assert.match(err.message, /LEADERWAY_HA_REDIS_URL/);
  });

  it('requires the seal and advertisement keys, without echoing them', () => {
    const noSeal = configError(() =>
      nodeSettings(node({ BAO_API_ADDR: 'http://v:1', LEADERWAY_ADVERTISEMENT_KEY: key() })),
    );
    assert.match(noSeal.message, /LEADERWAY_SEAL_KEY/);
    const two = `${key()},${key()}`;
    const twoSeals = configError(() =>
      nodeSettings(
        node({ BAO_API_ADDR: 'http://v:1', LEADERWAY_SEAL_KEY: two, LEADERWAY_ADVERTISEMENT_KEY: key() }),
      ),
    );
    assert.match(twoSeals.message, /LEADERWAY_SEAL_KEY/);
    for (const k of two.split(',')) assert.ok(!twoSeals.message.includes(k));
    const noAd = configError(() =>
      nodeSettings(node({ BAO_API_ADDR: 'http://v:1', LEADERWAY_SEAL_KEY: key() })),
    );
    assert.match(noAd.message, /LEADERWAY_ADVERTISEMENT_KEY/);
    // Several advertisement keys rotate; the seal key decodes to its 32 bytes.
    const seal = key();
    const s = settings({
      BAO_API_ADDR: 'http://v:1',
      LEADERWAY_SEAL_KEY: seal,
      LEADERWAY_ADVERTISEMENT_KEY: two,
    });
    assert.equal(s.advertisementKeys.length, 2);
    assert.ok(
      nodeSettings(
        node({ BAO_API_ADDR: 'http://v:1', LEADERWAY_SEAL_KEY: seal, LEADERWAY_ADVERTISEMENT_KEY: key() }),
      ).sealKey.equals(Buffer.from(seal, 'base64')),
    );
  });
});

describe('loadConfig(gatewaySchema)', () => {
  const forbiddenEnv = { LEADERWAY_SEAL_KEY: 'the gateway holds only the advertisement key' };

  it('applies its defaults', () => {
    const c = loadConfig<GatewayConfig>(gatewaySchema, { env: {} });
    assert.equal(c.listener.address, '127.0.0.1:8300');
    assert.equal(c.storage.prefix, 'leaderway');
    assert.equal(c.failover_wait, 10_000);
    assert.equal(c.drain_delay, 5000);
  });

  it('refuses a seal key in the environment without echoing it', () => {
    const seal = key();
    const err = configError(() =>
      loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_SEAL_KEY: seal }, forbiddenEnv }),
    );
    assert.match(err.message, /LEADERWAY_SEAL_KEY/);
    assert.ok(!err.message.includes(seal));
    // Empty counts as unset.
    loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_SEAL_KEY: '' }, forbiddenEnv });
  });

  it('refuses a seal stanza in its config file (the key is unknown to the gateway)', () => {
    const seal = key();
    const err = configError(() =>
      loadConfig<GatewayConfig>(gatewaySchema, {
        env: { LEADERWAY_CONFIG: configFile({ seal: { key: seal } }) },
        forbiddenEnv,
      }),
    );
    assert.match(err.message, /seal/);
    assert.ok(!err.message.includes(seal));
  });

  it('names the variable of an invalid value', () => {
    const err = configError(() =>
      loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_TRUSTED_PROXIES: '10.0.0.0/99' } }),
    );
    assert.match(err.message, /LEADERWAY_TRUSTED_PROXIES/);
    const ad = configError(() =>
      loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_ADVERTISEMENT_KEY: 'TopSecretAdKey' } }),
    );
    assert.match(ad.message, /LEADERWAY_ADVERTISEMENT_KEY/);
    assert.ok(!ad.message.includes('TopSecretAdKey'));
  });
});
