import { pino, type Logger } from "pino";

export type { Logger };

/** JSON logs on stdout; fields that may carry secrets are censored wherever they appear. */
export function createLogger(options: { level: string; name?: string }): Logger {
  return pino({
    name: options.name ?? "herald",
    level: options.level,
    redact: {
      paths: [
        "password",
        "*.password",
        "token",
        "*.token",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "*.headers.authorization",
        'headers["x-api-key"]',
        '*.headers["x-api-key"]',
        "connectionParams",
        "*.connectionParams",
      ],
      censor: "[redacted]",
    },
  });
}
