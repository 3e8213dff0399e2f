/** `leaderway server`: one HA node. */

import { GatewayTrust } from '../node/ha/gateway-trust';
import { NodeServer } from '../node/node-server';
import { type NodeSettings, nodeSettings } from '../node/settings';
import { formatHostPort } from '../shared/config/formats';
import { loadConfig, unknownEnvVars } from '../shared/config/load';
import { type NodeConfig, nodeSchema } from '../shared/config/node-schema';
import { openStorage, warmUp } from '../shared/storage/open';
import { createLogger } from '../shared/telemetry/logger';
import { VERSION } from '../shared/version';
import { banner } from './banner';
import { closeOnSignals, exitOnConfigError, exitOnListenError, listenVariable, reloadOnSighup } from './run';

/** The banner lines for a node. */
export function nodeBanner(s: NodeSettings, storageKind: string, haKind: string | null): string {
  const lines: Record<string, string> = {
    'Api Address': s.apiAddr,
    'Cluster Address': s.clusterAddr || '(clustering disabled)',
    'Listener 1': `tcp (addr: "${formatHostPort(s.listener.listen)}", cluster address: "${
      s.clusterListen ? formatHostPort(s.clusterListen) : ''
    }", tls: "${s.listener.tls ? 'enabled' : 'disabled'}")`,
    ...(s.metricsListen
      ? { 'Listener 2': `tcp (addr: "${formatHostPort(s.metricsListen)}", metrics only, no token)` }
      : {}),
    Storage: haKind ? storageKind : `${storageKind} (HA available)`,
    Version: `leaderway v${VERSION}`,
  };
  if (haKind) lines['HA Storage'] = haKind;
  return banner('leaderway server', lines);
}

export async function serverCommand(): Promise<void> {
  let settings: NodeSettings;
  try {
    settings = nodeSettings(await loadConfig<NodeConfig>(nodeSchema));
  } catch (err) {
    exitOnConfigError(err);
  }
  const log = createLogger({ service: 'leaderway-node', nodeId: settings.nodeId, level: settings.logLevel });
  let gateways: GatewayTrust | null = null;
  try {
    // Read now so a missing or broken CA or CRL file stops the start (exit code 2), not the first term.
    gateways = settings.gateways ? new GatewayTrust(settings.gateways, log) : null;
  } catch (err) {
    exitOnConfigError(err);
  }
  for (const v of unknownEnvVars([nodeSchema], process.env, ['LEADERWAY_DEV_ROOT_TOKEN'])) {
    log.warn({ variable: v }, 'unknown LEADERWAY_ environment variable ignored');
  }
  const storage = openStorage(settings.storage, settings.haStorage, {
    lockCommandTimeoutMs: settings.lockTtlMs / 3,
    processId: settings.nodeId,
  });
  process.stdout.write(nodeBanner(settings, storage.data.kind, settings.haStorage ? storage.ha.kind : null));
  if (settings.storage.type === 'inmem') {
    log.warn('in-memory storage is in use: it should NOT be used in production (data is lost on exit)');
  }
  if (!settings.listener.tls)
    log.warn('the API listener has no TLS: traffic is plain HTTP (set LEADERWAY_TLS_CERT_FILE/_KEY_FILE)');
  if (storage.split)
    log.warn('split storage: fencing is unavailable, so a paused active node may still write (see docs)');
  const problem = await warmUp(storage, 5_000);
  if (problem) log.warn({ reason: problem }, 'storage is not reachable yet; will keep trying');
  const node = new NodeServer(settings, { ...storage, log, gateways });
  reloadOnSighup([node], () => log.info({ signal: 'SIGHUP' }, 'reloading the TLS certificate'));
  closeOnSignals([node], (sig) => log.info({ signal: sig }, 'shutting down'));
  await node.start().catch((err) => exitOnListenError(err, listenVariable(err, settings.metricsListen)));
  const metrics = node.metricsAddress();
  log.info(
    { addr: formatHostPort(node.address()), metrics_addr: metrics ? formatHostPort(metrics) : null },
    'listening',
  );
}
