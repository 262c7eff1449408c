/**
 * Acknowledged mutations per second on a `merge` collection with 50 writers, when ~10% of the writes
 * carry a stale baseVersion (so the server reads the base version from the log and merges three ways),
 * beside the same load with no stale writes. Each writer is one WebSocket connection with one `mutate`
 * (one `patch` of one of its own 100 records) in flight, sending the next when the results arrive.
 * A writer knows its records' versions from its results, so exactly the writes it makes stale are
 * conflicts: their baseVersion is one behind. Acknowledged = `applied` or `merged`.
 *
 *   node --import tsx bench/conflicts.ts [--quick] [--store sqlite|postgres|all] [--reps 3] [--window 10]
 *                                       [--stale 0.1] [--writers 50]
 *
 * Default store: SQLite (synchronous=FULL, the product's default).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mapLimit, RequestClient, sourceAddress, terminateAll } from './lib/clients.ts';
import { onCleanup, runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from './lib/options.ts';
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
import { type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { summarize } from './lib/stats.ts';

const RECORDS_PER_WRITER = 100;
const COLLECTION = 'bench_merge';

interface WindowResult {
  acked: number;
  merged: number;
  stale: number;
  failed: number;
  seconds: number;
  serverMicros: number;
  loadgenMicros: number;
}

/** A config file that makes the benchmark collection a `merge` one (lww for fields both sides changed). */
function mergeConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-bench-config-'));
  onCleanup({
    run: async () => rmSync(dir, { recursive: true, force: true }),
    runSync: () => rmSync(dir, { recursive: true, force: true }),
  });
  const file = join(dir, 'syncbridge.yaml');
  writeFileSync(file, `collections:\n  ${COLLECTION}:\n    strategy: merge\n    mergeFallback: lww\n`);
  return file;
}

/** Runs `writers` closed loops for `seconds`; counts what was acknowledged, merged and refused. */
async function runWindow(
  clients: RequestClient[],
  versions: Map<string, number>[],
  staleShare: number,
  seconds: number,
  pid: number,
): Promise<WindowResult> {
  const runId = randomBytes(4).toString('hex');
  let stop = false;
  let measuring = false;
  const counts = { acked: 0, merged: 0, stale: 0, failed: 0 };
  let n = 0;
  const loops = clients.map(async (client, w) => {
    const known = versions[w]!;
    while (!stop) {
      const i = n++;
      const id = `w${w}-${i % RECORDS_PER_WRITER}`;
      const version = known.get(id) ?? 0;
      const stale = version >= 2 && Math.random() < staleShare;
      const mutation: Record<string, unknown> = {
        mid: `${runId}-${i}`,
        collection: COLLECTION,
        id,
        op: 'patch',
        // Alternate fields, so a stale write usually changes a field the newer version did not.
        data: i % 2 === 0 ? { qty: i, location: 'warehouse-1' } : { note: `n${i}`, sku: 'SKU-000000' },
      };
      if (version > 0) mutation.baseVersion = stale ? version - 1 : version;
      const reply = await client.request({ type: 'mutate', mutations: [mutation] });
      const result =
        reply.type === 'results' ? (reply.results as { status: string; version?: number }[])[0]! : null;
      if (result?.version !== undefined) known.set(id, result.version);
      if (!measuring) continue;
      if (result && (result.status === 'applied' || result.status === 'merged')) {
        counts.acked += 1;
        if (result.status === 'merged') counts.merged += 1;
        if (stale) counts.stale += 1;
      } else counts.failed += 1;
    }
  });
  await sleep(500); // every loop in its steady state before the window opens
  measuring = true;
  const cpu = new CpuWindow(pid);
  await sleep(seconds * 1000);
  measuring = false;
  const used = cpu.read();
  const counted = { ...counts };
  stop = true;
  await Promise.all(loops);
  return {
    ...counted,
    seconds: used.seconds,
    serverMicros: used.serverMicros,
    loadgenMicros: used.loadgenMicros,
  };
}

