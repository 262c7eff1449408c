/**
 * Several nodes: 1, 2 and 3 `syncbridge serve` processes sharing one PostgreSQL schema and a Redis (or
 * NATS) bus, measured from this process (the load generator, a process of its own):
 *   - acknowledged mutations/s: closed-loop writers (one single-put `mutate` in flight each), spread
 *     over the nodes and over `--tenants` tenants (writers of one tenant serialize on its log head,
 *     whatever node they use);
 *   - fan-out deliveries/s: subscribers of `events:bench` spread over the nodes, one sender on the
 *     first node keeping `--in-flight` events undelivered at most;
 *   - write-to-receive latency across nodes: one writer on the first node at `--rate` writes/s (open
 *     loop), subscribers on the other nodes (on the first when it is alone); the writer puts
 *     `performance.now()` into the record and each subscriber subtracts it on receipt.
 * Each point records the servers' CPU (all nodes) and the machine's CPU busy share (/proc/stat), since
 * on one machine the nodes, PostgreSQL, Redis and the load generator share the same cores.
 *
 *   node --import tsx bench/cluster.ts [--quick] [--nodes 1,2,3] [--bus redis|nats] [--writers 48] [--tenants 8]
 *                                      [--subscribers 300] [--in-flight 16] [--rate 1000]
 *                                      [--latency-subscribers 20] [--reps 1] [--window 5] [--warmup 1]
 *                                      [--points mutations,fanout,latency] [--cpu-prof]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type WebSocket from 'ws';
import {
  mapLimit,
  openSocket,
  RequestClient,
  sourceAddress,
  syncbridgeUrl,
  terminateAll,
} from './lib/clients.ts';
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
import {
  POSTGRES_URL,
  postgresDurability,
  type SyncbridgeUnderTest,
  startSyncbridge,
} from './lib/server-process.ts';
import { percentileSorted, summarize } from './lib/stats.ts';

const BUS_URLS = {
  redis: process.env.SYNCBRIDGE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  nats: process.env.SYNCBRIDGE_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222',
};
const P99_TARGET_MS = 20;

/** Machine-wide CPU busy share from /proc/stat (every process: nodes, PostgreSQL, Redis, this one). */
class MachineCpu {
  private readonly start = MachineCpu.read();
  static read(): { busy: number; total: number } {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3]! + (fields[4] ?? 0);
    return { busy: total - idle, total };
  }
  busyPct(): number {
    const now = MachineCpu.read();
    return ((now.busy - this.start.busy) / Math.max(1, now.total - this.start.total)) * 100;
  }
}

/** CPU of every node over one window. */
class ClusterCpu {
  private readonly windows: CpuWindow[];
  private readonly machineCpu = new MachineCpu();
  constructor(nodes: SyncbridgeUnderTest[]) {
    this.windows = nodes.map((n) => new CpuWindow(n.pid));
  }
  read() {
    const reads = this.windows.map((w) => w.read());
    return {
      seconds: reads[0]!.seconds,
      serverMicros: reads.reduce((s, r) => s + r.serverMicros, 0),
      serverWaitMicros: reads.reduce((s, r) => s + r.serverRunQueueWaitMicros, 0),
      loadgenMicros: reads[0]!.loadgenMicros,
      machineBusyPct: this.machineCpu.busyPct(),
    };
  }
}

/** N nodes on one fresh schema and the bus; the schema is dropped after the nodes stopped. */
async function startCluster(
  count: number,
  busUrl: string,
  profiles: string[] | null,
): Promise<SyncbridgeUnderTest[]> {
  const schema = `sb_bench_cluster_${randomBytes(5).toString('hex')}`;
  const drop = async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  };
  // Registered first, so it runs after the nodes' own cleanups (newest first).
  onCleanup({ run: drop, runSync: () => {} });
  const start = (i: number) =>
    startSyncbridge({
      store: 'postgres',
      nodeFlags: profiles ? cpuProfFlags(profiles[i]!) : [],
      env: {
        SYNCBRIDGE_DATABASE_SCHEMA: schema,
        SYNCBRIDGE_BUS_URL: busUrl,
        SYNCBRIDGE_NODE_ID: `bench-node-${i}`,
        SYNCBRIDGE_LOG_LEVEL: 'warn',
      },
    });
  // The first node applies the migrations; the others then start together.
  const first = await start(0);
  const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => start(i + 1)));
  return [first, ...rest];
}

