/**
 * The one module that uses the OpenTelemetry API. Spans are named `lw.*`; attributes never carry
 * tokens, secret values, keys, advertisement contents or Redis arguments. When tracing is off
 * (no OTLP endpoint), every helper here is a cheap no-op that allocates nothing.
 */

import type { IncomingMessage } from 'node:http';
import {
  type Context,
  type ContextManager,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanAttributes,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { addLogMixin } from './logger';

const tracer = trace.getTracer('leaderway');
let enabled = false;
/** The http instrumentation is not loaded (a gateway): the gateway makes its own server spans. */
let ownServerSpans = false;
const shutdownHooks: Array<() => Promise<void>> = [];

/** Called by the preload once the SDK has started. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
  if (on) {
    addLogMixin(() => {
      const ctx = trace.getSpan(context.active())?.spanContext();
      return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    });
  }
}

/** Paths polled by load balancers and Prometheus: tracing them would drown real traffic. */
const UNTRACED = /^\/(-\/(live|ready)|metrics)(\?|$)|^\/v1\/sys\/health/;

/** Whether requests for `url` go untraced (health checks, probes, scrapes). */
export function untraced(url: string): boolean {
  return UNTRACED.test(url);
}

/** Called by the preload when it leaves the generic http instrumentation out (see requestSpan). */
export function setOwnServerSpans(on: boolean): void {
  ownServerSpans = on;
}

/** True when spans are recorded and exported. */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Registers a flush to run on shutdown. */
export function onTelemetryShutdown(fn: () => Promise<void>): void {
  shutdownHooks.push(fn);
}

/** Flushes pending spans (bounded); entry points call this before exiting. */
export async function flushTelemetry(timeoutMs = 2_000): Promise<void> {
  if (shutdownHooks.length === 0) return;
  await Promise.race([
    Promise.allSettled(shutdownHooks.map((f) => f())),
    new Promise((r) => setTimeout(r, timeoutMs).unref()),
  ]);
}

/** Runs `fn` inside a span (ended when `fn` settles; errors recorded by class, not message). */
export async function traced<T>(
  name: string,
  attributes: SpanAttributes,
  fn: (span: Span | undefined) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
  /** The parent, when the caller holds it (a gateway passes its request's span explicitly). */
  parent?: Span,
): Promise<T> {
  if (!enabled) return fn(undefined);
  const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
  return tracer.startActiveSpan(name, { kind, attributes }, ctx, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Runs `fn` as the server side of a request that arrived over the cluster channel, continuing
 * the caller's trace from its `traceparent` header.
 */
export function withIncomingContext(
  headers: Record<string, unknown>,
  name: string,
  fn: (span: Span | undefined) => void,
  attributes: SpanAttributes = {},
): void {
  if (!enabled) {
    fn(undefined);
    return;
  }
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  context.with(trace.setSpan(parent, span), () => fn(span));
}

/**
 * The gateway's server span for a client request, made here rather than by the generic http
 * instrumentation (which the gateway does not load: it wraps every request's and response's
 * event emitters and computes a dozen attributes per request; leaving it out took tracing-on
 * from 0.66× to 0.84× of tracing-off req/s). The parent comes from whatever propagators
 * OTEL_PROPAGATORS configures (W3C by default; b3, b3multi, jaeger too); attributes are computed
 * only when the span is sampled. `fn` runs inside the span's context — on a gateway only
 * synchronously (SyncContextManager), so it passes the span on explicitly; the caller ends the
 * span (endServerSpan).
 * Without tracing, or in a process where the http instrumentation makes server spans (`dev`),
 * `fn` gets undefined.
 */
export function requestSpan(
  req: IncomingMessage,
  name: string,
  attributes: () => SpanAttributes,
  fn: (span: Span | undefined) => void,
): void {
  if (!enabled || !ownServerSpans || untraced(req.url ?? '')) {
    fn(undefined);
    return;
  }
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
  if (span.isRecording()) span.setAttributes(attributes());
  context.with(trace.setSpan(parent, span), () => fn(span));
}

/**
 * Span attributes for a request URL: the path, and the query's parameter names only (a client
 * may put a token in the query string; values never leave the process).
 */
export function urlAttributes(url: string): SpanAttributes {
  const q = url.indexOf('?');
  if (q === -1) return { 'url.path': url };
  const names = [...new URLSearchParams(url.slice(q + 1)).keys()];
  return { 'url.path': url.slice(0, q), 'url.query': names.map((n) => `${n}=REDACTED`).join('&') };
}

/** `trace_id` and `span_id` of `span` for a log line (the log mixin covers code that runs in context). */
export function traceFields(span: Span | undefined): { trace_id?: string; span_id?: string } {
  if (!span) return {};
  const c = span.spanContext();
  return { trace_id: c.traceId, span_id: c.spanId };
}

/**
 * A context manager without async hooks, for gateways: `with` sets the active context for the
 * synchronous call only. The default manager (AsyncLocalStorage) carries the context across
 * every await, which installs promise hooks that tax every promise in the process, sampled or
 * not (`npm run bench -- --section=tracing` on a gateway: tracing's extra CPU per request +57%
 * with them at 91372be, +22% without at fb38031; at 10% sampling +40% and +15%). A gateway passes its request's span explicitly instead
 * (requestSpan → GatewayProxy → forward).
 */
export class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.current;
    this.current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = previous;
    }
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(this, args));
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}

