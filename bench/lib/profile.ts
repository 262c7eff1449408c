/**
 * Summarises a V8 .cpuprofile (written by `node --cpu-prof`): the functions with the most self time,
 * and self time per package or source file, as a share of the time the process was not idle.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  functions: ProfileEntry[];
  modules: ProfileEntry[];
}

/** "ws/lib/sender.js", "better-sqlite3", "src/realtime/hub.ts", "node:internal/…" or a V8 pseudo-frame. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const pkg = /packages\/(.*)$/.exec(url);
  if (pkg) return pkg[1]!;
  return url.startsWith('node:') ? url.split('/').slice(0, 2).join('/') : url;
}

function top(map: Map<string, number>, busy: number, n: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, selfMs: us / 1000, pct: (us / busy) * 100 }));
}

export function summarizeProfile(file: string, n = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const where = url ? ` ${url.replace(/^.*\/(node_modules|packages)\//, '')}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const mod = moduleOf(url, functionName);
    modules.set(mod, (modules.get(mod) ?? 0) + us);
  }
  return {
    file,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: top(functions, busy, n),
    modules: top(modules, busy, n),
  };
}

/**
 * The newest main-thread .cpuprofile in a directory. Node names them CPU.<date>.<time>.<pid>.<thread>.<n>;
 * thread 0 is the main thread (others are loader and worker threads).
 */
export function newestProfile(dir: string): string | null {
  const files = readdirSync(dir)
    .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0] ?? null;
}

export function formatProfile(summary: ProfileSummary): string {
  const lines = [
    `profile ${summary.file}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle`,
    '  self time by function:',
    ...summary.functions.map(
      (e) => `    ${e.pct.toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}`,
    ),
    '  self time by package / file:',
    ...summary.modules.map(
      (e) => `    ${e.pct.toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}`,
    ),
  ];
  return lines.join('\n');
}

/** A fresh directory under bench/results/profiles for one server's profile. */
export function profileDir(name: string): string {
  const dir = join(import.meta.dirname, '../results/profiles', `${name}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Node flags that make a server write its CPU profile into dir when it exits. */
export function cpuProfFlags(dir: string): string[] {
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}