async function subscribe(ws: WebSocket, channel: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'subscribed') resolve();
      else reject(new Error(`subscribe failed: ${data.toString()}`));
    });
    ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel }));
  });
}

interface Window {
  value: number;
  details: Record<string, number>;
}

function cpuDetails(used: ReturnType<ClusterCpu['read']>, units: number, unitName: string) {
  return {
    [`server CPU µs/${unitName} (all nodes)`]: used.serverMicros / Math.max(1, units),
    'servers CPU % of a core (all nodes)': used.serverMicros / used.seconds / 1e4,
    'servers run-queue wait % (all nodes)': used.serverWaitMicros / used.seconds / 1e4,
    'load generator CPU %': used.loadgenMicros / used.seconds / 1e4,
    'machine CPU busy %': used.machineBusyPct,
  };
}

/** Closed-loop writers spread over the nodes and tenants; acknowledged mutations per second. */
async function mutations(
  nodes: SyncbridgeUnderTest[],
  writers: number,
  tenants: number,
  seconds: number,
  warmup: number,
): Promise<Window> {
  const clients = await mapLimit(writers, 10, async (i) => {
    const node = nodes[i % nodes.length]!;
    return RequestClient.connect(
      node.wsUrl,
      await node.token(`writer-${i}`, `bench-${i % tenants}`),
      sourceAddress(i),
    );
  });
  const runId = randomBytes(4).toString('hex');
  let stop = false;
  let measuring = false;
  let acked = 0;
  let failed = 0;
  let n = 0;
  const loops = clients.map(async (client, w) => {
    while (!stop) {
      const i = n++;
      const reply = await client.request({
        type: 'mutate',
        mutations: [
          {
            mid: `${runId}-${i}`,
            collection: 'bench',
            id: `w${w}-${i % 100}`,
            op: 'put',
            data: { sku: 'SKU-000000', qty: i, location: 'warehouse-1', note: 'x'.repeat(40) },
          },
        ],
      });
      const ok = reply.type === 'results' && (reply.results as { status: string }[])[0]!.status === 'applied';
      if (!measuring) continue;
      if (ok) acked += 1;
      else failed += 1;
    }
  });
  await sleep(warmup * 1000);
  measuring = true;
  const cpu = new ClusterCpu(nodes);
  await sleep(seconds * 1000);
  measuring = false;
  const used = cpu.read();
  const counted = { acked, failed };
  stop = true;
  await Promise.all(loops);
  terminateAll(clients);
  return {
    value: counted.acked / used.seconds,
    details: {
      ...cpuDetails(used, counted.acked, 'ack'),
      ...(counted.failed ? { 'not applied': counted.failed } : {}),
    },
  };
}

