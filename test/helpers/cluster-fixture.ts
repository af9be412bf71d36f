import { after, before } from "node:test";
import { Redis } from "ioredis";
import { testRedisUrl } from "./env.js";
import type { WsConnection } from "./graphql-client.js";
import { startCluster, type Cluster, type HeraldProcess } from "./herald.js";

/** What a describe block gets from twoApiCluster, set once its `before` has run. */
export interface TwoApiCluster {
  apiA: HeraldProcess;
  apiB: HeraldProcess;
  /** For waiting until a subscription listens in Redis. */
  redis: Redis;
  /** Sockets the tests open: disposed of after the block. */
  sockets: WsConnection[];
}

/**
 * For a describe block: one worker and two api instances as separate OS processes on a fresh
 * database, and a Redis client; everything, sockets included, stopped after the block.
 */
export function twoApiCluster(prefix: string): TwoApiCluster {
  let cluster: Cluster | undefined;
  const fixture = { sockets: [] as WsConnection[] } as TwoApiCluster;
  before(async () => {
    cluster = await startCluster(prefix);
    [fixture.apiA, fixture.apiB] = cluster.apis as [HeraldProcess, HeraldProcess];
    fixture.redis = new Redis(testRedisUrl());
  });
  after(async () => {
    await Promise.all(fixture.sockets.map((s) => s.dispose()));
    // Unset when `before` failed: there is nothing to stop then.
    fixture.redis?.disconnect();
    await cluster?.stop();
  });
  return fixture;
}
