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

/** CPU time the process has used so far, in µs (resolution: one clock tick, usually 10 ms). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / TICKS;
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
  private readonly serverStart: number;
  private readonly selfStart = process.cpuUsage();
  private readonly wallStart = performance.now();

  constructor(private readonly pid: number) {
    this.serverStart = cpuMicros(pid);
  }

  /** Server CPU µs, load-generator CPU µs and wall-clock seconds since the window opened. */
  read(): { serverMicros: number; loadgenMicros: number; seconds: number } {
    const self = process.cpuUsage(this.selfStart);
    return {
      serverMicros: cpuMicros(this.pid) - this.serverStart,
      loadgenMicros: self.user + self.system,
      seconds: (performance.now() - this.wallStart) / 1000,
    };
  }
}
