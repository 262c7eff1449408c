/**
 * The client's offline replica: how fast an app opens offline with 100,000 cached records, how many
 * bytes a reconnect after 1,000 missed changes moves, and the Node store measured against SQLite.
 *
 *   node --import tsx bench/client-replica.ts [--only open,reconnect,stores] [--records 100000] [--reps 3]
 *     [--first-page 500] [--profile DIR]   (open: write a V8 CPU profile of each child process into DIR)
 *
 * - open: fills a FileStorage through a real client (a protocol-level fake server sends a snapshot of
 *   `--records` records), then, in a fresh plain `node` process per repetition running
 *   bench/client-replica-open.mjs on the BUILT client (dist: `npm run build` first), with no server, times
 *   `new SyncClient(...)` to the first `subscribe` call (`source: 'storage'`). Target <= 300 ms. Then the
 *   same with `replicaFirstPage: --first-page` (default 500): the first call has that page, and
 *   `whenLoaded()` all records.
 * - reconnect: a real server (SQLite) with 1,000 records; a client stores them and closes; another
 *   client makes 1,000 patches while a live client counts the bytes they take on its socket; the first
 *   client comes back on its storage and its socket's bytes until it is caught up are counted. Target
 *   <= 1.2x the live bytes (backlog only, no snapshot); a client without a replica is shown beside it.
 * - stores: the FileStorage log against a SQLite store (better-sqlite3, written here for the comparison
 *   only): fill, 1,000-record update and load of `--records` records, and file size.
 *
 * Figures go to stdout as JSON lines and a summary table; docs/benchmarks.md quotes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SyncRecord } from '@syncbridge/protocol';
import { WebSocket } from 'ws';
import { FileStorage, SyncClient, type WebSocketConstructor } from '../packages/client/src/index.ts';
import type { ReplicaState, ReplicaWrite, StoredRecord } from '../packages/client/src/storage/types.ts';
import { FakeServer } from '../packages/client/test/fake-server.ts';
import { mintToken, waitFor } from '../packages/client/test/helpers.ts';
import { startTestServer } from '../packages/server/test/helpers/server.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    only: { type: 'string' },
    records: { type: 'string' },
    reps: { type: 'string' },
    'first-page': { type: 'string' },
    profile: { type: 'string' },
  },
  strict: true,
});
const RECORDS = Number(values.records ?? 100_000);
const REPS = Number(values.reps ?? 3);
const FIRST_PAGE = Number(values['first-page'] ?? 500);
const REPLICA_KEY = 'bench-user';

function item(i: number): Record<string, unknown> {
  return {
    sku: `sku-${String(i).padStart(6, '0')}`,
    name: `Item number ${i}`,
    qty: i % 97,
    price: Math.round(i * 137) / 100,
    locationId: `wh-${i % 8}`,
  };
}

function snapshotRecord(i: number): SyncRecord {
  return {
    collection: 'items',
    id: `i${String(i).padStart(6, '0')}`,
    data: item(i),
    version: 1,
    hlc: '000000000000001-0000-bench',
    updatedAt: '2026-12-07T00:00:00.000Z',
    updatedBy: 'bench',
    deleted: false,
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const figures: Array<{ name: string; value: number; unit: string; target?: string }> = [];
function report(name: string, value: number, unit: string, target?: string): void {
  const figure = { name, value: Math.round(value * 100) / 100, unit, ...(target ? { target } : {}) };
  figures.push(figure);
  console.log(JSON.stringify(figure));
}

// ---- open ------------------------------------------------------------------------------------

/** The measured child: plain `node`, the built client (dist), no tsx (see client-replica-open.mjs). */
const OPEN_CHILD = join(import.meta.dirname, 'client-replica-open.mjs');
const BUILT_CLIENT = join(import.meta.dirname, '../packages/client/dist/index.js');

async function fillFileStorage(path: string): Promise<void> {
  const fake = await FakeServer.start();
  fake.onMessage((m, reply) => {
    if (m.type !== 'subscribe') return;
    reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: RECORDS });
    const chunk = 2000;
    for (let start = 0; start < RECORDS; start += chunk) {
      const records = [];
      for (let i = start; i < Math.min(RECORDS, start + chunk); i++) records.push(snapshotRecord(i));
      reply({
        type: 'snapshot',
        channel: m.channel,
        records,
        cursor: RECORDS,
        done: start + chunk >= RECORDS,
      });
    }
  });
  const client = new SyncClient({
    url: fake.url,
    token: 't',
    replicaKey: REPLICA_KEY,
    storage: new FileStorage(path),
  });
  client.collection('items').subscribe(() => undefined);
  await waitFor(() => client.collection('items').list().length === RECORDS, 'the snapshot', 120_000);
  await client.persisted();
  await client.close();
  await fake.close();
}

