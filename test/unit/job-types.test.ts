import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JobScheduler } from "../../src/infra/agenda.js";
import { FANOUT_JOB } from "../../src/modules/post/post.subscriber.js";
import { WELCOME_JOB } from "../../src/modules/user/user.subscriber.js";

/**
 * Job names and payloads form one typed map (JobPayloads): the compiler refuses a job no module
 * declared, or a payload of another job. These lines are checked when the tests are built
 * (`@ts-expect-error` fails the build if the error it expects is gone); running them records what
 * a well-typed call schedules.
 */
describe("job payloads are typed", () => {
  it("schedules a job with its own payload, and no other", async () => {
    const scheduled: { name: string; data: unknown }[] = [];
    const scheduler: JobScheduler = {
      now: (name, data) => {
        scheduled.push({ name, data });
        return Promise.resolve();
      },
      at: () => Promise.resolve(),
    };
    await scheduler.now(FANOUT_JOB, { postId: "p1" });
    // @ts-expect-error a fan-out job names a post, not a user
    await scheduler.now(FANOUT_JOB, { userId: "u1" });
    // @ts-expect-error a welcome needs its user
    await scheduler.now(WELCOME_JOB, {});
    // @ts-expect-error no module declares this job
    await scheduler.now("post.fanuot", { postId: "p1" });
    assert.deepEqual(scheduled[0], { name: "post.fanout", data: { postId: "p1" } });
  });
});
