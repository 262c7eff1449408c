/**
 * Resident memory per idle connection: the server's RSS before and after opening 10,000 authenticated
 * WebSocket connections (token in the upgrade URL, `welcome` received) that then stay idle. Each
 * repetition starts a fresh server, warms it up with a few hundred connections it then closes, and
 * reads RSS (median of several samples) once it has settled. Also reported: RSS per connection after
 * each one subscribes to one channel, and the server CPU time spent accepting a connection.
 *
 *   node --import tsx bench/connections.ts [--quick] [--connections 10000] [--reps 3] [--store sqlite]
 *
 * Clients come from 127.0.0.1–127.0.0.4 so ephemeral ports never run short; when this process's
 * open-file limit is too low it re-runs itself under `ulimit -n` (the server inherits the limit).
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { mapLimit, openSocket, sourceAddress, syncbridgeUrl, terminateAll } from './lib/clients.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from './lib/options.ts';
import { loadAverage1m, openFileLimit } from './lib/proc.ts';
import {
  commandLine,
  type Figure,
  figure,
  formatNumber,
  machine,
  printTable,
  progress,
  saveSection,
} from './lib/report.ts';
import { type StoreKind, type SyncbridgeUnderTest, startSyncbridge } from './lib/server-process.ts';
import { median, summarize } from './lib/stats.ts';

/** 15 KB, read as 15,000 bytes (the stricter reading of KB). */
const TARGET_KB = 15;
const WARMUP_CONNECTIONS = 500;
const OPEN_CONCURRENCY = 100;

/** Median of a few RSS samples taken over about a second, so one GC does not decide the figure. */
async function settledRss(server: SyncbridgeUnderTest, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(server.rssBytes());
    await sleep(200);
  }
  return median(samples);
}

/** Opens n connections, one user each (the server caps connections per user). */
async function openMany(server: SyncbridgeUnderTest, n: number, prefix: string): Promise<WebSocket[]> {
  return mapLimit(n, OPEN_CONCURRENCY, async (i) =>
    openSocket(syncbridgeUrl(server.wsUrl, await server.token(`${prefix}-${i}`)), {
      localAddress: sourceAddress(i),
      welcome: true,
    }),
  );
}

async function subscribeAll(sockets: WebSocket[]): Promise<void> {
  await mapLimit(sockets.length, 500, (i) => {
    const ws = sockets[i]!;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply to subscribe within 30 s')), 30_000);
      ws.once('message', (data: Buffer) => {
        clearTimeout(timer);
        if ((JSON.parse(data.toString()) as { type: string }).type === 'subscribed') resolve();
        else reject(new Error(`subscribe failed: ${data.toString()}`));
      });
      ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel: `records:room-${i % 100}` }));
    });
  });
}

interface RepResult {
  before: number;
  idle: number;
  subscribed: number;
  acceptMicros: number;
}

async function rep(store: StoreKind, n: number, settleMs: number): Promise<RepResult> {
  const server = await startSyncbridge({ store, fileLimit: n + 1000 });
  terminateAll(await openMany(server, WARMUP_CONNECTIONS, 'warmup'));
  const before = await settledRss(server, settleMs);
  const cpuStart = server.cpuMicros();
  const sockets = await openMany(server, n, 'idle');
  const acceptMicros = (server.cpuMicros() - cpuStart) / n;
  const idle = await settledRss(server, settleMs);
  await subscribeAll(sockets);
  const subscribed = await settledRss(server, settleMs);
  terminateAll(sockets);
  await server.stop();
  return { before, idle, subscribed, acceptMicros };
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { ...COMMON_FLAGS, connections: { type: 'string' } },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite']);
  const n = Math.round(numberFlag(values, 'connections', 10_000));
  const load = loadAverage1m();
  process.stdout.write(`connections: ${n}, ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`);
  const settleMs = options.quick ? 1000 : 3000;
  const figures: Figure[] = [];
  for (const store of options.stores) {
    const reps: RepResult[] = [];
    for (let i = 1; i <= options.reps; i++) {
      const r = await rep(store, n, settleMs);
      reps.push(r);
      progress(
        `rep ${i} ${store}: RSS ${formatNumber(r.before / 2 ** 20)} MiB → ${formatNumber(r.idle / 2 ** 20)} MiB idle → ` +
          `${formatNumber(r.subscribed / 2 ** 20)} MiB subscribed; ${formatNumber((r.idle - r.before) / n / 1000)} KB per idle connection, ` +
          `${formatNumber(r.acceptMicros)} µs server CPU per accepted connection`,
      );
    }
    const system = `syncbridge/${store}`;
    const durability = 'n/a (no writes)';
    figures.push(
      figure({
        name: `RSS per idle authenticated connection, ${formatNumber(n)} open`,
        system,
        durability,
        unit: 'KB',
        summary: summarize(reps.map((r) => (r.idle - r.before) / n / 1000)),
        target: { op: '<=', value: TARGET_KB },
        details: {
          'RSS before MiB': median(reps.map((r) => r.before / 2 ** 20)),
          'RSS with idle connections MiB': median(reps.map((r) => r.idle / 2 ** 20)),
          'server CPU µs per accepted connection': median(reps.map((r) => r.acceptMicros)),
        },
      }),
      figure({
        name: `RSS per connection with one subscription, ${formatNumber(n)} open`,
        system,
        durability,
        unit: 'KB',
        summary: summarize(reps.map((r) => (r.subscribed - r.before) / n / 1000)),
      }),
    );
  }
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'connections',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      `Each repetition: fresh server, ${WARMUP_CONNECTIONS} warm-up connections opened and closed, then RSS (median of 5 samples) before, with ${n} idle connections, and after one subscribe each.`,
    ],
  });
}

/** Re-runs this script under a raised `ulimit -n` when the current limit cannot hold the connections. */
function ensureFileLimit(): boolean {
  const n = Number(/--connections[= ](\d+)/.exec(process.argv.join(' '))?.[1] ?? 10_000);
  const needed = n + 1000;
  if (openFileLimit() >= needed || process.env.BENCH_ULIMIT_RAISED) return true;
  const result = spawnSync(
    '/bin/sh',
    [
      '-c',
      `ulimit -n ${needed} && exec "$0" "$@"`,
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, BENCH_ULIMIT_RAISED: '1' } },
  );
  process.exit(result.status ?? 1);
}

if (ensureFileLimit()) runMain(main, 1800);