/** Starts a client span for an outgoing request and appends its `traceparent` to `headers`. */
export function startClientSpan(
  name: string,
  attributes: SpanAttributes,
  headers: string[],
  parent?: Span,
): Span | undefined {
  if (!enabled) return undefined;
  const base = parent ? trace.setSpan(context.active(), parent) : context.active();
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT }, base);
  if (span.isRecording()) span.setAttributes(attributes);
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(base, span), carrier);
  // The client's own trace headers were copied through; ours (children of them) replace them,
  // or the next hop would see two traceparents and start a new trace.
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if ((headers[i] as string) in carrier) headers.splice(i, 2);
  }
  for (const k in carrier) headers.push(k, carrier[k] as string);
  return span;
}

/** Ends a span with an outcome attribute; an error outcome marks the span failed. */
export function endSpan(
  span: Span | undefined,
  outcome: string,
  failed: boolean,
  attrs: SpanAttributes = {},
): void {
  if (!span) return;
  if (span.isRecording()) {
    span.setAttribute('lw.outcome', outcome);
    span.setAttributes(attrs);
  }
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  span.end();
}

/** Sets an attribute on the span of the current request, if any. */
export function setSpanAttribute(
  span: Span | undefined,
  key: string,
  value: string | number | boolean,
): void {
  span?.setAttribute(key, value);
}

/** Adds an event (e.g. `leader.change`) to the active span, if any. */
export function addEvent(name: string, attributes: SpanAttributes = {}): void {
  if (!enabled) return;
  trace.getSpan(context.active())?.addEvent(name, attributes);
}

/** Records a standalone span that already happened (e.g. a lock acquisition), from `startMs`. */
export function recordSpan(name: string, startMs: number, attributes: SpanAttributes, failed = false): void {
  if (!enabled) return;
  const span = tracer.startSpan(name, { attributes, startTime: startMs });
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * Runs `fn` outside any request's trace. Background loops (lock renewal, leader watching,
 * heartbeats) started while handling a request (sys/init) would otherwise add every span they
 * ever make to that request's trace.
 */
export function detached<T>(fn: () => T): T {
  return enabled ? context.with(ROOT_CONTEXT, fn) : fn();
}

/** Sets the HTTP status on a server span. */
export function endServerSpan(span: Span | undefined, status: number): void {
  if (!span) return;
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

export type { Span };
