/**
 * Compact history: what a superseded version costs to keep and to read, and what compaction costs the
 * write path.
 *
 * 1. Storage and reads (server in this process, SQLite and PostgreSQL): one 10 KB document (40
 *    paragraphs) is written, then edited 100 times with small changes (one paragraph gets a sentence
 *    longer each time), over REST. The log's data bytes of that record are summed before and after the
 *    compaction job ran (full copies vs deltas and keyframes); then every old version is read back,
 *    through the store (one log entry) and through `GET /v1/records/docs/d/versions/{v}`, with timings.
 * 2. CPU per acknowledged write (server in a child process, measured through /proc): 2,000 such edits
 *    (20 documents x 100) at 8 in flight, with compaction off and with compaction on at its most eager
 *    (every 200 ms, versions compacted as soon as they are superseded), alternating off/on; the "on"
 *    window lasts until compaction has caught up, so it carries all the compaction work.
 *
 *   node --import tsx bench/history.ts [--store sqlite|postgres|all] [--edits 100] [--reps 3]
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LogEvent } from '@syncbridge/protocol';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../packages/server/src/config/config.ts';
import { startServer } from '../packages/server/src/server.ts';
import { POSTGRES_URL, type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'all' },
    edits: { type: 'string', default: '100' },
    reps: { type: 'string', default: '3' },
  },
});
const EDITS = Number(values.edits);
const REPS = Number(values.reps);
const stores: StoreKind[] = values.store === 'all' ? ['sqlite', 'postgres'] : [values.store as StoreKind];
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

/** The document after `edit` small edits: ~10 KB of JSON. */
function documentAt(edit: number, doc = 0): Record<string, unknown> {
  const paragraphs = Array.from(
    { length: 40 },
    (_, i) => `Paragraph ${i} of ${doc}: ${'the quick brown fox jumps over the lazy dog '.repeat(5)}`,
  );
  for (let e = 1; e <= edit; e++) paragraphs[(e * 7) % 40] = `${paragraphs[(e * 7) % 40]} Edit ${e}.`;
  return { title: `Document ${doc}`, paragraphs, meta: { edits: edit, by: `user-${edit % 3}` } };
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

interface Reads {
  storeMs: number[];
  restMs: number[];
  /** CPU time of this process (server and client both run here): not inflated by the machine's load. */
  storeCpuMs: number[];
  restCpuMs: number[];
  mismatches: number;
}

/** Reads every old version 3 times, through the store (one log entry) and through REST `GET /v1/records/{c}/{id}/versions/{v}`. */
async function timeReads(
  server: Awaited<ReturnType<typeof startServer>>,
  versions: string[],
  events: LogEvent[],
): Promise<Reads> {
  const headers = { 'x-api-key': ADMIN_KEY, 'x-tenant': 'bench' };
  const r: Reads = { storeMs: [], restMs: [], storeCpuMs: [], restCpuMs: [], mismatches: 0 };
  for (let round = 0; round < 3; round++) {
    for (const e of events.slice(0, -1)) {
      const t = performance.now();
      const cpu = process.cpuUsage();
      const [one] = await server.store.readEvents('bench', { afterSeq: e.seq - 1, limit: 1 });
      const used = process.cpuUsage(cpu);
      r.storeMs.push(performance.now() - t);
      r.storeCpuMs.push((used.user + used.system) / 1000);
      if (JSON.stringify(one!.data) !== JSON.stringify(e.data)) r.mismatches++;
    }
    for (let v = 1; v <= versions.length; v++) {
      const t = performance.now();
      const cpu = process.cpuUsage();
      const text = await (await fetch(`${server.url}/v1/records/docs/d/versions/${v}`, { headers })).text();
      const used = process.cpuUsage(cpu);
      r.restMs.push(performance.now() - t);
      r.restCpuMs.push((used.user + used.system) / 1000);
      if (text !== versions[v - 1]) r.mismatches++;
    }
  }
  for (const xs of [r.storeMs, r.restMs, r.storeCpuMs, r.restCpuMs]) xs.sort((a, b) => a - b);
  return r;
}

async function storageAndReads(kind: StoreKind): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-history-bench-'));
  const schema = `sb_hbench_${randomBytes(5).toString('hex')}`;
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      adminKey: ADMIN_KEY,
      jwtSecret: 'bench-jwt-secret-0123456789abcdef0123456789abcdef',
      logLevel: 'silent',
      dataDir,
      historyCompaction: { intervalMs: 0, afterMs: 0, batchSize: 500 },
      ...(kind === 'postgres' ? { databaseUrl: POSTGRES_URL, databaseSchema: schema } : {}),
    },
  });
  const server = await startServer(config, { logger: pino({ level: 'silent' }) });
  const headers = { 'x-api-key': ADMIN_KEY, 'x-tenant': 'bench', 'content-type': 'application/json' };
  try {
    for (let e = 0; e <= EDITS; e++) {
      const res = await fetch(`${server.url}/v1/records/docs/d`, {
        method: 'PUT',
        headers,
        body: JSON.stringify(documentAt(e)),
      });
      if (!res.ok) throw new Error(`write ${e}: ${res.status} ${await res.text()}`);
    }
    const full = JSON.stringify(documentAt(EDITS)).length;
    const bytes = async () => {
      const sql = `SELECT coalesce(length(packed), 0) + coalesce(length(data${kind === 'postgres' ? '::text' : ''}), 0) AS n
        FROM events WHERE kind = 'record' AND record_id = 'd' ORDER BY seq`;
      if (kind === 'sqlite') {
        const { default: Database } = await import('better-sqlite3');
        const db = new Database(join(dataDir, 'syncbridge.db'), { readonly: true });
        try {
          return db
            .prepare<[], { n: number }>(sql)
            .all()
            .map((r) => Number(r.n));
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`SET search_path TO "${schema}"`);
        return (await client.query<{ n: string }>(sql)).rows.map((r) => Number(r.n));
      } finally {
        await client.end();
      }
    };
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const before = await bytes();
    const versionsBefore: string[] = [];
    for (let v = 1; v <= EDITS; v++) {
      versionsBefore.push(
        await (await fetch(`${server.url}/v1/records/docs/d/versions/${v}`, { headers })).text(),
      );
    }
    const eventsBefore = await server.store.readEvents('bench', {
      afterSeq: 0,
      limit: 1000,
      kind: 'record',
      recordId: 'd',
    });
    const full0 = await timeReads(server, versionsBefore, eventsBefore);
    const started = performance.now();
    await server.compactHistory(Date.now() + 1000);
    const compactMs = performance.now() - started;
    const after = await bytes();
    // Superseded versions only: the current one stays a full copy either way.
    const superseded = (xs: number[]) => sum(xs.slice(0, -1)) / (xs.length - 1);
    // Reading old versions: through the store (one log entry, as history and merge bases read it) and
    // through REST `GET /v1/records/{c}/{id}/versions/{v}`.
    console.log(
      `${kind}: document ${(full / 1024).toFixed(1)} KB, ${EDITS} edits; superseded version: ` +
        `${superseded(before).toFixed(0)} B as a full copy -> ${superseded(after).toFixed(0)} B compacted ` +
        `(${(superseded(before) / superseded(after)).toFixed(1)}x smaller); whole record history ` +
        `${(sum(before) / 1024).toFixed(1)} KB -> ${(sum(after) / 1024).toFixed(1)} KB; compaction took ${compactMs.toFixed(0)} ms`,
    );
    const compacted = await timeReads(server, versionsBefore, eventsBefore);
    for (const [label, r] of [
      ['full copies', full0],
      ['compacted', compacted],
    ] as const) {
      console.log(
        `${kind}: read one old version (${label}): store wall p50 ${pct(r.storeMs, 0.5).toFixed(2)} / p99 ${pct(r.storeMs, 0.99).toFixed(2)} ms, ` +
          `CPU p50 ${pct(r.storeCpuMs, 0.5).toFixed(2)} / p99 ${pct(r.storeCpuMs, 0.99).toFixed(2)} ms; ` +
          `GET /versions/{v} wall p50 ${pct(r.restMs, 0.5).toFixed(2)} / p99 ${pct(r.restMs, 0.99).toFixed(2)} ms, ` +
          `CPU (server and client) p50 ${pct(r.restCpuMs, 0.5).toFixed(2)} / p99 ${pct(r.restCpuMs, 0.99).toFixed(2)} ms; ` +
          `${r.mismatches === 0 ? 'every version identical' : `${r.mismatches} MISMATCHES`}`,
      );
    }
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (kind === 'postgres') {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  }
}

