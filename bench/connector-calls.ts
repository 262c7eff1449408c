/**
 * What forwarding a connector call costs: two `syncbridge serve` processes on one PostgreSQL schema and
 * a Redis (or NATS) bus, a pull connector (config file) running on the first, and `POST …/trigger`
 * sent one at a time (closed loop) either to the node running it or to the one standing by, which
 * forwards it over the bus. Alternating leader / standby windows (A B A B …), each point reports the
 * round-trip latency (p50, p99) and the CPU of both nodes per call, and the standby/leader ratios of
 * the same repetition. Two calls:
 *   - `run`: a delta pull of one connection from a simulated provider in this process (one HTTP request
 *     upstream, no change, the cursor kept) — a real "Run now";
 *   - `refused`: a trigger naming an unknown connection (404 from the running node) — forwarding alone.
 *
 *   node --import tsx bench/connector-calls.ts [--quick] [--bus redis|nats] [--reps 3] [--window 10] [--warmup 3]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { providerPullSpec, startSimulatedProvider } from '../examples/open-banking-pull/provider.ts';
import { onCleanup, runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS } from './lib/options.ts';
import { loadAverage1m } from './lib/proc.ts';
import {
  commandLine,
  type Figure,
  figure,
  machine,
  printTable,
  progress,
  saveSection,
} from './lib/report.ts';
import { ADMIN_KEY, POSTGRES_URL, type SyncbridgeUnderTest, startSyncbridge } from './lib/server-process.ts';
import { percentileSorted, summarize } from './lib/stats.ts';

const BUS_URLS = {
  redis: process.env.SYNCBRIDGE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  nats: process.env.SYNCBRIDGE_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222',
};
const API_KEY = 'bench-provider-key';
const CONNECTOR = 'bench-bank';

interface Point {
  p50: number;
  p99: number;
  cpuPerCall: number;
  calls: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ...COMMON_FLAGS, bus: { type: 'string' } } });
  const options = benchOptions(values, ['postgres']);
  const bus = (values.bus ?? 'redis') as keyof typeof BUS_URLS;
  if (!(bus in BUS_URLS)) throw new Error(`--bus ${bus}: use redis or nats`);
  const load = loadAverage1m();

  const provider = await startSimulatedProvider({ apiKey: API_KEY });
  onCleanup({ run: () => provider.close(), runSync: () => {} });
  provider.upsertAccount('c1', { id: 'a1', name: 'Checking', iban: 'FR76', balance: 1, currency: 'EUR' });
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-bench-calls-'));
  const configFile = join(dir, 'connectors.json');
  const spec = providerPullSpec({
    name: CONNECTOR,
    tenant: 'bench',
    baseUrl: provider.url,
    apiKey: API_KEY,
    connections: [{ id: 'c1' }],
  });
  writeFileSync(configFile, JSON.stringify({ connectors: { instances: [spec] } }));
  const schema = `sb_bench_calls_${randomBytes(5).toString('hex')}`;
  onCleanup({
    run: async () => {
      rmSync(dir, { recursive: true, force: true });
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
    },
    runSync: () => rmSync(dir, { recursive: true, force: true }),
  });
  const start = (i: number) =>
    startSyncbridge({
      store: 'postgres',
      env: {
        SYNCBRIDGE_DATABASE_SCHEMA: schema,
        SYNCBRIDGE_BUS_URL: BUS_URLS[bus],
        SYNCBRIDGE_NODE_ID: `bench-node-${i}`,
        SYNCBRIDGE_LOG_LEVEL: 'warn',
        SYNCBRIDGE_CONFIG: configFile,
      },
    });
  // The first node takes the connector's lease; the second, started after it, stands by.
  const leader = await start(0);
  const standby = await start(1);
  const base = (node: SyncbridgeUnderTest) =>
    node.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  const trigger = async (node: SyncbridgeUnderTest, body: unknown, expected: number) => {
    const res = await fetch(`${base(node)}/v1/connectors/${CONNECTOR}/trigger`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'x-tenant': 'bench', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== expected) throw new Error(`trigger answered ${res.status}, not ${expected}: ${text}`);
  };
  await trigger(leader, {}, 200);
  await trigger(standby, {}, 200);

  const calls = {
    run: { body: {}, status: 200 },
    refused: { body: { connection: 'nope' }, status: 404 },
  };
  const measure = async (node: SyncbridgeUnderTest, call: keyof typeof calls): Promise<Point> => {
    const { body, status } = calls[call];
    const until = (s: number) => performance.now() + s * 1000;
    for (const end = until(options.warmupSeconds); performance.now() < end; )
      await trigger(node, body, status);
    const cpuStart = leader.cpuMicros() + standby.cpuMicros();
    const latencies: number[] = [];
    for (const end = until(options.windowSeconds); performance.now() < end; ) {
      const t0 = performance.now();
      await trigger(node, body, status);
      latencies.push(performance.now() - t0);
    }
    const cpu = leader.cpuMicros() + standby.cpuMicros() - cpuStart;
    latencies.sort((a, b) => a - b);
    return {
      p50: percentileSorted(latencies, 0.5),
      p99: percentileSorted(latencies, 0.99),
      cpuPerCall: cpu / latencies.length,
      calls: latencies.length,
    };
  };

  const figures: Figure[] = [];
  for (const call of Object.keys(calls) as Array<keyof typeof calls>) {
    const points: Record<'leader' | 'standby', Point[]> = { leader: [], standby: [] };
    const ratios: { p50: number[]; cpu: number[] } = { p50: [], cpu: [] };
    for (let rep = 0; rep < options.reps; rep++) {
      const a = await measure(leader, call);
      const b = await measure(standby, call);
      points.leader.push(a);
      points.standby.push(b);
      ratios.p50.push(b.p50 / a.p50);
      ratios.cpu.push(b.cpuPerCall / a.cpuPerCall);
      progress(
        `${call} rep ${rep + 1}: leader p50 ${a.p50.toFixed(2)} ms, ${a.cpuPerCall.toFixed(0)} µs CPU/call; ` +
          `standby p50 ${b.p50.toFixed(2)} ms, ${b.cpuPerCall.toFixed(0)} µs CPU/call`,
      );
      await sleep(200);
    }
    for (const target of ['leader', 'standby'] as const) {
      const ps = points[target];
      const system = `syncbridge/postgres + ${bus} bus, via the ${target === 'leader' ? 'running node' : 'standing-by node'}`;
      figures.push(
        figure({
          name: `trigger (${call}) round trip p50`,
          system,
          durability: 'PostgreSQL defaults',
          unit: 'ms',
          summary: summarize(ps.map((p) => p.p50)),
          details: {
            p99_ms: summarize(ps.map((p) => p.p99)).median,
            cpu_us_per_call_both_nodes: summarize(ps.map((p) => p.cpuPerCall)).median,
            calls_per_window: summarize(ps.map((p) => p.calls)).median,
          },
        }),
      );
    }
    figures.push(
      figure({
        name: `trigger (${call}) standby/leader ratio`,
        system: `syncbridge/postgres + ${bus} bus`,
        durability: 'PostgreSQL defaults',
        unit: 'x p50',
        summary: summarize(ratios.p50),
        details: { cpu_per_call_ratio: summarize(ratios.cpu).median },
      }),
    );
  }
  printTable(figures);
  saveSection({
    bench: 'connector-calls',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Both nodes, PostgreSQL, the bus broker, the simulated provider and the load generator share the cores.',
      'CPU per call is the sum over both nodes (the standing-by node forwards, the running node performs).',
    ],
  });
}

runMain(main, 600);
