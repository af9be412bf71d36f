// Runs in Piscina's worker threads (see password.ts): a synchronous scrypt here blocks only its own
// thread, never the event loop nor libuv's pool.
import { scryptSync, type ScryptOptions } from "node:crypto";

export interface DeriveTask {
  password: string;
  salt: Uint8Array;
  keyLength: number;
  options: ScryptOptions;
}

export default function derive(task: DeriveTask): Uint8Array {
  return scryptSync(task.password, task.salt, task.keyLength, task.options);
}