const DOCS = 20;
const IN_FLIGHT = 8;

/** Server CPU µs per acknowledged write for DOCS x EDITS edits, with compaction off or eager. */
async function cpuPerWrite(kind: StoreKind, compaction: boolean, configDir: string): Promise<number> {
  const file = join(configDir, compaction ? 'on.json' : 'off.json');
  writeFileSync(
    file,
    JSON.stringify({
      historyCompaction: compaction ? { intervalMs: 200, afterMs: 0, batchSize: 500 } : { intervalMs: 0 },
    }),
  );
  const sut = await startSyncbridge({
    store: kind,
    env: { SYNCBRIDGE_CONFIG: file, SYNCBRIDGE_LOG_LEVEL: 'warn' },
  });
  try {
    const base = sut.wsUrl.replace(/^ws/, 'http').replace('/v1/realtime', '');
    const headers = { 'x-api-key': ADMIN_KEY, 'x-tenant': 'bench', 'content-type': 'application/json' };
    const bodies = Array.from({ length: DOCS }, (_, d) =>
      Array.from({ length: EDITS + 1 }, (_, e) => JSON.stringify(documentAt(e, d))),
    );
    const put = async (d: number, e: number) => {
      const res = await fetch(`${base}/v1/records/docs/d${d}`, {
        method: 'PUT',
        headers,
        body: bodies[d]![e],
      });
      if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    };
    // Warm-up: each document's first version (not measured).
    for (let d = 0; d < DOCS; d++) await put(d, 0);
    const cpuStart = sut.cpuMicros();
    let next = 0;
    const jobs = Array.from(
      { length: DOCS * EDITS },
      (_, i) => [i % DOCS, 1 + Math.floor(i / DOCS)] as const,
    );
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < jobs.length) {
          const [d, e] = jobs[next++]!;
          await put(d, e);
        }
      }),
    );
    if (compaction) {
      // Until compaction caught up: every superseded version compacted.
      const deadline = Date.now() + 120_000;
      for (;;) {
        const packed = await countPacked(kind, sut);
        if (packed >= DOCS * EDITS || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } else {
      await new Promise((r) => setTimeout(r, 500));
    }
    return (sut.cpuMicros() - cpuStart) / (DOCS * EDITS);
  } finally {
    await sut.stop();
  }
}

