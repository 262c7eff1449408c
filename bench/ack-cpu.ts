/**
 * The main thread's own work per acknowledged mutation, without a store or a socket: parsing and
 * validating a one-put `mutate` frame (parseClientFrame), the tenant writer turning a group of 50 such
 * puts into results, log events and records (TenantWriter.run against an in-memory transaction, each
 * put an update so its `previous` is computed), the same groups committed to a SQLite file
 * (synchronous=FULL: the tenant writer and the store's statements, BEGIN ... COMMIT and its fsync,
 * over 5,000 records as in bench/mutations.ts), and encoding the `results` reply. CPU time per
 * mutation (user + system of this process), so a loaded machine moves it less than wall time.
 *
 *   node --import tsx bench/ack-cpu.ts [--rounds 9] [--checkout <dir>]...
 *
 * With one or more --checkout (another worktree's root, e.g. a checkout of main), each round runs every
 * checkout in turn in this one process, and the medians are printed side by side: a paired A/B.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAverage1m } from './lib/proc.ts';
import { ROOT } from './lib/server-process.ts';

const GROUP = 50;
const RECORDS = 100;
/** Records the SQLite stage writes to, as 50 writers × 100 in bench/mutations.ts. */
const SQLITE_RECORDS = 5_000;
const dirs: string[] = [];

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { rounds: { type: 'string' }, checkout: { type: 'string', multiple: true } },
  strict: true,
});
const rounds = Number(values.rounds ?? 9);
const roots = (values.checkout?.length ? values.checkout : [ROOT]).map((r) => resolve(r));

type Stage = 'parse' | 'tenant writer' | 'sqlite commit' | 'reply';
/** Each stage runs `n` mutations' worth of its work. */
type Runner = Record<Stage, (n: number) => void | Promise<void>>;