async function measure(
  store: StoreKind,
  options: ReturnType<typeof benchOptions>,
  writers: number,
  staleShare: number,
  config: string,
): Promise<Figure[]> {
  const profile = options.cpuProf ? profileDir(`conflicts-${store}`) : null;
  const server = await startSyncbridge({
    store,
    env: { SYNCBRIDGE_CONFIG: config },
    nodeFlags: profile ? cpuProfFlags(profile) : [],
  });
  const label = store === 'sqlite' ? 'syncbridge/sqlite FULL' : 'syncbridge/postgres';
  process.stdout.write(`${label}: ${server.durability}\n`);
  const token = await server.token('writer');
  const clients = await mapLimit(writers, 10, (i) =>
    RequestClient.connect(server.wsUrl, token, sourceAddress(i)),
  );
  const versions = clients.map(() => new Map<string, number>());
  const shares = [0, staleShare];
  // Warm-up: every record gets a few versions, so stale writes have a base to merge against.
  await runWindow(clients, versions, staleShare, options.warmupSeconds, server.pid);
  const perShare = new Map<number, WindowResult[]>(shares.map((s) => [s, []]));
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const share of shares) {
      const r = await runWindow(clients, versions, share, options.windowSeconds, server.pid);
      perShare.get(share)!.push(r);
      progress(
        `rep ${rep} stale=${Math.round(share * 100)}%: ${formatNumber(r.acked / r.seconds)} acks/s, ` +
          `${formatNumber((r.merged / Math.max(1, r.acked)) * 100)}% merged, ` +
          `${formatNumber(r.serverMicros / r.acked)} µs server CPU/ack` +
          (r.failed ? `, ${r.failed} NOT acknowledged` : ''),
      );
    }
  }
  terminateAll(clients);
  await server.stop();
  const profileFile = profile ? newestProfile(profile) : null;
  if (profileFile) console.log(formatProfile(summarizeProfile(profileFile)));
  const durability = store === 'sqlite' ? 'synchronous=FULL' : server.durability;
  return shares.map((share) => {
    const rs = perShare.get(share)!;
    const failed = rs.reduce((s, r) => s + r.failed, 0);
    return figure({
      name: `acknowledged mutations/s, ${writers} writers, merge collection, ${Math.round(share * 100)}% stale baseVersion`,
      system: label,
      durability,
      unit: 'mutations/s',
      summary: summarize(rs.map((r) => r.acked / r.seconds)),
      details: {
        'stale %': summarize(rs.map((r) => (r.stale / Math.max(1, r.acked)) * 100)).median,
        'merged %': summarize(rs.map((r) => (r.merged / Math.max(1, r.acked)) * 100)).median,
        'server CPU µs/ack': summarize(rs.map((r) => r.serverMicros / r.acked)).median,
        'server CPU %': summarize(rs.map((r) => r.serverMicros / r.seconds / 1e4)).median,
        'load generator CPU %': summarize(rs.map((r) => r.loadgenMicros / r.seconds / 1e4)).median,
        ...(failed ? { 'not acknowledged': failed } : {}),
      },
    });
  });
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { ...COMMON_FLAGS, stale: { type: 'string' }, writers: { type: 'string' } },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite']);
  const staleShare = numberFlag(values, 'stale', 0.1);
  if (staleShare >= 1) throw new Error(`--stale ${staleShare} must be a share below 1, e.g. 0.1`);
  const writers = Math.round(numberFlag(values, 'writers', 50));
  const load = loadAverage1m();
  process.stdout.write(
    `conflicts: ${JSON.stringify({ ...options, writers, staleShare })} (load average ${load.toFixed(2)})\n`,
  );
  const config = mergeConfig();
  const figures: Figure[] = [];
  for (const store of options.stores)
    figures.push(...(await measure(store, options, writers, staleShare, config)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'conflicts',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      `Each writer: one WebSocket connection, one single-patch mutate in flight, over its own ${RECORDS_PER_WRITER} records of a merge collection.`,
      'A stale write has baseVersion one behind the version its writer last saw: the server reads that version from the log and merges three ways.',
      'Shown beside the same load with no stale writes, measured alternately on the same server.',
    ],
  });
}

runMain(main, 1800);
