import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { DIGEST_RETRY_FLOOR_MS, digestRetryDelay, nextAfter } from "../../src/modules/email/digest.jobs.js";
import { retryDelay, type EmailJobDeps } from "../../src/modules/email/email.jobs.js";
import { DigestFrequency } from "../../src/modules/preferences/preferences.enums.js";
import { DIGEST_PERIOD_MS } from "../../src/modules/preferences/preferences.service.js";

/** Deps carrying the two settings the retry schedule is made of, and nothing a call could reach through. */
function settings(retryDelayMs: number, maxAttempts: number): EmailJobDeps {
  return { retryDelayMs, maxAttempts } as Partial<EmailJobDeps> as EmailJobDeps;
}

const refusal = new Error("450 mailbox busy");

/** Runs `body` with Math.random answering `value`, which pins the jitter. */
function withRandom<T>(value: number, body: () => T): T {
  const pinned = mock.method(Math, "random", () => value);
  try {
    return body();
  } finally {
    pinned.mock.restore();
  }
}

function period(frequency: DigestFrequency): number {
  const ms = DIGEST_PERIOD_MS[frequency];
  assert.ok(ms !== null);
  return ms;
}

describe("an email's retry delay (retryDelay)", () => {
  it("doubles from the configured first step, before jitter", () => {
    const deps = settings(1000, 5);
    const steps = withRandom(0.5, () => [1, 2, 3, 4].map((attempt) => retryDelay(deps, attempt, refusal)));
    assert.deepEqual(steps, [1000, 2000, 4000, 8000]);
  });

  it("varies by at most a fifth either way, in whole milliseconds", () => {
    const deps = settings(1000, 5);
    for (const attempt of [1, 2, 3, 4]) {
      const base = 1000 * 2 ** (attempt - 1);
      assert.equal(
        withRandom(0, () => retryDelay(deps, attempt, refusal)),
        base * 0.8,
      );
      const highest = withRandom(1 - Number.EPSILON, () => retryDelay(deps, attempt, refusal));
      assert.equal(highest, base * 1.2);
      for (let sample = 0; sample < 200; sample += 1) {
        const delay = retryDelay(deps, attempt, refusal);
        assert.ok(delay !== null && Number.isInteger(delay), `attempt ${attempt}: ${delay}`);
        assert.ok(delay >= base * 0.8 && delay <= base * 1.2, `attempt ${attempt}: ${delay}`);
      }
    }
  });

  it("has a delay after every attempt but the last, and none after it", () => {
    for (const maxAttempts of [1, 2, 5, 10]) {
      const deps = settings(1000, maxAttempts);
      for (let attempt = 1; attempt < maxAttempts; attempt += 1) {
        assert.notEqual(retryDelay(deps, attempt, refusal), null, `attempt ${attempt} of ${maxAttempts}`);
      }
      assert.equal(retryDelay(deps, maxAttempts, refusal), null, `attempt ${maxAttempts} of ${maxAttempts}`);
      assert.equal(retryDelay(deps, maxAttempts + 1, refusal), null);
    }
  });

  it("follows each configuration's own settings, and takes a refusal that is not an Error", () => {
    const fast = settings(100, 3);
    const slow = settings(5000, 3);
    withRandom(0.5, () => {
      assert.equal(retryDelay(fast, 2, refusal), 200);
      assert.equal(retryDelay(slow, 2, refusal), 10_000);
      assert.equal(retryDelay(fast, 1, "421 closing"), 100);
      assert.equal(retryDelay(fast, 1, undefined), 100);
    });
  });
});

describe("a refused digest's retry delay (digestRetryDelay)", () => {
  it("never sooner than the digest job's rhythm, doubled at each refusal", () => {
    const deps = settings(1000, 5);
    withRandom(0.5, () => {
      for (const attempts of [1, 2, 3, 4]) {
        assert.equal(digestRetryDelay(deps, attempts, refusal), DIGEST_RETRY_FLOOR_MS * 2 ** (attempts - 1));
      }
    });
  });

  it("the email backoff where it is the longer", () => {
    const deps = settings(10 * DIGEST_RETRY_FLOOR_MS, 5);
    withRandom(0.5, () => {
      assert.equal(digestRetryDelay(deps, 1, refusal), 10 * DIGEST_RETRY_FLOOR_MS);
      assert.equal(digestRetryDelay(deps, 4, refusal), 80 * DIGEST_RETRY_FLOOR_MS);
    });
  });

  it("given up at the last attempt, as emails are", () => {
    const deps = settings(1000, 3);
    assert.notEqual(digestRetryDelay(deps, 2, refusal), null);
    assert.equal(digestRetryDelay(deps, 3, refusal), null);
  });
});

describe("a digest's next due time (nextAfter)", () => {
  const due = new Date("2026-05-01T08:00:00.000Z");

  it("sent on time: one period later", () => {
    for (const frequency of [DigestFrequency.HOURLY, DigestFrequency.DAILY]) {
      const p = period(frequency);
      assert.equal(nextAfter(due, p, due).getTime(), due.getTime() + p, frequency);
      assert.equal(nextAfter(due, p, new Date(due.getTime() + 1)).getTime(), due.getTime() + p, frequency);
    }
  });

  it("sent at the last moment of its period, or exactly on the next boundary: the boundary after it", () => {
    const p = period(DigestFrequency.HOURLY);
    assert.equal(nextAfter(due, p, new Date(due.getTime() + p - 1)).getTime(), due.getTime() + p);
    assert.equal(nextAfter(due, p, new Date(due.getTime() + p)).getTime(), due.getTime() + 2 * p);
  });

  it("after an outage: the first boundary after now in the user's rhythm, never a burst of missed digests", () => {
    for (const frequency of [DigestFrequency.HOURLY, DigestFrequency.DAILY]) {
      const p = period(frequency);
      for (const late of [p + 1, 3 * p - 1, 3 * p, 10 * p + 12_345, 400 * p]) {
        const now = new Date(due.getTime() + late);
        const next = nextAfter(due, p, now).getTime();
        assert.ok(next > now.getTime(), `${frequency} ${late}: after now`);
        assert.ok(next - p <= now.getTime(), `${frequency} ${late}: the first such boundary`);
        assert.equal((next - due.getTime()) % p, 0, `${frequency} ${late}: on the rhythm`);
      }
    }
  });

  it("moves on at least one period even when the clock reads earlier than the due time", () => {
    const p = period(DigestFrequency.DAILY);
    assert.equal(nextAfter(due, p, new Date(due.getTime() - 5000)).getTime(), due.getTime() + p);
  });
});