async function runner(root: string): Promise<Runner> {
  const src = (path: string) => resolve(root, 'packages/server/src', path);
  const { parseClientFrame } = (await import(
    src('realtime/validate.ts')
  )) as typeof import('../packages/server/src/realtime/validate.ts');
  const { TenantWriter } = (await import(
    src('log/tenant-writer.ts')
  )) as typeof import('../packages/server/src/log/tenant-writer.ts');
  const { CollectionRegistry } = (await import(
    src('core/collections.ts')
  )) as typeof import('../packages/server/src/core/collections.ts');
  const { HybridClock } = (await import(
    src('core/hlc.ts')
  )) as typeof import('../packages/server/src/core/hlc.ts');
  const { SqliteStore } = (await import(
    src('store/sqlite/sqlite-store.ts')
  )) as typeof import('../packages/server/src/store/sqlite/sqlite-store.ts');
  type Tx = ConstructorParameters<typeof TenantWriter>[0];
  type Write = Parameters<InstanceType<typeof TenantWriter>['run']>[0][number];
  type Record_ = Awaited<ReturnType<Tx['getRecords']>> extends Map<string, infer R> ? R : never;

  const collections = new CollectionRegistry({ getCollections: async () => new Map() });
  await collections.sync('bench', 0);
  const clock = new HybridClock('bench');
  const stored = new Map<string, Record_>();
  let head = 0;
  const tx: Tx = {
    lockTenant: async () => ({ head, hooksVersion: 0, collectionsVersion: 0 }) as never,
    getResults: async () => new Map(),
    getRecords: async (_t, keys) => {
      const out = new Map<string, Record_>();
      for (const k of keys) {
        const r = stored.get(`${k.collection}\u0000${k.id}`);
        if (r) out.set(`${k.collection}\u0000${k.id}`, r);
      }
      return out;
    },
    getVersionData: async () => new Map(),
    getConflict: async () => null,
    writeBatch: async (_t, batch) => {
      head = batch.head;
      for (const r of batch.records) stored.set(`${r.collection}\u0000${r.id}`, r);
    },
  };
  const principal = { tenant: 'bench', user: 'writer', roles: [] };
  let i = 0;
  const frame = () =>
    JSON.stringify({
      type: 'mutate',
      rid: i,
      mutations: [
        {
          mid: `m-${i}`,
          collection: 'bench',
          id: `r-${i % RECORDS}`,
          op: 'put',
          data: { sku: 'SKU-000000', qty: i++, location: 'warehouse-1', note: 'x'.repeat(40) },
        },
      ],
    });
  const frames = Array.from({ length: GROUP * 20 }, frame);
  const parsed = frames.map((f) => parseClientFrame(f)).map((p) => (p.ok ? p.message : null)!);
  let lastResults: unknown[] = [];
  const tenantWriter = async (n: number) => {
    for (let done = 0; done < n; done += GROUP) {
      const writes: Write[] = [];
      for (let k = 0; k < GROUP; k++) {
        const message = parsed[(done + k) % parsed.length]! as unknown as { mutations: never[] };
        // A fresh mid each time, as a client sends.
        const m = { ...(message.mutations[0] as object), mid: `m-${i++}` } as never;
        writes.push({
          kind: 'mutations',
          principal,
          mutations: [m],
          resolve: (r: unknown[]) => {
            lastResults = r;
          },
          reject: () => {},
        } as never);
      }
      const commit = await new TenantWriter(tx, 'bench', collections, clock).run(writes);
      for (const settle of commit.settle) settle();
    }
  };
  // Warm the records so every put of the measured runs is an update.
  await tenantWriter(RECORDS * 2);
  const dir = mkdtempSync(join(tmpdir(), 'ack-cpu-'));
  dirs.push(dir);
  const store = new SqliteStore({ file: join(dir, 'bench.db') });
  let next = 0;
  const sqliteCommit = async (n: number) => {
    for (let done = 0; done < n; done += GROUP) {
      const writes: Write[] = [];
      for (let k = 0; k < GROUP; k++) {
        const r = next++;
        const m = {
          mid: `s-${r}`,
          collection: 'bench',
          id: `r-${r % SQLITE_RECORDS}`,
          op: 'put',
          data: { sku: 'SKU-000000', qty: r, location: 'warehouse-1', note: 'x'.repeat(40) },
        };
        writes.push({
          kind: 'mutations',
          principal,
          mutations: [m],
          resolve: () => {},
          reject: () => {},
        } as never);
      }
      const commit = await store.transaction((t) =>
        new TenantWriter(t, 'bench', collections, clock).run(writes),
      );
      for (const settle of commit.settle) settle();
    }
  };
  await sqliteCommit(SQLITE_RECORDS * 2);
  return {
    parse: (n) => {
      for (let k = 0; k < n; k++) parseClientFrame(frames[k % frames.length]!);
    },
    'tenant writer': tenantWriter,
    'sqlite commit': sqliteCommit,
    reply: (n) => {
      for (let k = 0; k < n; k++)
        Buffer.from(JSON.stringify({ type: 'results', rid: k, results: lastResults }));
    },
  };
}

async function cpuPerOp(fn: (n: number) => unknown, n: number): Promise<number> {
  const before = process.cpuUsage();
  await fn(n);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

const load = loadAverage1m();
const runners = await Promise.all(roots.map(async (root) => ({ root, run: await runner(root) })));
const samples = new Map<string, number[]>();
const stages: Stage[] = ['parse', 'tenant writer', 'sqlite commit', 'reply'];
for (let round = 0; round <= rounds; round++) {
  for (const { root, run } of runners) {
    for (const stage of stages) {
      const us = await cpuPerOp(
        run[stage],
        stage === 'sqlite commit' ? 10_000 : stage === 'tenant writer' ? 20_000 : 50_000,
      );
      // Round 0 warms the JIT and is not counted.
      if (round > 0) samples.set(`${root}|${stage}`, [...(samples.get(`${root}|${stage}`) ?? []), us]);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`ack-cpu: ${rounds} rounds, load average ${load.toFixed(2)}; CPU µs per mutation (median)`);
for (const { root } of runners) {
  const row: Record<string, string | number> = { checkout: root };
  let total = 0;
  for (const stage of stages) {
    const m = median(samples.get(`${root}|${stage}`)!);
    total += m;
    row[stage] = Number(m.toFixed(2));
  }
  row.total = Number(total.toFixed(2));
  console.log(JSON.stringify(row));
}
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
