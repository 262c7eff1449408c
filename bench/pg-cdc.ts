/**
 * The pg-cdc connector, from a platform's PostgreSQL table to a WebSocket subscriber:
 *
 * 1. Throughput: `--writers` connections commit transactions of `--rows` inserted rows each into the
 *    source table as fast as they can, for the window; changes/s is the rows the subscriber received
 *    divided by the time from the first commit to the last delivery.
 * 2. Latency at a fixed rate below saturation: the same connections, in turn, commit `--rate`
 *    single-row transactions per second (autocommit INSERT, open loop on a 1 ms timer); each row carries its send
 *    time (`performance.now()` of this process), the subscriber subtracts it on receipt. The figure
 *    covers the source's commit and WAL decoding, the walsender, the connector, syncbridge's durable
 *    group commit, fan-out and the WebSocket hop.
 *
 *   node --import tsx bench/pg-cdc.ts [--quick] [--store sqlite|postgres|all] [--reps 3] [--window 10]
 *                                     [--rate 200] [--writers 4] [--rows 10]
 *
 * The source is a fresh database `cdc_bench_<random>` on the local PostgreSQL; its slot and the
 * database are dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openSocket, syncbridgeUrl, terminateAll } from './lib/clients.ts';
import { onCleanup, runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from './lib/options.ts';
import { loadAverage1m } from './lib/proc.ts';
import {
  commandLine,
  type Figure,
  figure,
  formatNumber,
  machine,
  printTable,
  saveSection,
} from './lib/report.ts';
import { POSTGRES_URL, type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { percentileSorted, summarize } from './lib/stats.ts';

const ADMIN_KEY = 'bench-pg-cdc-admin-key-0123456789abcdef';

interface Source {
  url: string;
  publication: string;
  drop(): Promise<void>;
}

async function createSource(): Promise<Source> {
  const id = randomBytes(5).toString('hex');
  const name = `cdc_bench_${id}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  await client.query(`CREATE TABLE rows (id bigint PRIMARY KEY, t double precision NOT NULL, rec boolean NOT NULL,
                        sku text NOT NULL, qty integer NOT NULL, note text NOT NULL);
                      CREATE PUBLICATION cdc_bench_pub FOR TABLE rows;`);
  await client.end();
  const drop = async () => {
    for (let i = 0; i < 50; i++) {
      await admin.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
        [name],
      );
      try {
        await admin.query(
          'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
          [name],
        );
        break;
      } catch {
        await sleep(100);
      }
    }
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
  return { url: url.toString(), publication: 'cdc_bench_pub', drop };
}

async function rest(base: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      'x-api-key': ADMIN_KEY,
      'X-Tenant': 'bench',
      'Content-Type': 'application/json',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function measure(
  store: StoreKind,
  options: ReturnType<typeof benchOptions>,
  flags: Record<string, number>,
) {
  const source = await createSource();
  const unregister = onCleanup({ run: source.drop, runSync: () => {} });
  const server = await startSyncbridge({
    store,
    env: { SYNCBRIDGE_ADMIN_KEY: ADMIN_KEY, SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32' },
  });
  const base = server.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  const created = await rest(base, 'POST', '/v1/connectors', {
    name: 'bench-db',
    kind: 'pg-cdc',
    connection: source.url,
    publication: source.publication,
    tables: [{ table: 'rows', collection: 'cdc' }],
  });
  if (created.status !== 201) throw new Error(`connector: ${created.status} ${await created.text()}`);
  for (;;) {
    const status = (await (await rest(base, 'GET', '/v1/connectors/bench-db')).json()) as {
      details?: { phase?: string };
    };
    if (status.details?.phase === 'streaming') break;
    await sleep(100);
  }
  const ws = await openSocket(syncbridgeUrl(server.wsUrl, await server.token('subscriber')), {
    welcome: true,
  });
  ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel: 'records:cdc' }));
  let received = 0;
  let lastAt = 0;
  let latencies: number[] = [];
  ws.on('message', (data: Buffer) => {
    const now = performance.now();
    const m = JSON.parse(data.toString()) as { type: string; data?: { t: number; rec: boolean } };
    if (m.type !== 'event') return;
    received += 1;
    lastAt = now;
    if (m.data?.rec) latencies.push(now - m.data.t);
  });
  let nextId = 1;
  const row = (record: boolean) => [nextId++, performance.now(), record, 'SKU-000000', 1, 'x'.repeat(24)];
  const clients = await Promise.all(
    Array.from({ length: Math.max(1, flags.writers!) }, async () => {
      const c = new pg.Client({ connectionString: source.url });
      await c.connect();
      return c;
    }),
  );
  const insert = 'INSERT INTO rows (id, t, rec, sku, qty, note) VALUES ';
  const values = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => `($${i * 6 + 1}, $${i * 6 + 2}, $${i * 6 + 3}, $${i * 6 + 4}, $${i * 6 + 5}, $${i * 6 + 6})`,
    ).join(', ');

  const throughput: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  for (let rep = 0; rep < options.reps; rep++) {
    // 1. Throughput: writers as fast as they go for the window, then wait for the last delivery.
    const before = received;
    const start = performance.now();
    let committed = 0;
    const stopAt = start + options.windowSeconds * 1000;
    await Promise.all(
      clients.map(async (c) => {
        while (performance.now() < stopAt) {
          const rows = Array.from({ length: flags.rows! }, () => row(false)).flat();
          await c.query(insert + values(flags.rows!), rows);
          committed += flags.rows!;
        }
      }),
    );
    while (received - before < committed) await sleep(20);
    const rate = committed / ((lastAt - start) / 1000);
    throughput.push(rate);
    process.stdout.write(`rep ${rep + 1}: ${formatNumber(rate)} changes/s (${committed} rows)\n`);

    // 2. Latency at a fixed rate, open loop.
    await sleep(500);
    const total = Math.round(flags.rate! * options.windowSeconds);
    const warm = Math.round(flags.rate! * options.warmupSeconds);
    latencies = [];
    let sent = 0;
    const t0 = performance.now();
    const pending: Promise<unknown>[] = [];
    while (sent < total + warm) {
      const due = Math.floor(((performance.now() - t0) / 1000) * flags.rate!);
      while (sent < due && sent < total + warm) {
        // Round robin over the connections: one alone waits for the source's fsync of each commit.
        pending.push(clients[sent % clients.length]!.query(insert + values(1), row(sent >= warm)));
        sent += 1;
      }
      await sleep(1);
    }
    await Promise.all(pending);
    const deadline = performance.now() + 30_000;
    while (latencies.length < total && performance.now() < deadline) await sleep(20);
    const sorted = Float64Array.from(latencies).sort();
    p50.push(percentileSorted(sorted, 0.5));
    p99.push(percentileSorted(sorted, 0.99));
    process.stdout.write(
      `rep ${rep + 1}: ${flags.rate} tx/s: p50 ${p50.at(-1)!.toFixed(2)} ms, p99 ${p99.at(-1)!.toFixed(2)} ms (${latencies.length}/${total})\n`,
    );
  }
  for (const c of clients) await c.end();
  terminateAll([ws]);
  await rest(base, 'DELETE', '/v1/connectors/bench-db');
  await server.stop();
  await source.drop();
  unregister();
  const common = { system: `syncbridge/${store}`, durability: server.durability };
  return [
    figure({
      ...common,
      name: `pg-cdc changes/s, source table to subscriber (${flags.writers} writers × ${flags.rows}-row transactions)`,
      unit: 'changes/s',
      summary: summarize(throughput),
    }),
    figure({
      ...common,
      name: `pg-cdc commit-to-delivery p50 at ${flags.rate} tx/s`,
      unit: 'ms',
      summary: summarize(p50),
    }),
    figure({
      ...common,
      name: `pg-cdc commit-to-delivery p99 at ${flags.rate} tx/s`,
      unit: 'ms',
      summary: summarize(p99),
    }),
  ];
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      rate: { type: 'string' },
      writers: { type: 'string' },
      rows: { type: 'string' },
    },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite']);
  const flags = {
    rate: numberFlag(values, 'rate', 200),
    writers: numberFlag(values, 'writers', 4),
    rows: numberFlag(values, 'rows', 10),
  };
  const load = loadAverage1m();
  process.stdout.write(
    `pg-cdc: ${JSON.stringify({ ...options, ...flags })} (load average ${load.toFixed(2)})\n`,
  );
  const figures: Figure[] = [];
  for (const store of options.stores) figures.push(...(await measure(store, options, flags)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'pg-cdc',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Throughput: rows received by one subscriber / (last delivery - first commit); writers run closed loop.',
      'Latency: subscriber receive time - send time of the autocommit INSERT, both performance.now() in this process.',
    ],
  });
}

runMain(main, 900);
