/**
 * The write path alone, without WebSocket: a LogWriter on a SQLite store in this process, driven by 50
 * closed-loop writers with the records and data of bench/mutations.ts (one put in flight each; a reply
 * and the next request cross the event loop, as over a socket). Prints acknowledged mutations/s, CPU
 * per acknowledged mutation, and (--wal) the WAL written per mutation with checkpoints off, which is
 * how much SQLite writes for each one.
 *
 *   node --import tsx bench/write-path.ts [--seconds 10] [--writers 50] [--wal] [--synchronous FULL|NORMAL]
 *                                         [--checkout <dir>]   (another checkout's server code, for A/B)
 *
 * It measures one process, so a loaded machine slows it but hardly changes the CPU per mutation.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadAverage1m } from './lib/proc.ts';
import { ROOT } from './lib/server-process.ts';

const RECORDS_PER_WRITER = 100;
/** A WAL frame: a 24-byte header and one page. */
const WAL_FRAME_BYTES = 4096 + 24;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: 'string' },
    writers: { type: 'string' },
    wal: { type: 'boolean' },
    synchronous: { type: 'string' },
    checkout: { type: 'string' },
  },
  strict: true,
});
const seconds = Number(values.seconds ?? 10);
const writers = Number(values.writers ?? 50);
const synchronous = (values.synchronous ?? 'FULL').toUpperCase();
if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('--synchronous FULL|NORMAL');
const root = resolve(values.checkout ?? ROOT);

const src = (path: string) => join(root, 'packages/server/src', path);
const { SqliteStore } = (await import(
  src('store/sqlite/sqlite-store.ts')
)) as typeof import('../packages/server/src/store/sqlite/sqlite-store.ts');
const { LogWriter } = (await import(
  src('log/log-writer.ts')
)) as typeof import('../packages/server/src/log/log-writer.ts');
const { CollectionRegistry } = (await import(
  src('core/collections.ts')
)) as typeof import('../packages/server/src/core/collections.ts');
const { HybridClock } = (await import(
  src('core/hlc.ts')
)) as typeof import('../packages/server/src/core/hlc.ts');

const dir = mkdtempSync(join(tmpdir(), 'write-path-bench-'));
const file = join(dir, 'log.db');
const store = new SqliteStore({ file, synchronous });
if (values.wal) {
  // Checkpoints off, so the WAL's growth is everything the commits wrote (a bench-only reach inside).
  (store as unknown as { writer: { pragma(sql: string): unknown } }).writer.pragma('wal_autocheckpoint = 0');
}
const writer = new LogWriter({
  store,
  collections: new CollectionRegistry(store, {}),
  clock: new HybridClock('bench'),
  logger: pino({ level: 'silent' }),
});
const walBytes = () => {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
};

const data = { sku: 'SKU-000000', qty: 0, location: 'warehouse-1', note: 'x'.repeat(40) };
let stop = false;
let measuring = false;
let acked = 0;
let n = 0;
const loops = Array.from({ length: writers }, async (_, w) => {
  const principal = { tenant: 'bench', user: `writer-${w}`, roles: [] } as unknown as Parameters<
    typeof writer.mutate
  >[0];
  while (!stop) {
    const i = n++;
    const [result] = await writer.mutate(principal, [
      {
        mid: `m-${i}`,
        collection: 'bench',
        id: `w${w}-${i % RECORDS_PER_WRITER}`,
        op: 'put',
        data: { ...data, qty: i },
      },
    ]);
    if (measuring && result?.status === 'applied') acked += 1;
    // The server serializes each `results` frame; so does this loop.
    JSON.stringify({ type: 'results', rid: i, results: [result] });
    await new Promise((resolve) => setImmediate(resolve));
  }
});

const load = loadAverage1m();
await new Promise((resolve) => setTimeout(resolve, 3000)); // warm-up, not counted
const wal0 = walBytes();
measuring = true;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const cpu = process.cpuUsage(cpu0);
const elapsed = (performance.now() - t0) / 1000;
measuring = false;
const counted = acked;
const wal = walBytes() - wal0;
stop = true;
await Promise.all(loops);
await store.close();
rmSync(dir, { recursive: true, force: true });

const row: Record<string, string | number> = {
  checkout: root,
  'load average': load.toFixed(2),
  'acks/s': Math.round(counted / elapsed),
  'CPU µs/ack': Number(((cpu.user + cpu.system) / counted).toFixed(1)),
  'kernel µs/ack': Number((cpu.system / counted).toFixed(1)),
};
if (values.wal) row['WAL KiB/ack'] = Number((((wal / WAL_FRAME_BYTES) * 4) / counted).toFixed(2));
console.log(JSON.stringify(row));
