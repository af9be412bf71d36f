/**
 * Group commit: calls made while a write (or a lookup) is in flight are served together by the
 * next one.
 *
 * A worker runs many small jobs at once (a comment, a follow, a sign-up each), and each used to
 * write its own few documents; on FerretDB every command costs about half a millisecond of its
 * CPU, whatever it carries. Batching them here turns N inserts into one insertMany. An idle
 * process waits for nothing: a call with no write in flight is written at once, alone.
 *
 * `flush` answers one result per item, in order. When it throws, every call of that batch fails
 * with the error (each job then retries, and jobs are idempotent).
 */
export class GroupCommit<Item, Result> {
  private queue: { item: Item; resolve: (r: Result) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(
    private readonly flush: (items: Item[]) => Promise<Result[]>,
    private readonly options: {
      /** Items per write at most. */
      maxItems: number;
      /** Writes in flight at once; more overlap round trips, fewer batch more. */
      parallel: number;
    },
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.inFlight < this.options.parallel && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxItems);
      this.inFlight += 1;
      void this.flush(batch.map((b) => b.item))
        .then(
          (results) => batch.forEach((b, i) => b.resolve(results[i] as Result)),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.inFlight -= 1;
          this.next();
        });
    }
  }
}
