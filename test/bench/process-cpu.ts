// CPU time and memory of the processes a scenario runs, read from /proc (Linux). CPU time rather
// than wall time says what each event costs whatever else shares the machine's cores.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";

/** A process whose figures are reported; no pid means it is not ours to read (an external server). */
export interface ProcessRef {
  name: string;
  pid: number | undefined;
  /** One thread of it only (its main thread has the pid for id). */
  tid?: number | undefined;
}

/** CPU time used so far by each process, in clock ticks; undefined where /proc has nothing. */
export type CpuSnapshot = Map<string, number | undefined>;

let ticksPerSecond: number | undefined;

/** USER_HZ, the unit of /proc/<pid>/stat's times: 100 on nearly every Linux, but asked rather than assumed. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of the whole process (every thread), in clock ticks. */
export function cpuTicks(pid: number): Promise<number | undefined> {
  return ticksIn(`/proc/${pid}/stat`);
}

/**
 * The same for one thread of it; the main thread's id is the pid. Threads that have ended are
 * counted in the process's figure only, so "the rest" is the process's less its main thread's.
 */
export function threadTicks(pid: number, tid: number): Promise<number | undefined> {
  return ticksIn(`/proc/${pid}/task/${tid}/stat`);
}

async function ticksIn(file: string): Promise<number | undefined> {
  const stat = await readFile(file, "utf8").catch(() => undefined);
  if (stat === undefined) return undefined;
  // The command name, in parentheses, may itself hold spaces and parentheses: count from the last one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name: state is field 3 of the man page, utime 14 and stime 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

/** VmRSS: resident memory now, in KiB. */
export async function residentKiB(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kib ? Number(kib) : undefined;
}

export async function cpuSnapshot(processes: readonly ProcessRef[]): Promise<CpuSnapshot> {
  const ticks = await Promise.all(
    processes.map((p) =>
      p.pid === undefined
        ? Promise.resolve(undefined)
        : p.tid === undefined
          ? cpuTicks(p.pid)
          : threadTicks(p.pid, p.tid),
    ),
  );
  return new Map(processes.map((p, i) => [p.name, ticks[i]]));
}

/** CPU milliseconds each process used between two snapshots. */
export function cpuMsBetween(before: CpuSnapshot, after: CpuSnapshot): Map<string, number | undefined> {
  const msPerTick = 1000 / clockTicksPerSecond();
  return new Map(
    [...after].map(([name, ticks]) => {
      const start = before.get(name);
      return [name, ticks === undefined || start === undefined ? undefined : (ticks - start) * msPerTick];
    }),
  );
}
