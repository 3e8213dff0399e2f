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
import { onTelemetryShutdown, setTracingEnabled } from './tracing';

const env = process.env;
const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
const disabled = (env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true';

/** Paths polled by load balancers and Prometheus: tracing them would drown real traffic. */
const UNTRACED = /^\/(-\/(live|ready)|metrics)(\?|$)|^\/v1\/sys\/health/;

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
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: role }),
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED.test(req.url ?? ''),
        // A query string can carry secrets (a token a client put in the URL): keep only its names.
        requestHook: (span, request) => {
          const url = (request as IncomingMessage).url ?? '';
          const q = url.indexOf('?');
          if (q === -1) return;
          const names = [...new URLSearchParams(url.slice(q + 1)).keys()];
          span.setAttribute('url.query', names.map((n) => `${n}=REDACTED`).join('&'));
        },
        // Outgoing calls we make ourselves (OTLP export itself) must not be traced.
        ignoreOutgoingRequestHook: () => true,
      }),
      new IORedisInstrumentation({
        // Only the command name: arguments carry keys and encrypted values.
        dbStatementSerializer: (cmd: string) => cmd,
        requireParentSpan: true,
      }),
    ],
  });
  sdk.start();
  setTracingEnabled(true);
  onTelemetryShutdown(() => sdk.shutdown());
}
