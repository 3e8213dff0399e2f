/** `leaderway gateway`: the leader-routing proxy. */

import { GatewayServer } from '../gateway/gateway-server';
import { type GatewaySettings, gatewaySettings } from '../gateway/settings';
import { formatHostPort } from '../shared/config/formats';
import { type GatewayConfig, gatewaySchema } from '../shared/config/gateway-schema';
import { loadConfig, unknownEnvVars } from '../shared/config/load';
import { openStorage, warmUp } from '../shared/storage/open';
import { createLogger } from '../shared/telemetry/logger';
import { VERSION } from '../shared/version';
import { banner } from './banner';
import { closeOnSignals, exitOnConfigError, exitOnListenError, listenVariable, reloadOnSighup } from './run';

/** Locks are read, never held, by a gateway: a short command timeout keeps reads snappy. */
const GATEWAY_LOCK_COMMAND_TIMEOUT_MS = 1_000;

export async function gatewayCommand(): Promise<void> {
  let settings: GatewaySettings;
  try {
    settings = gatewaySettings(
      await loadConfig<GatewayConfig>(gatewaySchema, {
        forbiddenEnv: {
          LEADERWAY_SEAL_KEY: 'the gateway holds only the advertisement key, never the seal key',
          LEADERWAY_ADVERTISEMENT_SIGNING_KEY:
            'a gateway only verifies advertisements (LEADERWAY_ADVERTISEMENT_VERIFY_KEY); the signing key is for nodes',
        },
      }),
    );
  } catch (err) {
    exitOnConfigError(err);
  }
  const log = createLogger({
    service: 'leaderway-gateway',
    nodeId: settings.nodeId,
    level: settings.logLevel,
  });
  for (const v of unknownEnvVars([gatewaySchema], process.env)) {
    log.warn({ variable: v }, 'unknown LEADERWAY_ environment variable ignored');
  }
  const { storage: data, haStorage: ha } = settings;
  // A reader: its Redis user (leaderway-gateway) or PostgreSQL role (leaderway_gateway) allows
  // reads of the lock, the advertisements and the membership records only; on PostgreSQL it
  // checks the schema version and never creates or migrates a table.
  const storage = openStorage(data, ha, {
    lockCommandTimeoutMs: GATEWAY_LOCK_COMMAND_TIMEOUT_MS,
    reader: true,
    processId: settings.nodeId,
  });
  process.stdout.write(
    banner('leaderway gateway', {
      Listener: `tcp (addr: "${formatHostPort(settings.listener.listen)}", tls: "${settings.listener.tls ? 'enabled' : 'disabled'}")`,
      ...(settings.metricsListen
        ? {
            'Metrics Listener': `tcp (addr: "${formatHostPort(settings.metricsListen)}", metrics only, no token)`,
          }
        : {}),
      Storage: ha ? `${data.type} (split: lock in HA storage, ${ha.type})` : data.type,
      Version: `leaderway v${VERSION}`,
    }),
  );
  if (!settings.listener.tls)
    log.warn(
      'the gateway listener has no TLS: traffic is plain HTTP (set LEADERWAY_TLS_CERT_FILE/_KEY_FILE)',
    );
  const problem = await warmUp(storage, 5_000);
  if (problem) log.warn({ reason: problem }, 'storage is not usable yet; will keep trying');
  const gateway = new GatewayServer(settings, { ...storage, log });
  reloadOnSighup([gateway], () => log.info({ signal: 'SIGHUP' }, 'reloading the TLS certificate'));
  closeOnSignals([gateway], (sig) => log.info({ signal: sig }, 'draining'));
  await gateway.start().catch((err) => exitOnListenError(err, listenVariable(err, settings.metricsListen)));
  const metrics = gateway.metricsAddress();
  log.info(
    { addr: formatHostPort(gateway.address()), metrics_addr: metrics ? formatHostPort(metrics) : null },
    'listening',
  );
}
