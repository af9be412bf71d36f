import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter } from "@opentelemetry/sdk-trace";

export { SpanKind, type Span };

/**
 * OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (main.ts starts them). A trace
 * follows a request through the jobs it schedules (their data carries the trace context) to the
 * inbox commit that pushes its notifications and the emails sent for them. Off, every span below is
 * the API's no-op: nothing is recorded and job data carries nothing more.
 */
export function startTracing(options: { serviceName: string; exporter: SpanExporter; batch: boolean }): {
  stop(): Promise<void>;
} {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const exporter = options.exporter;
  // Batched in production, off the request path; one by one in tests, which read spans at once.
  const processor = options.batch ? new BatchSpanProcessor({ exporter }) : new SimpleSpanProcessor({ exporter });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(provider);
  return { stop: () => provider.shutdown() };
}

/** Spans to an OpenTelemetry collector over OTLP/HTTP (JSON), at `<endpoint>/v1/traces`. */
export function otlpExporter(endpoint: string): SpanExporter {
  return new OTLPTraceExporter({ url: `${endpoint}/v1/traces` });
}

const tracer = () => trace.getTracer("herald");

/** The current trace context as a job's data carries it (W3C traceparent); undefined without tracing. */
export function traceCarrier(): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/** The context a carrier names, or a fresh root (a recurring job's run starts a trace of its own). */
export function contextOf(carrier: unknown): Context {
  if (typeof carrier !== "object" || carrier === null) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** Runs `work` in a span of its own (a child of `parent`, else of the active span), ended when it settles. */
export function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes ?? {} },
    parent,
    async (span) => {
      try {
        return await work(span);
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** A span the caller ends, and the context in which its children are made. */
export function openSpan(name: string, kind: SpanKind, attributes: Attributes = {}): { span: Span; context: Context } {
  const span = tracer().startSpan(name, { kind, attributes });
  return { span, context: trace.setSpan(context.active(), span) };
}

export function failed(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Runs `work` with `ctx` active: what it starts, spans and scheduled jobs alike, belongs to ctx's trace. */
export function within<T>(ctx: Context, work: () => T): T {
  return context.with(ctx, work);
}
