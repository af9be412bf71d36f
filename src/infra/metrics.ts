import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { withinTime } from "../common/time.js";

/**
 * What a process reports at `GET /metrics`, in Prometheus's text format (docs/operations.md lists
 * every name and label). One registry per process: the api and worker roles of one process share it.
 *
 * Labels take values from closed sets only (job names, error codes, limit names), except the
 * operation name, which a client writes: past MAX_OPERATION_NAMES distinct names, or for a name
 * that is not a GraphQL name, it is reported as "other", so a client cannot grow the registry.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly operations = new Counter({
    name: "herald_graphql_operations_total",
    help: "GraphQL operations answered, by operation name, type, transport and outcome (ok or the error code)",
    labelNames: ["operation", "type", "transport", "outcome"] as const,
    registers: [this.registry],
  });

  readonly operationSeconds = new Histogram({
    name: "herald_graphql_operation_duration_seconds",
    help: "Time to answer a query or mutation, or to start a subscription",
    labelNames: ["operation", "type", "transport", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly sockets = new Gauge({
    name: "herald_websocket_connections",
    help: "Open WebSocket connections (graphql-ws), authenticated or not yet",
    registers: [this.registry],
  });

  readonly subscriptions = new Gauge({
    name: "herald_subscriptions_active",
    help: "Subscriptions running on this process's sockets",
    labelNames: ["subscription"] as const,
    registers: [this.registry],
  });

  readonly pushDelay = new Histogram({
    name: "herald_push_delay_seconds",
    help: "From a notification stored to its push on a socket (replays after a resume included)",
    labelNames: ["subscription"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly jobs = new Counter({
    name: "herald_jobs_total",
    help: "Job runs ended, by job name and outcome (done, skipped, failed, already running)",
    labelNames: ["job", "outcome"] as const,
    registers: [this.registry],
  });

  readonly jobSeconds = new Histogram({
    name: "herald_job_duration_seconds",
    help: "Time a job run took, by job name and outcome",
    labelNames: ["job", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly emails = new Counter({
    name: "herald_emails_total",
    help: "Emails (notification or digest) by outcome: sent, retried (an attempt failed), failed for good, skipped",
    labelNames: ["kind", "outcome"] as const,
    registers: [this.registry],
  });

  readonly refusals = new Counter({
    name: "herald_rate_limited_total",
    help: "Requests, sockets and messages refused by a rate limit, by limit",
    labelNames: ["limit"] as const,
    registers: [this.registry],
  });

  private readonly names = new Set<string>();

  /** `role` labels every series; `process` adds Node's own (CPU, memory, event loop lag, GC). */
  constructor(options: { role: string; process?: boolean }) {
    this.registry.setDefaultLabels({ role: options.role });
    if (options.process) collectDefaultMetrics({ register: this.registry });
  }

  /** A gauge read when Prometheus scrapes (queue lag, dependency health): nothing runs between scrapes. */
  add(source: MetricSource): void {
    const gauge = new Gauge({
      name: source.name,
      help: source.help,
      labelNames: source.labelNames ?? [],
      registers: [this.registry],
      async collect() {
        gauge.reset();
        // A server that does not answer leaves its series out of this scrape, never the scrape hanging.
        const values = await withinTime(source.read(), SOURCE_TIMEOUT_MS).catch(() => []);
        for (const { labels, value } of values) gauge.set(labels ?? {}, value);
      },
    });
  }

  /** The label for a client-written operation name (see the class comment). */
  operationName(name: string | null | undefined): string {
    if (!name) return "anonymous";
    if (this.names.has(name)) return name;
    if (!GRAPHQL_NAME.test(name) || this.names.size >= MAX_OPERATION_NAMES) return "other";
    this.names.add(name);
    return name;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

export interface MetricSource {
  name: string;
  help: string;
  labelNames?: readonly string[];
  read(): Promise<readonly { labels?: Record<string, string>; value: number }[]>;
}

const MAX_OPERATION_NAMES = 200;
// Above the probes' own 2 s, so that a dependency that does not answer reads 0, not nothing.
const SOURCE_TIMEOUT_MS = 3000;

const GRAPHQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
