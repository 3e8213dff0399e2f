/**
 * Configuration: convict schemas loaded by `loadConfig` (defaults < file < environment, strict
 * validation, errors that name the key and its variable without echoing secrets) and the node's
 * derived settings with upstream's rules and messages.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gatewaySettings } from '../../gateway/settings';
import { nodeSettings } from '../../node/settings';
import { type GatewayConfig, gatewaySchema } from '../../shared/config/gateway-schema';
import { ConfigError, loadConfig } from '../../shared/config/load';
import { type NodeConfig, nodeSchema } from '../../shared/config/node-schema';
import { signingKeyFromSeed } from '../../shared/crypto/signing';

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

const node = (env: Record<string, string>): Promise<NodeConfig> =>
  loadConfig<NodeConfig>(nodeSchema, { env });

/** The ConfigError `fn` throws or rejects with (fails the test if none, or something else). */
async function configError(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected a ConfigError, nothing was thrown');
}

const key = (): string => randomBytes(32).toString('base64');

describe('loadConfig(nodeSchema)', () => {
  it('applies the documented defaults with an empty environment', async () => {
    const c = await node({});
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

  it('reads a JSON file and lets the environment win over it', async () => {
    const file = configFile({
      listener: { address: '0.0.0.0:9000' },
      storage: { prefix: 'from-file', redis_url: 'redis://file-host:6380' },
      api_addr: 'http://file.example.com:9000',
      log_level: 'debug',
    });
    const fromFile = await node({ LEADERWAY_CONFIG: file });
    assert.equal(fromFile.listener.address, '0.0.0.0:9000');
    assert.equal(fromFile.storage.prefix, 'from-file');
    assert.equal(fromFile.api_addr, 'http://file.example.com:9000');
    assert.equal(fromFile.log_level, 'debug');
    const both = await node({
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

  it('reads a YAML file (stanza names as in bao server) and the environment wins over it', async () => {
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
    const c = await node({ LEADERWAY_CONFIG: file });
    assert.equal(c.listener.address, '0.0.0.0:9100');
    assert.equal(c.storage.type, 'inmem');
    assert.equal(c.api_addr, 'https://yaml.example.com:9100');
    assert.equal(c.disable_clustering, true);
    assert.equal(c.lock_ttl, 750);
    assert.equal(c.max_request_size, 2 * 1024 * 1024);
    const env = await node({ LEADERWAY_CONFIG: file, LEADERWAY_STORAGE: 'redis', LEADERWAY_LOCK_TTL: '2s' });
    assert.equal(env.storage.type, 'redis');
    assert.equal(env.lock_ttl, 2000);
    assert.equal(env.listener.address, '0.0.0.0:9100');
  });

  it('reads an OpenBao-style HCL file (typed stanzas) and the environment wins over it', async () => {
    const file = configFile(
      [
        '# as for bao server',
        'storage "redis" {',
        '  redis_url = "redis://hcl-host:6381"',
        '  prefix    = "from-hcl"',
        '}',
        'ha_storage "redis" {',
        '  redis_url = "redis://hcl-lock:6382"',
        '}',
        'listener "tcp" {',
        '  address         = "0.0.0.0:9200"',
        '  cluster_address = "0.0.0.0:9201"',
        '}',
        'api_addr           = "https://hcl.example.com"',
        'disable_clustering = false',
        'lock_ttl           = "3s"',
        '',
      ].join('\n'),
      'hcl',
    );
    const c = await node({ LEADERWAY_CONFIG: file });
    assert.equal(c.storage.type, 'redis');
    assert.equal(c.storage.redis_url, 'redis://hcl-host:6381');
    assert.equal(c.storage.prefix, 'from-hcl');
    assert.equal(c.ha_storage.type, 'redis');
    assert.equal(c.ha_storage.redis_url, 'redis://hcl-lock:6382');
    assert.equal(c.listener.address, '0.0.0.0:9200');
    assert.equal(c.listener.cluster_address, '0.0.0.0:9201');
    assert.equal(c.api_addr, 'https://hcl.example.com');
    assert.equal(c.lock_ttl, 3000);
    const env = await node({ LEADERWAY_CONFIG: file, LEADERWAY_REDIS_PREFIX: 'from-env' });
    assert.equal(env.storage.prefix, 'from-env');
  });

  it("reads OpenBao's postgresql stanza (connection_url, table, ha_table, max_parallel)", async () => {
    const file = configFile(
      [
        'storage "postgresql" {',
        '  connection_url = "postgres://bao:pw@db.example.com:5432/vault?sslmode=verify-full"',
        '  table          = "vault_kv_store"',
        '  ha_table       = "vault_ha_locks"',
        '  max_parallel   = 32',
        '  ha_enabled     = "true"',
        '}',
        '',
      ].join('\n'),
      'hcl',
    );
    const c = await node({ LEADERWAY_CONFIG: file });
    assert.equal(c.storage.type, 'postgresql');
    assert.equal(c.storage.connection_url, 'postgres://bao:pw@db.example.com:5432/vault?sslmode=verify-full');
    assert.equal(c.storage.table, 'vault_kv_store');
    assert.equal(c.storage.ha_table, 'vault_ha_locks');
    assert.equal(c.storage.max_parallel, 32);
    const env = await node({ LEADERWAY_CONFIG: file, LEADERWAY_POSTGRESQL_TABLE: 'from_env' });
    assert.equal(env.storage.table, 'from_env');
    const bad: Array<Record<string, string>> = [
      { LEADERWAY_POSTGRESQL_TABLE: 'Drop;' },
      { LEADERWAY_POSTGRESQL_URL: 'mysql://x' },
      { LEADERWAY_POSTGRESQL_URL: 'postgres://a:5432,b:5432/lw?target_session_attrs=standby' },
    ];
    for (const b of bad) {
      await configError(async () => await node({ LEADERWAY_STORAGE: 'postgresql', ...b }));
    }
    // OpenBao's ha_enabled: "true" is what leaderway always does; "false" is refused, not ignored.
    const off = await configError(() =>
      node({
        LEADERWAY_CONFIG: configFile(
          'storage "postgresql" {\n  connection_url = "postgres://db/lw"\n  ha_enabled = "false"\n}\n',
          'hcl',
        ),
      }),
    );
    assert.match(off.message, /ha_enabled/);
    const multi = 'postgres://lw@a:5432,b:5432/lw?target_session_attrs=read-write';
    const hosts = await node({ LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: multi });
    assert.equal(hosts.storage.connection_url, multi, 'a multi-host URL is accepted (hosts.ts)');
  });

  it('names the file, line and column of an HCL syntax error, and the stanza of a shape error', async () => {
    const syntax = await configError(() =>
      node({ LEADERWAY_CONFIG: configFile('listener "tcp" {\n  address = \n}\n', 'hcl') }),
    );
    assert.match(syntax.message, /LEADERWAY_CONFIG/);
    assert.match(syntax.message, /\.hcl:2,/);
    const etcd = await configError(() =>
      node({ LEADERWAY_CONFIG: configFile('storage "etcd" {\n}\n', 'hcl') }),
    );
    assert.match(etcd.message, /unsupported storage type "etcd"/);
    const two = await configError(() =>
      node({
        LEADERWAY_CONFIG: configFile('listener "tcp" {\n}\nlistener "tcp" {\n}\n', 'hcl'),
      }),
    );
    assert.match(two.message, /"listener" may appear only once/);
    const unknown = await configError(() =>
      node({ LEADERWAY_CONFIG: configFile('listener "tcp" {\n  adress = "x"\n}\n', 'hcl') }),
    );
    assert.match(unknown.message, /listener\.adress/);
  });

  it('takes BAO_API_ADDR over VAULT_API_ADDR, and either alone', async () => {
    assert.equal((await node({ VAULT_API_ADDR: 'http://vault:1' })).api_addr, 'http://vault:1');
    assert.equal((await node({ BAO_API_ADDR: 'http://bao:1' })).api_addr, 'http://bao:1');
    assert.equal(
      (await node({ BAO_API_ADDR: 'http://bao:1', VAULT_API_ADDR: 'http://vault:1' })).api_addr,
      'http://bao:1',
    );
    assert.equal(
      (await node({ BAO_API_ADDR: '', VAULT_API_ADDR: 'http://vault:1' })).api_addr,
      'http://vault:1',
    );
    assert.equal((await node({ VAULT_CLUSTER_ADDR: 'https://c:2' })).cluster_addr, 'https://c:2');
    assert.equal(
      (await node({ BAO_CLUSTER_ADDR: 'https://b:2', VAULT_CLUSTER_ADDR: 'https://c:2' })).cluster_addr,
      'https://b:2',
    );
  });

  it('parses durations and sizes from the environment', async () => {
    const c = await node({
      LEADERWAY_LOCK_TTL: '500ms',
      LEADERWAY_SHUTDOWN_TIMEOUT: '5s',
      LEADERWAY_STEP_DOWN_COOLDOWN: '1m',
      LEADERWAY_MAX_REQUEST_SIZE: '32MiB',
    });
    assert.equal(c.lock_ttl, 500);
    assert.equal(c.shutdown_timeout, 5000);
    assert.equal(c.step_down_cooldown, 60_000);
    assert.equal(c.max_request_size, 33_554_432);
    assert.equal((await node({ LEADERWAY_MAX_REQUEST_SIZE: '64KiB' })).max_request_size, 65_536);
    assert.equal((await node({ LEADERWAY_MAX_REQUEST_SIZE: '1000' })).max_request_size, 1000);
    assert.equal((await node({ LEADERWAY_MAX_REQUEST_SIZE: '2KB' })).max_request_size, 2000);
    for (const [name, value] of [
      ['LEADERWAY_LOCK_TTL', 'soon'],
      ['LEADERWAY_LOCK_TTL', '5 parsecs'],
      ['LEADERWAY_MAX_REQUEST_SIZE', '32 lightyears'],
      ['LEADERWAY_MAX_REQUEST_SIZE', '0'],
    ] as const) {
      assert.match((await configError(async () => await node({ [name]: value }))).message, new RegExp(name));
    }
  });

  it('rejects an unknown key in the file, naming it (top level and nested)', async () => {
    const top = await configError(
      async () => await node({ LEADERWAY_CONFIG: configFile({ bogus_setting: 1 }) }),
    );
    assert.match(top.message, /unknown configuration key 'bogus_setting'/);
    const nested = await configError(
      async () =>
        await node({
          LEADERWAY_CONFIG: configFile('listener:\n  address: "127.0.0.1:1"\n  adress: x\n', 'yml'),
        }),
    );
    assert.match(nested.message, /listener\.adress/);
  });

  it('rejects a file that does not parse or is not an object, naming LEADERWAY_CONFIG', async () => {
    assert.match(
      (await configError(async () => await node({ LEADERWAY_CONFIG: configFile('{"a":') }))).message,
      /LEADERWAY_CONFIG/,
    );
    assert.match(
      (await configError(async () => await node({ LEADERWAY_CONFIG: configFile('[1, 2]') }))).message,
      /LEADERWAY_CONFIG/,
    );
    const missing = path.join(dir, 'does-not-exist.json');
    assert.match(
      (await configError(async () => await node({ LEADERWAY_CONFIG: missing }))).message,
      /LEADERWAY_CONFIG/,
    );
  });

  it('names the key and its environment variable for an invalid value, from env or file', async () => {
    const env = await configError(async () => await node({ LEADERWAY_LISTEN_ADDR: 'not-an-address' }));
    assert.match(env.message, /listener\.address/);
    assert.match(env.message, /LEADERWAY_LISTEN_ADDR/);
    const file = await configError(
      async () => await node({ LEADERWAY_CONFIG: configFile({ storage: { type: 'etcd' } }) }),
    );
    assert.match(file.message, /storage\.type/);
    assert.match(file.message, /LEADERWAY_STORAGE/);
    const alias = await configError(
      async () => await node({ VAULT_API_ADDR: 'http://ok:1', BAO_API_ADDR: 'ftp//nope' }),
    );
    assert.match(alias.message, /api_addr/);
    assert.match(alias.message, /BAO_API_ADDR/);
    const redis = await configError(async () => await node({ LEADERWAY_REDIS_URL: 'http://127.0.0.1:6379' }));
    assert.match(redis.message, /LEADERWAY_REDIS_URL/);
  });

  it('never echoes a sensitive value in an error, from env or file', async () => {
    const secrets = [
      'VerySecretSealMaterial',
      // Valid base64, but 31 bytes.
      randomBytes(31).toString('base64'),
      // Two keys where a single key is fine but the second is bad.
      `${key()},AnotherSecretThing`,
    ];
    for (const secret of secrets) {
      const fromEnv = await configError(async () => await node({ LEADERWAY_SEAL_KEY: secret }));
      assert.match(fromEnv.message, /LEADERWAY_SEAL_KEY/);
      for (const part of secret.split(',')) assert.ok(!fromEnv.message.includes(part), 'seal key echoed');
      const fromFile = await configError(
        async () =>
          await node({ LEADERWAY_CONFIG: configFile({ seal: { key: secret }, advertisement_key: secret }) }),
      );
      assert.match(fromFile.message, /LEADERWAY_SEAL_KEY/);
      assert.match(fromFile.message, /LEADERWAY_ADVERTISEMENT_KEY/);
      for (const part of secret.split(',')) assert.ok(!fromFile.message.includes(part), 'key echoed');
    }
    const wrongType = await configError(
      async () => await node({ LEADERWAY_CONFIG: configFile({ seal: { key: 1234567890123 } }) }),
    );
    assert.ok(!wrongType.message.includes('1234567890123'));
    // A non-sensitive value may be echoed: that is what makes the message useful.
    assert.match(
      (await configError(async () => await node({ LEADERWAY_LOG_LEVEL: 'chatty' }))).message,
      /LEADERWAY_LOG_LEVEL/,
    );
  });
});

describe('nodeSettings', () => {
  const keys = {
    LEADERWAY_SEAL_KEY: key(),
    LEADERWAY_ADVERTISEMENT_KEY: key(),
    LEADERWAY_ADVERTISEMENT_SIGNING_KEY: key(),
  };
  const settings = async (env: Record<string, string>) => nodeSettings(await node({ ...keys, ...env }));

  it('requires api_addr, with upstream’s exact message', async () => {
    const err = await configError(async () => await settings({}));
    assert.equal(err.message, 'missing API address, please set in configuration or via environment');
  });

  it('requires a scheme on api_addr, with upstream’s message', async () => {
    for (const addr of ['10.0.0.5:8200', 'vault.example.com']) {
      const err = await configError(async () => await settings({ BAO_API_ADDR: addr }));
      assert.match(err.message, /redirect address must include scheme \(ex\. 'http'\)/);
    }
  });

  it('gateways: the default name, blank or bad patterns refused, a CRL only with a CA', async () => {
    const api = { BAO_API_ADDR: 'http://10.0.0.5:8200' };
    assert.equal((await settings(api)).gateways, null, 'no CA: no gateway');
    const ca = { ...api, LEADERWAY_GATEWAY_CA_FILE: '/etc/leaderway/gateway-ca/ca.crt' };
    const g = (await settings(ca)).gateways;
    assert.deepEqual(
      g?.allowedNames.map((p) => p.text),
      ['leaderway-gateway'],
    );
    assert.equal(g?.crlFile, null);
    // An empty variable is unset (the default); a blank list is not "every gateway" or "none".
    assert.deepEqual(
      (await settings({ ...ca, LEADERWAY_GATEWAY_ALLOWED_NAMES: '' })).gateways?.allowedNames.map(
        (p) => p.text,
      ),
      ['leaderway-gateway'],
    );
    for (const bad of [' ', ' , ', 'spiffe://*/ns/a', 'gw..example.org']) {
      const err = await configError(
        async () => await settings({ ...ca, LEADERWAY_GATEWAY_ALLOWED_NAMES: bad }),
      );
      assert.match(err.message, /^gateway_allowed_names \(LEADERWAY_GATEWAY_ALLOWED_NAMES\): /);
    }
    const crl = await configError(
      async () => await settings({ ...api, LEADERWAY_GATEWAY_CRL_FILE: '/etc/leaderway/gateways.crl' }),
    );
    assert.match(crl.message, /LEADERWAY_GATEWAY_CRL_FILE\): needs gateway_ca_file/);
  });

  it('derives cluster_addr from api_addr: same host, port + 1, always https', async () => {
    const s = await settings({ BAO_API_ADDR: 'http://10.0.0.5:8200' });
    assert.equal(s.apiAddr, 'http://10.0.0.5:8200');
    assert.equal(s.clusterAddr, 'https://10.0.0.5:8201');
    assert.equal(
      (await settings({ VAULT_API_ADDR: 'https://vault.example.com:443' })).clusterAddr,
      'https://vault.example.com:444',
    );
    assert.equal(
      (await settings({ VAULT_API_ADDR: 'http://vault.example.com' })).clusterAddr,
      'https://vault.example.com:81',
    );
    // An explicit cluster_addr keeps its host and port but is forced to https.
    const explicit = await settings({ BAO_API_ADDR: 'http://a:8200', BAO_CLUSTER_ADDR: 'http://b:9201' });
    assert.equal(explicit.clusterAddr, 'https://b:9201');
    assert.equal(
      (await settings({ BAO_API_ADDR: 'http://a:8200', BAO_CLUSTER_ADDR: 'b:9201' })).clusterAddr,
      'https://b:9201',
    );
  });

  it('derives cluster_addr for an IPv6 api_addr', async () => {
    assert.equal((await settings({ BAO_API_ADDR: 'http://[::1]:8200' })).clusterAddr, 'https://[::1]:8201');
  });

  it('rejects a cluster_addr equal to api_addr (scheme aside)', async () => {
    for (const cluster of ['https://10.0.0.5:8200', 'http://10.0.0.5:8200', '10.0.0.5:8200']) {
      const err = await configError(
        async () => await settings({ BAO_API_ADDR: 'http://10.0.0.5:8200', BAO_CLUSTER_ADDR: cluster }),
      );
      assert.match(err.message, /cluster_addr/);
    }
  });

  it('defaults the cluster listener to the API listener’s IP with port + 1', async () => {
    const s = await settings({ BAO_API_ADDR: 'http://vault:9100', LEADERWAY_LISTEN_ADDR: '0.0.0.0:9100' });
    assert.deepEqual(s.listener.listen, { host: '0.0.0.0', port: 9100 });
    assert.deepEqual(s.clusterListen, { host: '0.0.0.0', port: 9101 });
    const set = await settings({
      BAO_API_ADDR: 'http://vault:9100',
      LEADERWAY_CLUSTER_LISTEN_ADDR: '127.0.0.2:7777',
    });
    assert.deepEqual(set.clusterListen, { host: '127.0.0.2', port: 7777 });
    const disabled = await settings({
      BAO_API_ADDR: 'http://vault:9100',
      LEADERWAY_DISABLE_CLUSTERING: 'true',
    });
    assert.equal(disabled.clusterListen, null);
    assert.equal(disabled.clusterAddr, '');
    const edge = await configError(
      async () => await settings({ BAO_API_ADDR: 'http://v:1', LEADERWAY_LISTEN_ADDR: '127.0.0.1:65535' }),
    );
    assert.match(edge.message, /LEADERWAY_CLUSTER_LISTEN_ADDR/);
  });

  it('metrics: off the API listener and no metrics listener by default; the telemetry block as OpenBao writes it', async () => {
    const base = { BAO_API_ADDR: 'http://v:8200', LEADERWAY_LISTEN_ADDR: '0.0.0.0:8200' };
    const d = await settings(base);
    assert.equal(d.listener.unauthenticatedMetrics, false);
    assert.equal(d.metricsListen, null);
    const on = await settings({
      ...base,
      LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS: 'true',
      LEADERWAY_METRICS_ADDR: '10.0.0.5:8202',
    });
    assert.equal(on.listener.unauthenticatedMetrics, true);
    assert.deepEqual(on.metricsListen, { host: '10.0.0.5', port: 8202 });
    const hcl = configFile(
      'listener "tcp" {\n  address = "0.0.0.0:8200"\n  telemetry {\n    unauthenticated_metrics_access = true\n  }\n}\n',
      'hcl',
    );
    assert.equal((await settings({ ...base, LEADERWAY_CONFIG: hcl })).listener.unauthenticatedMetrics, true);
    // The cluster listener binds only when the node turns active: a clash must stop the start.
    for (const clash of ['0.0.0.0:8201', '127.0.0.1:8200']) {
      const err = await configError(async () => await settings({ ...base, LEADERWAY_METRICS_ADDR: clash }));
      assert.match(err.message, /LEADERWAY_METRICS_ADDR/);
    }
  });

  it('uses split storage only when an HA Redis is given', async () => {
    const one = await settings({ BAO_API_ADDR: 'http://v:8200', LEADERWAY_REDIS_URL: 'redis://data:6379' });
    assert.equal(one.haStorage, null);
    assert.equal(one.storage.redisUrl, 'redis://data:6379');
    const split = await settings({
      BAO_API_ADDR: 'http://v:8200',
      LEADERWAY_REDIS_URL: 'redis://data:6379',
      LEADERWAY_HA_REDIS_URL: 'redis://lock:6379',
      LEADERWAY_REDIS_PREFIX: 'team-a',
    });
    assert.deepEqual(split.haStorage, {
      type: 'redis',
      redisUrl: 'redis://lock:6379',
      prefix: 'team-a',
      replication: { minReplicas: 'auto', waitTimeoutMs: 1000 },
    });
    assert.equal(split.storage.redisUrl, 'redis://data:6379');
    const err = await configError(
      async () => await settings({ BAO_API_ADDR: 'http://v:8200', LEADERWAY_HA_STORAGE: 'redis' }),
    );
    assert.match(err.message, /LEADERWAY_HA_REDIS_URL/);
  });

  it('postgresql: the lock beside the data (fenced), or split with an HA PostgreSQL or Redis', async () => {
    const base = { BAO_API_ADDR: 'http://v:8200', LEADERWAY_STORAGE: 'postgresql' };
    const one = await settings({ ...base, LEADERWAY_POSTGRESQL_URL: 'postgres://db/lw' });
    assert.equal(one.haStorage, null);
    assert.deepEqual(one.storage.postgres, {
      url: 'postgres://db/lw',
      table: 'leaderway_kv',
      haTable: 'leaderway_ha_locks',
      maxParallel: 16,
    });
    const split = await settings({ ...base, LEADERWAY_HA_POSTGRESQL_URL: 'postgres://lockdb/lw' });
    assert.equal(split.haStorage?.type, 'postgresql');
    assert.equal(split.haStorage?.postgres?.url, 'postgres://lockdb/lw');
    const redisLock = await settings({ ...base, LEADERWAY_HA_REDIS_URL: 'redis://lock:6379' });
    assert.equal(redisLock.haStorage?.type, 'redis');
    assert.equal(redisLock.storage.type, 'postgresql');
    const err = await configError(
      async () => await settings({ ...base, LEADERWAY_HA_STORAGE: 'postgresql' }),
    );
    assert.match(err.message, /LEADERWAY_HA_POSTGRESQL_URL/);
  });

  it('replication: auto by default, a count or 0 when set, anything else refused', async () => {
    const base = { BAO_API_ADDR: 'http://v:8200' };
    assert.deepEqual((await settings(base)).storage.replication, {
      minReplicas: 'auto',
      waitTimeoutMs: 1000,
    });
    const two = await settings({
      ...base,
      LEADERWAY_REDIS_MIN_REPLICAS: '2',
      LEADERWAY_REDIS_WAIT_TIMEOUT: '250ms',
    });
    assert.deepEqual(two.storage.replication, { minReplicas: 2, waitTimeoutMs: 250 });
    for (const bad of ['-1', 'all', '1.5']) {
      const err = await configError(
        async () => await settings({ ...base, LEADERWAY_REDIS_MIN_REPLICAS: bad }),
      );
      assert.match(err.message, /LEADERWAY_REDIS_MIN_REPLICAS/);
    }
  });

  it('requires the seal, advertisement and signing keys, without echoing them', async () => {
    const base = { BAO_API_ADDR: 'http://v:1', ...keys };
    const without = (name: keyof typeof keys) => {
      const env: Record<string, string> = { ...base };
      delete env[name];
      return env;
    };
    for (const name of Object.keys(keys) as Array<keyof typeof keys>) {
      const err = await configError(async () => nodeSettings(await node(without(name))));
      assert.match(err.message, new RegExp(name));
    }
    const two = `${key()},${key()}`;
    const twoSeals = await configError(async () =>
      nodeSettings(await node({ ...base, LEADERWAY_SEAL_KEY: two })),
    );
    assert.match(twoSeals.message, /LEADERWAY_SEAL_KEY/);
    for (const k of two.split(',')) assert.ok(!twoSeals.message.includes(k));
    // Several advertisement keys rotate; the seal key decodes to its 32 bytes.
    const s = await settings({ BAO_API_ADDR: 'http://v:1', LEADERWAY_ADVERTISEMENT_KEY: two });
    assert.equal(s.advertisementKeys.length, 2);
    assert.ok(s.sealKey.equals(Buffer.from(keys.LEADERWAY_SEAL_KEY, 'base64')));
    // The node trusts its own signature, and the verify keys it is given (rotation).
    const other = signingKeyFromSeed(randomBytes(32)).publicRaw.toString('base64');
    const rotated = await settings({ BAO_API_ADDR: 'http://v:1', LEADERWAY_ADVERTISEMENT_VERIFY_KEY: other });
    assert.equal(rotated.verifyKeys.length, 2);
    assert.ok(rotated.verifyKeys.some((k) => k.id.equals(rotated.signingKey.id)));
  });

  it('refuses one key in two roles: a gateway must not be able to unseal or sign', async () => {
    const seal = keys.LEADERWAY_SEAL_KEY;
    const adIsSeal = await configError(async () =>
      nodeSettings(
        await node({ BAO_API_ADDR: 'http://v:1', ...keys, LEADERWAY_ADVERTISEMENT_KEY: `${key()},${seal}` }),
      ),
    );
    assert.match(adIsSeal.message, /LEADERWAY_ADVERTISEMENT_KEY\): must differ from the seal key/);
    assert.ok(!adIsSeal.message.includes(seal));
    for (const same of [seal, keys.LEADERWAY_ADVERTISEMENT_KEY]) {
      const err = await configError(async () =>
        nodeSettings(
          await node({ BAO_API_ADDR: 'http://v:1', ...keys, LEADERWAY_ADVERTISEMENT_SIGNING_KEY: same }),
        ),
      );
      assert.match(err.message, /LEADERWAY_ADVERTISEMENT_SIGNING_KEY\): must differ/);
    }
  });
});

describe('loadConfig(gatewaySchema)', () => {
  const forbiddenEnv = { LEADERWAY_SEAL_KEY: 'the gateway holds only the advertisement key' };

  it('applies its defaults', async () => {
    const c = await loadConfig<GatewayConfig>(gatewaySchema, { env: {} });
    assert.equal(c.listener.address, '127.0.0.1:8300');
    assert.equal(c.storage.prefix, 'leaderway');
    assert.equal(c.failover_wait, 10_000);
    assert.equal(c.drain_delay, 5000);
    assert.equal(c.read_routing, 'active', 'every request to the active unless asked');
  });

  it('takes LEADERWAY_GATEWAY_READ_ROUTING=spread and refuses other values, naming the variable', async () => {
    const spread = await loadConfig<GatewayConfig>(gatewaySchema, {
      env: { LEADERWAY_GATEWAY_READ_ROUTING: 'spread' },
    });
    assert.equal(spread.read_routing, 'spread');
    const err = await configError(
      async () =>
        await loadConfig<GatewayConfig>(gatewaySchema, {
          env: { LEADERWAY_GATEWAY_READ_ROUTING: 'round-robin' },
        }),
    );
    assert.match(err.message, /LEADERWAY_GATEWAY_READ_ROUTING/);
  });

  it('refuses a seal key in the environment without echoing it', async () => {
    const seal = key();
    const err = await configError(
      async () =>
        await loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_SEAL_KEY: seal }, forbiddenEnv }),
    );
    assert.match(err.message, /LEADERWAY_SEAL_KEY/);
    assert.ok(!err.message.includes(seal));
    // Empty counts as unset.
    await loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_SEAL_KEY: '' }, forbiddenEnv });
  });

  it('refuses a seal stanza in its config file (the key is unknown to the gateway)', async () => {
    const seal = key();
    const err = await configError(
      async () =>
        await loadConfig<GatewayConfig>(gatewaySchema, {
          env: { LEADERWAY_CONFIG: configFile({ seal: { key: seal } }) },
          forbiddenEnv,
        }),
    );
    assert.match(err.message, /seal/);
    assert.ok(!err.message.includes(seal));
  });

  it('reads an HCL file: storage "redis" or "postgresql", not "inmem"', async () => {
    const hcl = (text: string) =>
      loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_CONFIG: configFile(text, 'hcl') } });
    const c = await hcl(
      'storage "redis" {\n  redis_url = "redis://gw:6390"\n}\nlistener "tcp" {\n  address = "0.0.0.0:8310"\n}\nfailover_wait = "4s"\n',
    );
    assert.equal(c.storage.redis_url, 'redis://gw:6390');
    assert.equal(c.listener.address, '0.0.0.0:8310');
    assert.equal(c.failover_wait, 4000);
    const inmem = await configError(() => hcl('storage "inmem" {\n}\n'));
    assert.match(inmem.message, /storage\.type/);
    const pg = await hcl(
      'storage "postgresql" {\n  connection_url = "postgres://gw@db:5432/lw"\n  table = "kv2"\n}\n',
    );
    assert.equal(pg.storage.type, 'postgresql');
    assert.equal(pg.storage.connection_url, 'postgres://gw@db:5432/lw');
    assert.equal(pg.storage.table, 'kv2');
  });

  describe('storage settings', () => {
    const pki = { LEADERWAY_GATEWAY_CERT_FILE: '/gw.crt', LEADERWAY_GATEWAY_KEY_FILE: '/gw.key' };
    const settings = async (env: Record<string, string>) =>
      gatewaySettings(
        await loadConfig<GatewayConfig>(gatewaySchema, {
          env: {
            LEADERWAY_ADVERTISEMENT_KEY: key(),
            LEADERWAY_ADVERTISEMENT_VERIFY_KEY: signingKeyFromSeed(randomBytes(32)).publicRaw.toString(
              'base64',
            ),
            ...pki,
            ...env,
          },
        }),
      );

    it('reads Redis by default, as before', async () => {
      const s = await settings({});
      assert.equal(s.storage.type, 'redis');
      assert.equal(s.storage.redisUrl, 'redis://127.0.0.1:6379');
      assert.equal(s.storage.postgres, undefined);
      assert.equal(s.haStorage, null);
      const split = await settings({ LEADERWAY_HA_REDIS_URL: 'redis://lock:6379' });
      assert.equal(split.haStorage?.type, 'redis');
      assert.equal(split.haStorage?.redisUrl, 'redis://lock:6379');
    });

    it('reads PostgreSQL with the nodes’ variables and table defaults', async () => {
      const url = 'postgres://leaderway_gateway:pw@db:5432/lw';
      const s = await settings({ LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: url });
      assert.equal(s.storage.type, 'postgresql');
      assert.deepEqual(s.storage.postgres, {
        url,
        table: 'leaderway_kv',
        haTable: 'leaderway_ha_locks',
        maxParallel: 16,
      });
      assert.equal(s.haStorage, null, 'the lock beside the data');
      const split = await settings({
        LEADERWAY_STORAGE: 'postgresql',
        LEADERWAY_POSTGRESQL_URL: url,
        LEADERWAY_POSTGRESQL_HA_TABLE: 'locks2',
        LEADERWAY_HA_POSTGRESQL_URL: 'postgres://leaderway_gateway:pw@lockdb:5432/lw',
      });
      assert.equal(split.haStorage?.type, 'postgresql', 'implied by the URL');
      assert.equal(split.haStorage?.postgres?.url, 'postgres://leaderway_gateway:pw@lockdb:5432/lw');
      assert.equal(split.haStorage?.postgres?.haTable, 'locks2');
      const pgLockRedisData = await settings({
        LEADERWAY_HA_STORAGE: 'redis',
        LEADERWAY_HA_REDIS_URL: 'redis://lock:6379',
      });
      assert.equal(pgLockRedisData.storage.type, 'redis');
      assert.equal(pgLockRedisData.haStorage?.type, 'redis');
    });

    it('refuses PostgreSQL without a URL (no default: it must be the gateway’s role), naming the variable', async () => {
      const err = await configError(() => settings({ LEADERWAY_STORAGE: 'postgresql' }));
      assert.match(err.message, /LEADERWAY_POSTGRESQL_URL/);
      const ha = await configError(() => settings({ LEADERWAY_HA_STORAGE: 'postgresql' }));
      assert.match(ha.message, /LEADERWAY_HA_POSTGRESQL_URL/);
      const redis = await configError(() => settings({ LEADERWAY_HA_STORAGE: 'redis' }));
      assert.match(redis.message, /LEADERWAY_HA_REDIS_URL/);
      const inmem = await configError(() => settings({ LEADERWAY_STORAGE: 'inmem' }));
      assert.match(inmem.message, /LEADERWAY_STORAGE/);
      const table = await configError(() =>
        settings({
          LEADERWAY_STORAGE: 'postgresql',
          LEADERWAY_POSTGRESQL_URL: 'postgres://db/lw',
          LEADERWAY_POSTGRESQL_TABLE: 'x;drop',
        }),
      );
      assert.match(table.message, /LEADERWAY_POSTGRESQL_TABLE/);
      const pool = await configError(() =>
        settings({
          LEADERWAY_STORAGE: 'postgresql',
          LEADERWAY_POSTGRESQL_URL: 'postgres://db/lw',
          LEADERWAY_POSTGRESQL_MAX_PARALLEL: '0',
        }),
      );
      assert.match(pool.message, /LEADERWAY_POSTGRESQL_MAX_PARALLEL/);
    });

    it('never echoes a URL’s password', async () => {
      const err = await configError(() =>
        settings({ LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: 'mysql://gw:S3cretPw@db/lw' }),
      );
      assert.match(err.message, /LEADERWAY_POSTGRESQL_URL/);
      assert.ok(!err.message.includes('S3cretPw'), err.message);
      // An unencoded @ in the password, and a port the URL parser refuses (hosts.ts).
      for (const url of ['mysql://gw:S3cret@Pw@db/lw', 'postgres://gw:S3cretPw@db:abc/lw']) {
        const at = await configError(() =>
          settings({ LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: url }),
        );
        assert.ok(!/S3cret|Pw@db/.test(at.message), at.message);
      }
      const sentinel = await configError(() =>
        settings({ LEADERWAY_REDIS_URL: 'redis+sentinel://h:1/m?sentinel_password=S3cretPw x' }),
      );
      assert.match(sentinel.message, /LEADERWAY_REDIS_URL/);
      assert.ok(!sentinel.message.includes('S3cretPw'), sentinel.message);
    });
  });

  it('names the variable of an invalid value', async () => {
    const err = await configError(
      async () =>
        await loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_TRUSTED_PROXIES: '10.0.0.0/99' } }),
    );
    assert.match(err.message, /LEADERWAY_TRUSTED_PROXIES/);
    const ad = await configError(
      async () =>
        await loadConfig<GatewayConfig>(gatewaySchema, {
          env: { LEADERWAY_ADVERTISEMENT_KEY: 'TopSecretAdKey' },
        }),
    );
    assert.match(ad.message, /LEADERWAY_ADVERTISEMENT_KEY/);
    assert.ok(!ad.message.includes('TopSecretAdKey'));
  });
});

describe('sample configuration files (config/)', () => {
  const samples = path.join(__dirname, '..', '..', 'config');
  it('load with their schema; the HCL and YAML forms of a sample mean the same', async () => {
    const load = (file: string) =>
      file.startsWith('gateway')
        ? loadConfig<GatewayConfig>(gatewaySchema, { env: { LEADERWAY_CONFIG: path.join(samples, file) } })
        : loadConfig<NodeConfig>(nodeSchema, { env: { LEADERWAY_CONFIG: path.join(samples, file) } });
    // Samples are the files directly in config/ (config/prometheus/ holds alert rules).
    const files = readdirSync(samples, { withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name)
      .sort();
    assert.ok(files.includes('node.hcl') && files.includes('gateway.hcl'), files.join(', '));
    for (const f of files) await load(f);
    for (const role of ['node', 'gateway']) {
      const { node_id: _a, ...hcl } = (await load(`${role}.hcl`)) as unknown as Record<string, unknown>;
      const { node_id: _b, ...yaml } = (await load(`${role}.yaml`)) as unknown as Record<string, unknown>;
      assert.deepEqual(hcl, yaml, role);
    }
  });
});
