/**
 * `sys/metrics`: the node's Prometheus metrics through the API, as OpenBao serves them to a token
 * whose policies grant `read` on `sys/metrics` (root always; the dispatcher checks, as for every
 * route). Only `format=prometheus`: the JSON form upstream answers without it is not kept, so a
 * client asking for it gets 400 rather than text it cannot parse. Served by the active node (a
 * standby forwards the request, so the answer is the active's metrics): scrape each node's own
 * on its metrics listener (LEADERWAY_METRICS_ADDR).
 */
import { LwError } from '../../../shared/errors';
import { RawBody } from '../../../shared/http/respond';
import type { Route } from '../route';

/** The sys/metrics route (paths relative to `sys/`). */
export const metricsRoutes: readonly Route[] = [
  {
    pattern: /^metrics$/,
    // The active's metrics, as before standby reads (each node's own are on its metrics listener).
    activeOnly: true,
    ops: {
      read: async (c) => {
        if (c.req.query.get('format') !== 'prometheus')
          throw new LwError('LW_ERR_UNSUPPORTED', 'only format=prometheus is supported');
        const m = await c.node.scrapeMetrics();
        return { status: 200, body: new RawBody(m.text, m.contentType) };
      },
    },
  },
];
