/**
 * Runs the server-core benchmarks one after another, each in its own process, then prints one table of
 * every figure against its target (also in bench/results/latest.json).
 *
 *   npm run bench -- [--only mutations,fanout,latency,connections,cluster] [--quick] [--store sqlite|postgres|all]
 *                    [--reps 3] [--window 10] [--cpu-prof] [--max-load 1.0] [--max-wait 600]
 *   npm run bench -- peers [--quick] [--reps 3] [--window 5]   (side by side with Socket.IO, ShareDB, ws)
 *
 * Benchmarks may also be named as arguments (`npm run bench -- peers`). `peers` runs only when named:
 * it compares syncbridge with the alternatives in bench/peers, its own npm project, which is installed
 * here with `npm ci --prefix bench/peers` the first time (the product never depends on it).
 *
 * Other flags are passed to every script. Before each script (except with --quick) it waits, up to
 * --max-wait seconds, for the 1-minute load average to fall below --max-load, and records the load it
 * started at: on a shared machine a figure taken under someone else's load is not worth quoting.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sleep } from './lib/lifecycle.ts';
import { COMMON_FLAGS } from './lib/options.ts';
import { loadAverage1m } from './lib/proc.ts';
import { type Figure, loadSections, machine, printTable, RESULTS_FILE } from './lib/report.ts';
import { ROOT } from './lib/server-process.ts';

const BENCHES = ['mutations', 'fanout', 'latency', 'connections', 'cluster', 'peers'] as const;
/** What runs when no benchmark is named: `peers` only runs when named (it takes about ten minutes). */
const DEFAULT_BENCHES = ['mutations', 'fanout', 'latency', 'connections', 'cluster'];
/** Scripts that live in their own folder (with their own dependencies) rather than bench/<name>.ts. */
const SCRIPT_PATHS: Record<string, string> = { peers: 'bench/peers/bench.ts' };

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    ...COMMON_FLAGS,
    only: { type: 'string' },
    'max-load': { type: 'string' },
    'max-wait': { type: 'string' },
  },
  strict: true,
});
const named = [...positionals, ...(values.only ? values.only.split(',').map((s) => s.trim()) : [])];
const only = named.length > 0 ? named : DEFAULT_BENCHES;
for (const name of only) {
  if (!(BENCHES as readonly string[]).includes(name)) {
    process.stderr.write(`--only ${name}: choose from ${BENCHES.join(', ')}\n`);
    process.exit(1);
  }
}
const passThrough: string[] = [];
for (const key of Object.keys(COMMON_FLAGS) as (keyof typeof COMMON_FLAGS)[]) {
  const v = values[key];
  if (v === true) passThrough.push(`--${key}`);
  else if (typeof v === 'string') passThrough.push(`--${key}`, v);
}
const maxLoad = Number(values['max-load'] ?? 1.0);
const maxWaitMs = Number(values['max-wait'] ?? 600) * 1000;

/** Waits for a quiet machine (never longer than the remaining budget); returns the load it starts at. */
async function waitForQuiet(deadline: number): Promise<number> {
  let load = loadAverage1m();
  if (values.quick || load < maxLoad) return load;
  process.stdout.write(`load average ${load.toFixed(2)} ≥ ${maxLoad}: waiting for a quieter machine…\n`);
  while (load >= maxLoad && Date.now() < deadline) {
    await sleep(10_000);
    load = loadAverage1m();
  }
  if (load >= maxLoad)
    process.stdout.write(`still ${load.toFixed(2)}; running anyway (say so with the figures)\n`);
  return load;
}

function runScript(name: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@syncbridge/source',
        '--import',
        'tsx',
        join(ROOT, SCRIPT_PATHS[name] ?? `bench/${name}.ts`),
        ...passThrough,
      ],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    child.once('exit', (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 1);
    });
  });
}

/** Installs the peers (bench/peers/package-lock.json) on first use; the product never depends on them. */
function installPeers(): boolean {
  if (existsSync(join(ROOT, 'bench/peers/node_modules/.package-lock.json'))) return true;
  console.log('installing the peers: npm ci --prefix bench/peers');
  const result = spawnSync('npm', ['ci', '--prefix', join(ROOT, 'bench/peers'), '--no-audit', '--no-fund'], {
    stdio: 'inherit',
  });
  return result.status === 0;
}

if (only.includes('peers') && !installPeers()) {
  process.stderr.write('npm ci --prefix bench/peers failed\n');
  process.exit(1);
}

const startedAt = new Date().toISOString();
const waitDeadline = Date.now() + maxWaitMs;
const m = machine();
console.log(`syncbridge benchmarks: ${m.nproc} cores (${m.cpuModel}), node ${m.node}`);
const failed: string[] = [];
for (const name of only) {
  const load = await waitForQuiet(waitDeadline);
  console.log(`\n=== ${name} (load average ${load.toFixed(2)}) ===`);
  if ((await runScript(name)) !== 0) failed.push(name);
}

const sections = loadSections();
const figures: Figure[] = [];
for (const name of only) {
  const section = sections[name];
  if (section && section.date >= startedAt) figures.push(...section.figures);
}
console.log('\n=== all figures ===');
printTable(figures);
console.log(`\nwritten to ${RESULTS_FILE}`);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
