import { availableParallelism } from "node:os";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { Piscina } from "piscina";
import type { DeriveTask } from "./password.worker.js";

// OWASP's scrypt floor (N=2^17, r=8, p=1) costs ~128 MiB and ~300 ms a hash on a small machine;
// N=2^15 keeps sign-up and login fast under load while staying memory-hard (32 MiB).
const PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const MAX_MEMORY = 64 * 1024 * 1024;
/** Added to the hashing threads' niceness: the event loop gets the CPU first. */
const NICENESS = 10;

/**
 * Hashes and checks passwords with scrypt, on worker threads of their own.
 *
 * Node's asynchronous `crypto.scrypt` runs on libuv's thread pool (4 threads), which every
 * WebCrypto call also uses, and so every JWT check (jose signs and verifies through it): measured
 * here, a token check waited 773 ms behind 8 sign-ups hashing. On its own threads, at a lower
 * priority, hashing costs the same per password but no longer delays other requests.
 */
export class PasswordHasher {
  private readonly pool: Piscina<DeriveTask, Uint8Array>;
  private decoy: Promise<string> | undefined;

  constructor(threads = availableParallelism()) {
    this.pool = new Piscina({
      filename: new URL("./password.worker.js", import.meta.url).href,
      minThreads: 1,
      maxThreads: Math.max(1, threads),
      // Piscina stops a thread above minThreads as soon as the queue empties (idleTimeout 0): under a
      // steady trickle of sign-ins the second thread was started again for almost every hash.
      idleTimeout: 30_000,
      niceIncrement: NICENESS,
    });
  }

  /** `scrypt$N$r$p$salt$hash`: the parameters travel with the hash so they can be raised later. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_LENGTH);
    const key = await this.derive(password, salt, PARAMS);
    return ["scrypt", PARAMS.N, PARAMS.r, PARAMS.p, salt.toString("base64url"), key.toString("base64url")].join("$");
  }

  async verify(password: string, stored: string): Promise<boolean> {
    const [scheme, n, r, p, salt, hash] = stored.split("$");
    if (scheme !== "scrypt" || !n || !r || !p || !salt || !hash) return false;
    const expected = Buffer.from(hash, "base64url");
    const actual = await this.derive(password, Buffer.from(salt, "base64url"), {
      N: Number(n),
      r: Number(r),
      p: Number(p),
    });
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /**
   * A real hash to check a password against when the account does not exist, so that a login's
   * timing does not reveal which addresses have accounts.
   */
  decoyHash(): Promise<string> {
    this.decoy ??= this.hash("decoy password, never matches");
    return this.decoy;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }

  private async derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
    const key = await this.pool.run({
      password: password.normalize("NFKC"),
      salt,
      keyLength: KEY_LENGTH,
      options: { ...params, maxmem: MAX_MEMORY },
    });
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  }
}
