import "reflect-metadata";
import { ConfigError, describeConfig, loadConfig, type Config } from "./config/config.js";
import { createLogger } from "./infra/logger.js";
import { otlpExporter, startTracing } from "./infra/tracing.js";
import { start } from "./app.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  // Before anything else starts, so that every span has a provider to go to.
  const tracing = config.tracing
    ? startTracing({
        serviceName: config.tracing.serviceName,
        exporter: otlpExporter(config.tracing.otlpEndpoint),
        batch: true,
      })
    : undefined;
  logger.info({ config: describeConfig(config) }, "starting");
  process.on("unhandledRejection", (err) => logger.error({ err }, "unhandled rejection"));

  const { stop } = await start(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    timer.unref();
    stop()
      // The spans still batched go out before the process does.
      .then(() => tracing?.stop().catch((err: unknown) => logger.warn({ err }, "could not send the last spans")))
      .then(
        () => {
          logger.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

await main();
