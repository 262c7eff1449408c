/**
 * Reading a process from the outside through /proc: its CPU time (user + system, all threads) and its
 * resident memory. The benchmarks measure the server this way, so the figure excludes the load generator.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
const TICKS = clockTicksPerSecond();

/** User and system CPU time the process has used so far, in µs (resolution: one clock tick, 10 ms). */
export function cpuSplitMicros(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1e6) / TICKS, system: (Number(fields[12]) * 1e6) / TICKS };
}

/** CPU time (user + system) the process has used so far, in µs. */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuSplitMicros(pid);
  return user + system;
}

/**
 * How long the process's main thread (its event loop) has waited, runnable, for a CPU so far, in µs
 * (/proc/<pid>/schedstat). On a shared machine this is the time other work took from the server.
 */
export function runQueueWaitMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
  return Number(fields[1]) / 1000;
}

/**
 * How long the process's main thread (its event loop) has run on a CPU so far, in µs
 * (/proc/<pid>/schedstat, nanosecond resolution); the rest of `cpuMicros` is its other threads.
 */
export function mainThreadMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
  return Number(fields[0]) / 1000;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Soft limit on open files of this process. */
export function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

export function loadAverage1m(): number {
  return loadavg()[0]!;
}

/** A CPU meter for one window: server CPU from /proc, this process's own CPU from process.cpuUsage. */
export class CpuWindow {
  private readonly serverStart: { user: number; system: number };
  private readonly waitStart: number;
  private readonly mainStart: number;
  private readonly selfStart = process.cpuUsage();
  private readonly wallStart = performance.now();

  constructor(private readonly pid: number) {
    this.serverStart = cpuSplitMicros(pid);
    this.waitStart = runQueueWaitMicros(pid);
    this.mainStart = mainThreadMicros(pid);
  }

  /**
   * Since the window opened: server CPU µs (and the part spent in the kernel: syscalls, TCP on
   * loopback, writing and fsyncing files; and the part its main thread ran), how long the server's event loop waited for a CPU while
   * runnable, load-generator CPU µs, and wall-clock seconds.
   */
  read(): {
    serverMicros: number;
    serverSystemMicros: number;
    serverRunQueueWaitMicros: number;
    serverMainThreadMicros: number;
    loadgenMicros: number;
    seconds: number;
  } {
    const self = process.cpuUsage(this.selfStart);
    const now = cpuSplitMicros(this.pid);
    const system = now.system - this.serverStart.system;
    return {
      serverMicros: now.user - this.serverStart.user + system,
      serverSystemMicros: system,
      serverRunQueueWaitMicros: runQueueWaitMicros(this.pid) - this.waitStart,
      serverMainThreadMicros: mainThreadMicros(this.pid) - this.mainStart,
      loadgenMicros: self.user + self.system,
      seconds: (performance.now() - this.wallStart) / 1000,
    };
  }
}
