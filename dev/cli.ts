// Shared by the command-line entries (npm start's launcher, npm test's runner).

export function log(message: string): void {
  process.stderr.write(`herald: ${message}\n`);
}

/** Runs an entry's main and exits with its code; a failure is one line on stderr and exit code 1. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      log(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
