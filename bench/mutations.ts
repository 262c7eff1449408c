/**
 * Acknowledged mutations per second, with 1 and with 50 concurrent writers, and the server's CPU time
 * per acknowledged mutation. Each writer is one WebSocket connection with one `mutate` (one `put` of a
 * ~100-byte record) in flight: it sends the next only when the previous one's `results` arrived, i.e.
 * after the group commit that holds it is durable.
 *
 *   node --import tsx bench/mutations.ts [--quick] [--store sqlite|postgres|all] [--reps 3] [--window 10]
 *                                        [--writers 1,50] [--synchronous FULL,NORMAL] [--cpu-prof]
 *                                        [--tenants 1]
 *
 * On SQLite it measures synchronous=FULL (the default: an acknowledged write survives a power cut) and,
 * labelled separately, NORMAL (survives a process crash only). With --tenants N, writer w writes tenant
 * `bench-(w mod N)` (default: one tenant).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { mapLimit, RequestClient, sourceAddress, terminateAll } from './lib/clients.ts';
import { fsyncLatency } from './lib/disk.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS } from './lib/options.ts';
import { CpuWindow, loadAverage1m } from './lib/proc.ts';
import { cpuProfFlags, formatProfile, newestProfile, profileDir, summarizeProfile } from './lib/profile.ts';
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
import { type StoreKind, type Synchronous, startSyncbridge } from './lib/server-process.ts';
import { percentileSorted, summarize } from './lib/stats.ts';

const DEFAULT_WRITER_COUNTS = [1, 50];
const RECORDS_PER_WRITER = 100;
const TARGET_50_WRITERS = 20_000;

interface WindowResult {
  acked: number;
  failed: number;
  seconds: number;
  serverMicros: number;
  serverSystemMicros: number;
  serverWaitMicros: number;
  serverMainMicros: number;
  loadgenMicros: number;
  /** Milliseconds from sending each applied mutation to its results, sorted. */
  latencies: number[];
  /** Mutations per group commit over the window (the server's syncbridge_commit_batch_size). */
  perCommit: number;
}

/** The server's commit count and committed mutations so far, from its /metrics. */
async function commitTotals(wsUrl: string): Promise<{ commits: number; writes: number }> {
  const text = await (
    await fetch(wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '/metrics'))
  ).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    commits: read('syncbridge_commit_batch_size_count'),
    writes: read('syncbridge_commit_batch_size_sum'),
  };
}

/** Keeps `writers` closed loops of single-mutation requests running; counts what is acknowledged. */
async function runWindow(
  clients: RequestClient[],
  writers: number,
  seconds: number,
  pid: number,
  wsUrl: string,
): Promise<WindowResult> {
  const runId = randomBytes(4).toString('hex');
  const data = { sku: 'SKU-000000', qty: 0, location: 'warehouse-1', note: 'x'.repeat(40) };
  let stop = false;
  let measuring = false;
  let acked = 0;
  let failed = 0;
  let n = 0;
  const latencies: number[] = [];
  const loops = clients.slice(0, writers).map(async (client, w) => {
    while (!stop) {
      const i = n++;
      const sent = performance.now();
      const reply = await client.request({
        type: 'mutate',
        mutations: [
          {
            mid: `${runId}-${i}`,
            collection: 'bench',
            id: `w${w}-${i % RECORDS_PER_WRITER}`,
            op: 'put',
            data: { ...data, qty: i },
          },
        ],
      });
      const status =
        reply.type === 'results' ? (reply.results as { status: string }[])[0]!.status : reply.type;
      if (!measuring) continue;
      if (status === 'applied') {
        acked += 1;
        latencies.push(performance.now() - sent);
      } else failed += 1;
    }
  });
  await sleep(500); // let every loop reach its steady state before the window opens
  const totals0 = await commitTotals(wsUrl);
  measuring = true;
  const cpu = new CpuWindow(pid);
  await sleep(seconds * 1000);
  measuring = false;
  const used = cpu.read();
  const counted = { acked, failed, latencies: latencies.sort((a, b) => a - b) };
  const totals1 = await commitTotals(wsUrl);
  stop = true;
  await Promise.all(loops);
  return {
    ...counted,
    seconds: used.seconds,
    serverMicros: used.serverMicros,
    serverSystemMicros: used.serverSystemMicros,
    serverWaitMicros: used.serverRunQueueWaitMicros,
    serverMainMicros: used.serverMainThreadMicros,
    loadgenMicros: used.loadgenMicros,
    perCommit: (totals1.writes - totals0.writes) / Math.max(1, totals1.commits - totals0.commits),
  };
}