/** Subscribers spread over the nodes, one sender on the first node; deliveries per second. */
async function fanout(
  nodes: SyncbridgeUnderTest[],
  subscriberCount: number,
  inFlight: number,
  seconds: number,
  warmup: number,
): Promise<Window> {
  let deliveries = 0;
  let sent = 0;
  let wake: (() => void) | null = null;
  const subscribers = await mapLimit(subscriberCount, 25, async (i) => {
    const node = nodes[i % nodes.length]!;
    const ws = await openSocket(syncbridgeUrl(node.wsUrl, await node.token(`subscriber-${i}`, 'fan')), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    await subscribe(ws, 'events:bench');
    // Counted, not decoded: decoding would measure the load generator.
    ws.on('message', () => {
      deliveries += 1;
      if (wake && sent - Math.floor(deliveries / subscriberCount) < inFlight) {
        const w = wake;
        wake = null;
        w();
      }
    });
    return ws;
  });
  const sender = await RequestClient.connect(nodes[0]!.wsUrl, await nodes[0]!.token('sender', 'fan'));
  const payload = { note: 'x'.repeat(60) };
  let stop = false;
  // Keeps at most `inFlight` events not yet delivered to every subscriber.
  const loop = (async () => {
    while (!stop) {
      if (sent - Math.floor(deliveries / subscriberCount) >= inFlight) {
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      sent += 1;
      void sender.request({ type: 'publish', event: { type: 'bench', payload } }).catch(() => {});
    }
  })();
  await sleep(warmup * 1000);
  const startDeliveries = deliveries;
  const cpu = new ClusterCpu(nodes);
  await sleep(seconds * 1000);
  const used = cpu.read();
  const counted = deliveries - startDeliveries;
  stop = true;
  (wake as (() => void) | null)?.();
  await loop;
  await sleep(200);
  terminateAll([sender, ...subscribers]);
  return { value: counted / used.seconds, details: cpuDetails(used, counted, 'delivery') };
}

/** One writer on the first node at `rate`/s, subscribers on the others; latency percentiles (ms). */
async function latency(
  nodes: SyncbridgeUnderTest[],
  rate: number,
  subscriberCount: number,
  seconds: number,
  warmup: number,
): Promise<Window> {
  const readers = nodes.length > 1 ? nodes.slice(1) : nodes;
  let recording = false;
  const samples: number[] = [];
  const subscribers = await mapLimit(subscriberCount, 20, async (i) => {
    const node = readers[i % readers.length]!;
    const ws = await openSocket(syncbridgeUrl(node.wsUrl, await node.token(`reader-${i}`, 'lat')), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    await subscribe(ws, 'records:latency');
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const event = JSON.parse(data.toString()) as { type: string; data?: { t: number; rec: boolean } };
      if (recording && event.type === 'event' && event.data?.rec) samples.push(now - event.data.t);
    });
    return ws;
  });
  const writer = await openSocket(syncbridgeUrl(nodes[0]!.wsUrl, await nodes[0]!.token('writer', 'lat')), {
    welcome: true,
  });
  const runId = randomBytes(4).toString('hex');
  let rid = 0;
  const send = (record: boolean) => {
    rid += 1;
    const t = performance.now();
    writer.send(
      JSON.stringify({
        type: 'mutate',
        rid,
        mutations: [
          {
            mid: `${runId}-${rid}`,
            collection: 'latency',
            id: `r${rid % 1000}`,
            op: 'put',
            data: { t, rec: record, sku: 'SKU-000000', qty: rid, note: 'x'.repeat(24) },
          },
        ],
      }),
    );
  };
  const paced = (secs: number, record: boolean) =>
    new Promise<number>((resolve) => {
      const start = performance.now();
      let sent = 0;
      const tick = () => {
        const elapsed = performance.now() - start;
        const due = Math.min(Math.floor((elapsed / 1000) * rate), Math.round(rate * secs));
        while (sent < due) {
          send(record);
          sent += 1;
        }
        if (elapsed < secs * 1000) setTimeout(tick, 1);
        else resolve(sent);
      };
      tick();
    });
  await paced(warmup, false);
  await sleep(500);
  recording = true;
  const cpu = new ClusterCpu(nodes);
  const sent = await paced(seconds, true);
  const used = cpu.read();
  await sleep(2000); // the last events arrive
  recording = false;
  terminateAll([writer, ...subscribers]);
  const sorted = Float64Array.from(samples).sort();
  return {
    value: percentileSorted(sorted, 99),
    details: {
      'p50 ms': percentileSorted(sorted, 50),
      'p99.9 ms': percentileSorted(sorted, 99.9),
      'max ms': sorted[sorted.length - 1] ?? Number.NaN,
      'writes/s offered': sent / used.seconds,
      'delivered of expected %': (samples.length / Math.max(1, sent * subscriberCount)) * 100,
      ...cpuDetails(used, sent * subscriberCount, 'delivery'),
    },
  };
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      nodes: { type: 'string' },
      bus: { type: 'string' },
      writers: { type: 'string' },
      tenants: { type: 'string' },
      subscribers: { type: 'string' },
      'in-flight': { type: 'string' },
      rate: { type: 'string' },
      'latency-subscribers': { type: 'string' },
      points: { type: 'string' },
    },
    strict: true,
  });
  // Bounded: one 5 s window per point unless asked for more (the whole run stays under 3 minutes).
  const options = benchOptions(
    {
      ...values,
      reps: values.reps ?? '1',
      window: values.window ?? (values.quick ? '3' : '5'),
      warmup: values.warmup ?? '1',
    },
    ['postgres'],
  );
  const counts = (values.nodes ?? '1,2,3').split(',').map(Number);
  if (counts.some((c) => !Number.isInteger(c) || c < 1 || c > 5)) throw new Error('--nodes 1,2,3 (1 to 5)');
  const bus = (values.bus ?? 'redis') as keyof typeof BUS_URLS;
  if (!(bus in BUS_URLS)) throw new Error('--bus redis|nats');
  const writers = numberFlag(values, 'writers', 48);
  const tenants = numberFlag(values, 'tenants', 8);
  const subscriberCount = numberFlag(values, 'subscribers', 300);
  const inFlight = numberFlag(values, 'in-flight', 16);
  const rate = numberFlag(values, 'rate', 1000);
  const latencySubscribers = numberFlag(values, 'latency-subscribers', 20);
  const points = new Set((values.points ?? 'mutations,fanout,latency').split(','));
  const load = loadAverage1m();
  process.stdout.write(
    `cluster: ${JSON.stringify({ ...options, counts, bus, writers, tenants, subscriberCount, inFlight, rate, latencySubscribers })} (load average ${load.toFixed(2)})\n`,
  );
  const durability = `${await postgresDurability()}; bus ${bus}`;
  const figures: Figure[] = [];
  for (const count of counts) {
    const profiles = options.cpuProf
      ? Array.from({ length: count }, (_, i) => profileDir(`cluster-${count}-node-${i}`))
      : null;
    const nodes = await startCluster(count, BUS_URLS[bus], profiles);
    const system = `syncbridge/postgres ×${count} node${count > 1 ? 's' : ''}`;
    const series: Array<[string, string, Window[], Figure['target']]> = [
      [
        `acknowledged mutations/s, ${writers} writers (${tenants} tenant${tenants > 1 ? 's' : ''}) over ${count} node(s)`,
        'mutations/s',
        [],
        undefined,
      ],
      [
        `fan-out deliveries/s, ${subscriberCount} subscribers over ${count} node(s)`,
        'deliveries/s',
        [],
        undefined,
      ],
      [
        `write-to-receive p99 at ${formatNumber(rate)} writes/s, ${count > 1 ? 'across nodes' : 'one node'}`,
        'ms',
        [],
        { op: '<=', value: P99_TARGET_MS },
      ],
    ];
    for (let rep = 1; rep <= options.reps; rep++) {
      const parts: string[] = [];
      if (points.has('mutations')) {
        const m = await mutations(nodes, writers, tenants, options.windowSeconds, options.warmupSeconds);
        series[0]![2].push(m);
        parts.push(
          `${formatNumber(m.value)} acks/s (machine ${formatNumber(m.details['machine CPU busy %']!)}% busy)`,
        );
      }
      if (points.has('fanout')) {
        const f = await fanout(
          nodes,
          subscriberCount,
          inFlight,
          options.windowSeconds,
          options.warmupSeconds,
        );
        series[1]![2].push(f);
        parts.push(
          `${formatNumber(f.value)} deliveries/s (machine ${formatNumber(f.details['machine CPU busy %']!)}% busy)`,
        );
      }
      if (points.has('latency')) {
        const l = await latency(
          nodes,
          rate,
          latencySubscribers,
          options.windowSeconds,
          options.warmupSeconds,
        );
        series[2]![2].push(l);
        parts.push(
          `p50 ${formatNumber(l.details['p50 ms']!)} ms p99 ${formatNumber(l.value)} ms ` +
            `(${formatNumber(l.details['delivered of expected %']!)}% delivered, machine ${formatNumber(l.details['machine CPU busy %']!)}% busy)`,
        );
      }
      progress(`${count} node(s) rep ${rep}: ${parts.join(', ')}`);
    }
    await Promise.all(nodes.map((n) => n.stop()));
    for (const dir of profiles ?? []) {
      const file = newestProfile(dir);
      if (file) console.log(`${dir}:\n${formatProfile(summarizeProfile(file))}`);
    }
    for (const [name, unit, windows, target] of series) {
      if (windows.length === 0) continue;
      const details: Record<string, number> = {};
      for (const key of Object.keys(windows[0]!.details)) {
        details[key] = summarize(windows.map((w) => w.details[key]!)).median;
      }
      figures.push(
        figure({
          name,
          system,
          durability,
          unit,
          summary: summarize(windows.map((w) => w.value)),
          target,
          details,
        }),
      );
    }
  }
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'cluster',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      "All nodes, PostgreSQL, the bus broker and the load generator share this machine's cores.",
      `Writers spread round-robin over the nodes and over ${tenants} tenant(s); each has one single-put mutate in flight.`,
      'Fan-out: one sender on the first node, subscribers round-robin over the nodes (events:bench).',
      'Latency: writer on the first node, subscribers on the other nodes (on the first when alone).',
    ],
  });
}

runMain(main, 300);
