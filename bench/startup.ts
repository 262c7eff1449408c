/**
 * Cold start and idle memory of the built server (not a test; targets: <= 600 ms to the `listening`
 * line, <= 90 MB resident when idle, SQLite). Each run starts `node packages/server/bin/syncbridge.js
 * serve` (the compiled CLI, as `npm start` does) on port 0 and a data directory of its own, times it
 * from spawn to the `listening` line (wall clock and the process's own CPU time, which a loaded machine
 * inflates less), then reads VmRSS after it has sat idle for a while, and stops it with SIGTERM.
 * Two cases: the first start on an empty data directory (migrations, generated secrets) and a restart
 * on that directory. Medians of --runs (default 7). Build first (`npm run build`).
 *
 *   node --import tsx bench/startup.ts [--runs 7] [--idle-ms 3000] [--tsx] [--repo <dir>]
 *
 * --tsx measures the TypeScript sources run through tsx instead, as the server ran before it was built;
 * --repo measures another checkout (e.g. an older commit's worktree) the same way.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMicros, loadAverage1m, rssBytes } from './lib/proc.ts';
import { ROOT } from './lib/server-process.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    'idle-ms': { type: 'string', default: '3000' },
    tsx: { type: 'boolean', default: false },
    repo: { type: 'string' },
  },
});
const repo = values.repo ?? ROOT;
const runs = Number(values.runs);
const idleMs = Number(values['idle-ms']);
const BIN = join(repo, 'packages/server/bin/syncbridge.js');
const SOURCE = join(repo, 'packages/server/src/cli/main.ts');
const command = values.tsx
  ? ['--conditions=@syncbridge/source', '--import', 'tsx', SOURCE, 'serve']
  : [BIN, 'serve'];
if (!values.tsx && !existsSync(join(repo, 'packages/server/dist/cli/main.js'))) {
  console.error('the server is not built: run npm run build first');
  process.exit(1);
}

interface Run {
  listeningMs: number;
  cpuMs: number;
  idleRssMb: number;
}

function startOnce(dataDir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const env: NodeJS.ProcessEnv = { ...process.env, SYNCBRIDGE_PORT: '0', SYNCBRIDGE_DATA_DIR: dataDir };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, command, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errors = '';
    let listened = false;
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk;
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      if (listened || !out.includes('syncbridge listening on')) return;
      listened = true;
      const listeningMs = performance.now() - started;
      const cpuMs = cpuMicros(child.pid!) / 1000;
      setTimeout(() => {
        const idleRssMb = rssBytes(child.pid!) / 2 ** 20;
        child.once('exit', () => resolve({ listeningMs, cpuMs, idleRssMb }));
        child.kill('SIGTERM');
      }, idleMs);
    });
    child.once('exit', (code) => {
      if (!listened) reject(new Error(`the server exited (${code}) before listening:\n${errors}`));
    });
  });
}

const load = loadAverage1m();
const results: Record<'first start' | 'restart', Run[]> = { 'first start': [], restart: [] };
for (let i = 0; i < runs; i++) {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-startup-'));
  try {
    results['first start'].push(await startOnce(dataDir));
    results.restart.push(await startOnce(dataDir));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toFixed(0);
console.log(
  `syncbridge startup (${values.tsx ? 'sources through tsx' : 'built server'} of ${repo}, SQLite), median of ${runs} runs`,
);
console.log(
  `${new Date().toISOString()} · nproc ${cpus().length} · node ${process.version} · load average ${load.toFixed(2)} at start, ${loadAverage1m().toFixed(2)} at end`,
);
console.log('| case | to `listening` (ms) | CPU to `listening` (ms) | idle RSS (MB) |');
console.log('|---|---|---|---|');
for (const [name, list] of Object.entries(results)) {
  const wall = list.map((r) => r.listeningMs);
  const row = [
    `${fmt(median(wall))} (${fmt(Math.min(...wall))}-${fmt(Math.max(...wall))})`,
    fmt(median(list.map((r) => r.cpuMs))),
    median(list.map((r) => r.idleRssMb)).toFixed(1),
  ];
  console.log(`| ${name} | ${row.join(' | ')} |`);
}
