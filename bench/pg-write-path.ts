/**
 * The PostgreSQL write path alone, without WebSocket: a LogWriter on a PostgresStore (a fresh schema,
 * dropped afterwards) in this process, driven by closed-loop writers spread over tenants with the
 * records and data of bench/mutations.ts (one put in flight each). Prints acknowledged mutations/s,
 * mutations per commit and this process's CPU per acknowledged mutation (the PostgreSQL backend's work
 * is not counted). With --checkout, each round runs every checkout in turn, in alternating order (a
 * paired A/B).
 *
 *   node --import tsx bench/pg-write-path.ts [--seconds 8] [--writers 50] [--tenants 8] [--rounds 3]
 *                                            [--checkout <dir>]...
 *
 * It measures one process's CPU time, so a loaded machine moves it less than a rate (but still some).
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { loadAverage1m } from './lib/proc.ts';
import { ROOT } from './lib/server-process.ts';

const RECORDS_PER_WRITER = 100;
const URL = process.env.SYNCBRIDGE_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: 'string' },
    writers: { type: 'string' },
    tenants: { type: 'string' },
    rounds: { type: 'string' },
    checkout: { type: 'string', multiple: true },
  },
  strict: true,
});
const seconds = Number(values.seconds ?? 8);
const writers = Number(values.writers ?? 50);
const tenants = Number(values.tenants ?? 8);
const rounds = Number(values.rounds ?? 3);
const roots = (values.checkout?.length ? values.checkout : [ROOT]).map((r) => resolve(r));

interface Row {
  'acks/s': number;
  'acks/commit': number;
  'CPU µs/ack': number;
  'kernel µs/ack': number;
}

async function runOnce(root: string): Promise<Row> {
  const src = (path: string) => join(root, 'packages/server/src', path);
  const { PostgresStore } = (await import(
    src('store/postgres/postgres-store.ts')
  )) as typeof import('../packages/server/src/store/postgres/postgres-store.ts');
  const { LogWriter } = (await import(
    src('log/log-writer.ts')
  )) as typeof import('../packages/server/src/log/log-writer.ts');
  const { CollectionRegistry } = (await import(
    src('core/collections.ts')
  )) as typeof import('../packages/server/src/core/collections.ts');
  const { HybridClock } = (await import(
    src('core/hlc.ts')
  )) as typeof import('../packages/server/src/core/hlc.ts');

  const schema = `sb_bench_${randomBytes(6).toString('hex')}`;
  const store = new PostgresStore({ connectionString: URL, schema });
  await store.migrate();
  let commits = 0;
  let committed = 0;
  const writer = new LogWriter({
    store,
    collections: new CollectionRegistry(store, {}),
    clock: new HybridClock('bench'),
    logger: pino({ level: 'silent' }),
    observer: {
      committed: (n) => {
        if (!measuring) return;
        commits += 1;
        committed += n;
      },
    },
  });
  const data = { sku: 'SKU-000000', qty: 0, location: 'warehouse-1', note: 'x'.repeat(40) };
  let stop = false;
  let measuring = false;
  let acked = 0;
  let n = 0;
  const run = randomBytes(4).toString('hex');
  const loops = Array.from({ length: writers }, async (_, w) => {
    const principal = {
      tenant: tenants > 1 ? `bench-${w % tenants}` : 'bench',
      user: `writer-${w}`,
      roles: [],
    } as unknown as Parameters<typeof writer.mutate>[0];
    while (!stop) {
      const i = n++;
      const [result] = await writer.mutate(principal, [
        {
          mid: `${run}-${i}`,
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
  await new Promise((resolve) => setTimeout(resolve, 3000)); // warm-up, not counted
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const elapsed = (performance.now() - t0) / 1000;
  measuring = false;
  const counted = acked;
  stop = true;
  await Promise.all(loops);
  await store.close();
  const admin = new pg.Client({ connectionString: URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  return {
    'acks/s': Math.round(counted / elapsed),
    'acks/commit': Number((committed / Math.max(1, commits)).toFixed(2)),
    'CPU µs/ack': Number(((cpu.user + cpu.system) / counted).toFixed(1)),
    'kernel µs/ack': Number((cpu.system / counted).toFixed(1)),
  };
}

const all = new Map<string, Row[]>(roots.map((r) => [r, []]));
for (let round = 1; round <= rounds; round++) {
  // A B, then B A: the machine drifts, and the one run second would gain from it every round.
  for (const root of round % 2 === 1 ? roots : [...roots].reverse()) {
    const load = loadAverage1m().toFixed(2);
    const row = await runOnce(root);
    all.get(root)!.push(row);
    console.log(JSON.stringify({ round, checkout: root, 'load average': load, ...row }));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [root, rows] of all) {
  console.log(
    `${root}: median CPU µs/ack ${median(rows.map((r) => r['CPU µs/ack']))}, ` +
      `acks/s ${median(rows.map((r) => r['acks/s']))}, acks/commit ${median(rows.map((r) => r['acks/commit']))}`,
  );
}
if (roots.length === 2) {
  const [a, b] = roots.map((r) => all.get(r)!);
  const ratios = a!.map((r, i) => b![i]!['CPU µs/ack'] / r['CPU µs/ack']);
  console.log(
    `CPU per ack, ${roots[1]} / ${roots[0]}: median of pairwise ratios ${median(ratios).toFixed(3)}`,
  );
}
await new Promise((r) => setTimeout(r, 10));
process.exit(0);