/** How many log entries are compacted, read from the server's database. */
async function countPacked(kind: StoreKind, sut: { pid: number }): Promise<number> {
  // The server's data dir or schema, from its environment.
  const text = readFileSync(`/proc/${sut.pid}/environ`, 'utf8');
  const env = Object.fromEntries(
    text.split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const sql = "SELECT count(*) AS n FROM events WHERE kind = 'record' AND packed IS NOT NULL";
  if (kind === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(env.SYNCBRIDGE_DATA_DIR!, 'syncbridge.db'), { readonly: true });
    try {
      return Number(db.prepare<[], { n: number }>(sql).get()!.n);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${env.SYNCBRIDGE_DATABASE_SCHEMA}"`);
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (const kind of stores) await storageAndReads(kind);
const configDir = mkdtempSync(join(tmpdir(), 'syncbridge-history-bench-config-'));
try {
  for (const kind of stores) {
    const off: number[] = [];
    const on: number[] = [];
    const ratios: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const a = await cpuPerWrite(kind, false, configDir);
      const b = await cpuPerWrite(kind, true, configDir);
      off.push(a);
      on.push(b);
      ratios.push(b / a);
    }
    console.log(
      `${kind}: server CPU per acknowledged write (${DOCS}x${EDITS} edits of 10 KB documents, ${IN_FLIGHT} in flight): ` +
        `compaction off ${median(off).toFixed(0)} µs [${off.map((x) => x.toFixed(0)).join(', ')}], ` +
        `eager compaction on ${median(on).toFixed(0)} µs [${on.map((x) => x.toFixed(0)).join(', ')}]; ` +
        `paired ratio on/off median ${median(ratios).toFixed(2)} [${ratios.map((x) => x.toFixed(2)).join(', ')}]`,
    );
  }
} finally {
  rmSync(configDir, { recursive: true, force: true });
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
