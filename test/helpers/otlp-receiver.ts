/** A real OTLP/HTTP receiver for tests: records every export request (raw and, for JSON, parsed). */
import { createServer, type Server } from 'node:http';

export interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  url: string;
  raw: Buffer[];
  contentTypes: string[];
  spans(): ExportedSpan[];
  close(): Promise<void>;
}

function attrValue(v: Record<string, unknown>): unknown {
  return v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue ?? null;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const raw: Buffer[] = [];
  const contentTypes: string[] = [];
  const spans: ExportedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      raw.push(body);
      const ct = String(req.headers['content-type'] ?? '');
      contentTypes.push(ct);
      if (ct.includes('json')) {
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: Array<{
            resource?: { attributes?: Array<{ key: string; value: Record<string, unknown> }> };
            scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
          }>;
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(
            attrValue(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? {}),
          );
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attributes: Record<string, unknown> = {};
              for (const a of (s.attributes as Array<{ key: string; value: Record<string, unknown> }>) ??
                []) {
                attributes[a.key] = attrValue(a.value);
              }
              spans.push({
                service,
                traceId: String(s.traceId),
                spanId: String(s.spanId),
                parentSpanId: String(s.parentSpanId ?? ''),
                name: String(s.name),
                kind: Number(s.kind),
                attributes,
              });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    raw,
    contentTypes,
    spans: () => spans,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
