/**
 * Starts OpenTelemetry before any application module loads (bin/leaderway requires this first,
 * so the http and ioredis instrumentations can patch those modules as CommonJS loads them).
 *
 * Configured only by the standard OTEL_* variables. With no OTLP endpoint set, or with
 * OTEL_SDK_DISABLED=true, nothing starts: no export, no instrumentation, no cost. leaderway
 * exports traces only (metrics are served by /metrics in Prometheus format), so the SDK's
 * metric and log exporters default to none.
 *
 * This module is telemetry configuration, which is why it reads the OTEL_* environment itself.
 */
import type { IncomingMessage } from 'node:http';
import {
  onTelemetryShutdown,
  SyncContextManager,
  setOwnServerSpans,
  setTracingEnabled,
  untraced,
  urlAttributes,
} from './tracing';

const env = process.env;
const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
const disabled = (env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true';

if (endpoint && !disabled) start();

function start(): void {
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } =
    require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { IORedisInstrumentation } =
    require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
  const { OTLPTraceExporter } =
    protocol === 'http/json'
      ? (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http'))
      : (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'));
  const role = process.argv[2] === 'gateway' ? 'leaderway-gateway' : 'leaderway-node';
  // A gateway makes its own server spans (tracing.ts requestSpan): the generic http
  // instrumentation cost it a third of its throughput. Nodes (and `dev`) keep it.
  const http =
    role === 'leaderway-gateway'
      ? []
      : [
          new HttpInstrumentation({
            ignoreIncomingRequestHook: (req: IncomingMessage) => untraced(req.url ?? ''),
            // A query string can carry secrets (a token a client put in the URL): names only.
            requestHook: (span, request) => {
              const url = (request as IncomingMessage).url ?? '';
              if (url.includes('?'))
                span.setAttribute('url.query', urlAttributes(url)['url.query'] as string);
            },
            // Outgoing calls we make ourselves (OTLP export itself) must not be traced.
            ignoreOutgoingRequestHook: () => true,
          }),
        ];
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: role }),
    // A gateway passes its spans explicitly: no async hooks (SyncContextManager).
    ...(http.length === 0 ? { contextManager: new SyncContextManager() } : {}),
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [
      ...http,
      new IORedisInstrumentation({
        // Only the command name: arguments carry keys and encrypted values.
        dbStatementSerializer: (cmd: string) => cmd,
        requireParentSpan: true,
      }),
    ],
  });
  setOwnServerSpans(http.length === 0);
  sdk.start();
  setTracingEnabled(true);
  onTelemetryShutdown(() => sdk.shutdown());
}