async function benchOpen(): Promise<void> {
  if (!existsSync(BUILT_CLIENT)) throw new Error('open measures the built client: run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), 'bench-replica-'));
  const path = join(dir, 'client.log');
  const t0 = performance.now();
  await fillFileStorage(path);
  report('open: fill FileStorage through a client (snapshot of N records)', performance.now() - t0, 'ms');
  report('open: FileStorage size', statSync(path).size / 1024 / 1024, 'MB');
  for (const firstPage of [undefined, FIRST_PAGE]) {
    const renders: number[] = [];
    const loads: number[] = [];
    const cpuTimes: number[] = [];
    const loadCpuTimes: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const child = spawnSync(
        process.execPath,
        [
          ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : []),
          OPEN_CHILD,
          path,
          ...(firstPage === undefined ? [] : [String(firstPage)]),
        ],
        { encoding: 'utf8' },
      );
      if (child.status !== 0) throw new Error(`open child failed: ${child.stderr}`);
      const line = child.stdout.trim().split('\n').pop() ?? '';
      const result = JSON.parse(line) as {
        renderMs: number;
        cpuMs: number;
        loadedMs: number;
        loadedCpuMs: number;
        count: number;
        loadedCount: number;
        source: string;
      };
      const first = firstPage === undefined ? RECORDS : Math.min(firstPage, RECORDS);
      if (result.count !== first || result.loadedCount !== RECORDS || result.source !== 'storage')
        throw new Error(`bad first render: ${line}`);
      renders.push(result.renderMs);
      loads.push(result.loadedMs);
      cpuTimes.push(result.cpuMs);
      loadCpuTimes.push(result.loadedCpuMs);
    }
    const how = firstPage === undefined ? 'all at once' : `replicaFirstPage ${firstPage}`;
    const shown = firstPage === undefined ? `${RECORDS}` : `the first ${firstPage} of ${RECORDS}`;
    report(
      `open offline (${how}): new SyncClient to first render of ${shown} records (median of ${REPS})`,
      median(renders),
      'ms',
      '<= 300',
    );
    report(`open offline (${how}): whenLoaded(), all ${RECORDS} records (median)`, median(loads), 'ms');
    report(
      `open offline (${how}): CPU time of the process until the first render (median)`,
      median(cpuTimes),
      'ms',
    );
    report(`open offline (${how}): CPU time until whenLoaded() (median)`, median(loadCpuTimes), 'ms');
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---- reconnect --------------------------------------------------------------------------------

function countingWebSocket(counter: { bytes: number }): WebSocketConstructor {
  class Counting extends WebSocket {
    constructor(url: string) {
      super(url);
      this.on('message', (data: Buffer) => {
        counter.bytes += data.length;
      });
    }
  }
  return Counting as unknown as WebSocketConstructor;
}

async function benchReconnect(): Promise<void> {
  const srv = await startTestServer('sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'bench-reconnect-'));
  try {
    const token = await mintToken(srv.url, 'bench', 'alice');
    const post = async (mutations: unknown[]) => {
      const res = await fetch(`${srv.url}/v1/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mutations }),
      });
      if (!res.ok) throw new Error(`mutations: HTTP ${res.status}`);
    };
    const N = 1000;
    for (let start = 0; start < N; start += 100) {
      await post(
        Array.from({ length: 100 }, (_, k) => ({
          mid: `seed-${start + k}`,
          collection: 'items',
          id: `i${start + k}`,
          op: 'put',
          data: item(start + k),
        })),
      );
    }
    const path = join(dir, 'client.log');
    const away = new SyncClient({ url: srv.wsUrl, token, storage: new FileStorage(path) });
    away.collection('items').subscribe(() => undefined);
    await waitFor(() => away.collection('items').list().length === N, 'the first load');
    await away.persisted();
    await away.close();

    const live = { bytes: 0 };
    const watcher = new SyncClient({ url: srv.wsUrl, token, WebSocket: countingWebSocket(live) });
    watcher.collection('items').subscribe(() => undefined);
    await watcher.whenOpen(10_000);
    await waitFor(() => watcher.collection('items').list().length === N, 'the watcher to load');
    live.bytes = 0;
    for (let start = 0; start < N; start += 100) {
      await post(
        Array.from({ length: 100 }, (_, k) => ({
          mid: `patch-${start + k}`,
          collection: 'items',
          id: `i${start + k}`,
          op: 'patch',
          data: { qty: 1000 + start + k },
        })),
      );
    }
    const caughtUp = (c: SyncClient) => () =>
      c.state === 'open' &&
      c
        .collection<{ qty: number }>('items')
        .list()
        .every((r) => r.version === 2);
    await waitFor(caughtUp(watcher), 'the watcher to see every change', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const liveBytes = live.bytes;
    await watcher.close();

    const back = { bytes: 0 };
    const returning = new SyncClient({
      url: srv.wsUrl,
      token,
      storage: new FileStorage(path),
      WebSocket: countingWebSocket(back),
    });
    const sources = new Set<string>();
    returning.collection('items').subscribe((_r, change) => sources.add(change.source));
    await waitFor(caughtUp(returning), 'the returning client to catch up', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    if (sources.has('snapshot')) throw new Error('the returning client loaded a snapshot');
    await returning.close();

    const fresh = { bytes: 0 };
    const noReplica = new SyncClient({ url: srv.wsUrl, token, WebSocket: countingWebSocket(fresh) });
    noReplica.collection('items').subscribe(() => undefined);
    await waitFor(caughtUp(noReplica), 'a client without replica to load', 30_000);
    await noReplica.close();

    report('reconnect: bytes of the 1,000 changes on a live socket', liveBytes, 'bytes');
    report('reconnect: bytes a returning client (replica) receives until caught up', back.bytes, 'bytes');
    report('reconnect: returning / live', back.bytes / liveBytes, 'x', '<= 1.2');
    report(
      'reconnect: bytes a client without replica receives (snapshot of 1,000 records)',
      fresh.bytes,
      'bytes',
    );
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- stores: the log against SQLite -----------------------------------------------------------

interface BenchStore {
  loadReplica(scope: string): Promise<ReplicaState>;
  writeReplica(scope: string, write: ReplicaWrite): Promise<void>;
  close(): Promise<void>;
}

async function sqliteStore(path: string): Promise<BenchStore> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS records (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT,
    version INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS channels (channel TEXT PRIMARY KEY, cursor INTEGER NOT NULL, used_at INTEGER NOT NULL);`);
  const upsert = db.prepare(
    'INSERT INTO records (collection, id, data, version, seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET data = excluded.data, version = excluded.version, seq = excluded.seq',
  );
  const forget = db.prepare('DELETE FROM records WHERE collection = ? AND id = ?');
  const channel = db.prepare('INSERT OR REPLACE INTO channels (channel, cursor, used_at) VALUES (?, ?, ?)');
  const all = db.prepare('SELECT collection, id, data, version, seq FROM records');
  const apply = db.transaction((write: ReplicaWrite) => {
    for (const r of write.records)
      upsert.run(r.collection, r.id, r.data === null ? null : JSON.stringify(r.data), r.version, r.seq);
    for (const [c, id] of write.forget) forget.run(c, id);
    for (const c of write.channels) channel.run(c.channel, c.cursor, c.usedAt);
  });
  return {
    async loadReplica() {
      const rows = all.all() as Array<{
        collection: string;
        id: string;
        data: string | null;
        version: number;
        seq: number;
      }>;
      const records: StoredRecord[] = rows.map((r) => ({
        ...r,
        data: r.data === null ? null : JSON.parse(r.data),
      }));
      return { records, channels: [] };
    },
    async writeReplica(_scope, write) {
      apply(write);
    },
    async close() {
      db.close();
    },
  };
}

async function fileStore(path: string): Promise<BenchStore> {
  const storage = new FileStorage(path);
  await storage.load();
  return storage;
}

async function benchStores(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-stores-'));
  const records: StoredRecord[] = Array.from({ length: RECORDS }, (_, i) => ({
    collection: 'items',
    id: `i${i}`,
    data: item(i),
    version: 1,
    seq: i + 1,
  }));
  const changes: StoredRecord[] = records
    .slice(0, 1000)
    .map((r) => ({ ...r, version: 2, seq: r.seq + RECORDS }));
  try {
    for (const [name, open, file] of [
      ['log (FileStorage)', fileStore, 'client.log'],
      ['SQLite (better-sqlite3, WAL)', sqliteStore, 'client.db'],
    ] as const) {
      const path = join(dir, file);
      const store = await open(path);
      await store.loadReplica('s');
      let t = performance.now();
      for (let i = 0; i < records.length; i += 2000) {
        await store.writeReplica('s', {
          records: records.slice(i, i + 2000),
          forget: [],
          channels: [],
          dropChannels: [],
        });
      }
      report(`stores ${name}: fill ${RECORDS} records in writes of 2,000`, performance.now() - t, 'ms');
      t = performance.now();
      for (let i = 0; i < changes.length; i += 100) {
        await store.writeReplica('s', {
          records: changes.slice(i, i + 100),
          forget: [],
          channels: [],
          dropChannels: [],
        });
      }
      report(`stores ${name}: 1,000 changed records in writes of 100`, performance.now() - t, 'ms');
      await store.close();
      const loads: number[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        t = performance.now();
        const again = await open(path);
        const state = await again.loadReplica('s');
        loads.push(performance.now() - t);
        if (state.records.length !== RECORDS) throw new Error(`${name}: loaded ${state.records.length}`);
        await again.close();
      }
      report(`stores ${name}: open and load ${RECORDS} records (median of ${REPS})`, median(loads), 'ms');
      let bytes = 0;
      for (const suffix of ['', '-wal']) {
        try {
          bytes += statSync(path + suffix).size;
        } catch {}
      }
      report(`stores ${name}: size on disk`, bytes / 1024 / 1024, 'MB');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const only = (values.only ?? 'open,reconnect,stores').split(',');
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    nproc: cpus().length,
    node: process.version,
    load1m: loadavg()[0],
    records: RECORDS,
  }),
);
if (only.includes('stores')) await benchStores();
if (only.includes('open')) await benchOpen();
if (only.includes('reconnect')) await benchReconnect();
console.log(`\n| figure | value | target |\n|---|---|---|`);
for (const f of figures) console.log(`| ${f.name} | ${f.value} ${f.unit} | ${f.target ?? ''} |`);
console.log(JSON.stringify({ load1mEnd: loadavg()[0] }));
process.exit(0);