async function measure(
  store: StoreKind,
  synchronous: Synchronous,
  options: ReturnType<typeof benchOptions>,
  writerCounts: number[],
  tenants: number,
): Promise<Figure[]> {
  const profile = options.cpuProf ? profileDir(`mutations-${store}-${synchronous}`) : null;
  const server = await startSyncbridge({
    store,
    synchronous,
    nodeFlags: profile ? cpuProfFlags(profile) : [],
  });
  const label =
    (store === 'sqlite' ? `syncbridge/sqlite ${synchronous}` : 'syncbridge/postgres') +
    (tenants > 1 ? `, ${tenants} tenants` : '');
  const disk = fsyncLatency();
  process.stdout.write(
    `${label}: ${server.durability}; disk fdatasync p50 ${disk.p50.toFixed(2)} ms, p99 ${disk.p99.toFixed(2)} ms\n`,
  );
  const maxWriters = Math.max(...writerCounts);
  // One user per writer, as 50 clients would be (a user's message rate is limited on its own).
  const clients = await mapLimit(maxWriters, 10, async (i) =>
    RequestClient.connect(
      server.wsUrl,
      await server.token(`writer-${i}`, tenants > 1 ? `bench-${i % tenants}` : undefined),
      sourceAddress(i),
    ),
  );
  await runWindow(clients, maxWriters, options.warmupSeconds, server.pid, server.wsUrl);
  const perCount = new Map<number, WindowResult[]>(writerCounts.map((w) => [w, []]));
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const writers of writerCounts) {
      const r = await runWindow(clients, writers, options.windowSeconds, server.pid, server.wsUrl);
      perCount.get(writers)!.push(r);
      progress(
        `rep ${rep} writers=${writers}: ${formatNumber(r.acked / r.seconds)} acks/s, ` +
          `p99 ${percentileSorted(r.latencies, 99).toFixed(1)} ms, ` +
          `${formatNumber(r.serverMicros / r.acked)} µs server CPU/ack ` +
          `(main thread ${formatNumber(r.serverMainMicros / r.acked)}), ` +
          `${formatNumber(r.perCommit)} acks/commit, ` +
          `server ${formatNumber(r.serverMicros / r.seconds / 1e4)}% / load generator ${formatNumber(r.loadgenMicros / r.seconds / 1e4)}% of a core` +
          (r.failed ? `, ${r.failed} NOT applied` : ''),
      );
    }
  }
  terminateAll(clients);
  await server.stop();
  const profileFile = profile ? newestProfile(profile) : null;
  if (profileFile) console.log(formatProfile(summarizeProfile(profileFile)));
  const durability = store === 'sqlite' ? `synchronous=${synchronous}` : server.durability;
  return writerCounts.map((writers) => {
    const rs = perCount.get(writers)!;
    const failed = rs.reduce((s, r) => s + r.failed, 0);
    return figure({
      name: `acknowledged mutations/s, ${writers} writer${writers > 1 ? 's' : ''}`,
      system: label,
      durability,
      unit: 'mutations/s',
      summary: summarize(rs.map((r) => r.acked / r.seconds)),
      target:
        writers === 50 && store === 'sqlite' && synchronous === 'FULL'
          ? { op: '>=', value: TARGET_50_WRITERS }
          : undefined,
      details: {
        'ack p99 ms': summarize(rs.map((r) => percentileSorted(r.latencies, 99))).median,
        'server CPU µs/ack': summarize(rs.map((r) => r.serverMicros / r.acked)).median,
        'of which main thread µs/ack': summarize(rs.map((r) => r.serverMainMicros / r.acked)).median,
        'of which kernel µs/ack': summarize(rs.map((r) => r.serverSystemMicros / r.acked)).median,
        'mutations per commit': summarize(rs.map((r) => r.perCommit)).median,
        'server CPU %': summarize(rs.map((r) => r.serverMicros / r.seconds / 1e4)).median,
        'server run-queue wait %': summarize(rs.map((r) => r.serverWaitMicros / r.seconds / 1e4)).median,
        'load generator CPU %': summarize(rs.map((r) => r.loadgenMicros / r.seconds / 1e4)).median,
        'disk fdatasync p50 ms': disk.p50,
        'disk fdatasync p99 ms': disk.p99,
        ...(failed ? { 'not applied': failed } : {}),
      },
    });
  });
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      writers: { type: 'string' },
      synchronous: { type: 'string' },
      tenants: { type: 'string' },
    },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite', 'postgres']);
  const writerCounts = values.writers ? values.writers.split(',').map(Number) : DEFAULT_WRITER_COUNTS;
  if (writerCounts.some((w) => !Number.isInteger(w) || w < 1)) throw new Error('--writers 1,50');
  const tenants = Number(values.tenants ?? 1);
  if (!Number.isInteger(tenants) || tenants < 1) throw new Error('--tenants 8');
  const syncModes = (values.synchronous ?? 'FULL,NORMAL').toUpperCase().split(',') as Synchronous[];
  if (syncModes.some((m) => m !== 'FULL' && m !== 'NORMAL')) throw new Error('--synchronous FULL,NORMAL');
  const load = loadAverage1m();
  process.stdout.write(`mutations: ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`);
  const configs: [StoreKind, Synchronous][] = [];
  if (options.stores.includes('sqlite')) for (const m of syncModes) configs.push(['sqlite', m]);
  if (options.stores.includes('postgres')) configs.push(['postgres', 'FULL']);
  const figures: Figure[] = [];
  for (const [store, synchronous] of configs)
    figures.push(...(await measure(store, synchronous, options, writerCounts, tenants)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'mutations',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Each writer: one WebSocket connection, one single-put mutate in flight, next sent on its results.',
      'SQLite NORMAL is not power-cut durable; it is shown for comparison only and is not the default.',
    ],
  });
}

runMain(main, 1800);
