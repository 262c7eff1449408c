/**
 * Write-to-receive latency at a fixed offered load: one writer sends 1,000 single-put mutations per
 * second (open loop: it never waits for results), 100 subscribers of the collection receive them.
 * Sender and subscribers live in this one process: the writer puts `performance.now()` into the record
 * and each subscriber subtracts it from its own `performance.now()` on receipt, so the figure covers
 * the server's validation, the durable group commit, fan-out and both network hops.
 *
 *   node --import tsx bench/latency.ts [--quick] [--store sqlite|postgres|all] [--rate 1000]
 *                                      [--subscribers 100] [--reps 3] [--window 10]
 *                                      [--synchronous FULL|NORMAL]   (SQLite; FULL is the default)
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { mapLimit, openSocket, sourceAddress, syncbridgeUrl, terminateAll } from './lib/clients.ts';
import { fsyncLatency } from './lib/disk.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from './lib/options.ts';
import { CpuWindow, loadAverage1m } from './lib/proc.ts';
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
import { median, percentileSorted, summarize } from './lib/stats.ts';

const P99_TARGET_MS = 10;

interface WindowResult {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  ackP50: number;
  ackP99: number;
  expected: number;
  received: number;
  offeredRate: number;
  serverCpuPct: number;
  serverWaitPct: number;
  loadgenCpuPct: number;
}

/** Latency samples of the open window, in a preallocated buffer (no allocation per delivery). */
class Samples {
  private data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

async function measure(
  store: StoreKind,
  options: ReturnType<typeof benchOptions>,
  rate: number,
  subs: number,
  synchronous: Synchronous,
) {
  const server = await startSyncbridge({ store, synchronous });
  const disk = fsyncLatency();
  process.stdout.write(
    `${server.label}: ${server.durability}; disk fdatasync p50 ${disk.p50.toFixed(2)} ms, p99 ${disk.p99.toFixed(2)} ms\n`,
  );
  const subscribers = await mapLimit(subs, 20, async (i) => {
    const ws = await openSocket(syncbridgeUrl(server.wsUrl, await server.token(`subscriber-${i}`)), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', (data: Buffer) => {
        if ((JSON.parse(data.toString()) as { type: string }).type === 'subscribed') resolve();
        else reject(new Error(`subscribe failed: ${data.toString()}`));
      });
      ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel: 'records:latency' }));
    });
    return ws;
  });
  const writer = await openSocket(syncbridgeUrl(server.wsUrl, await server.token('writer')), {
    welcome: true,
  });

  let recording = false;
  let received = 0;
  const latencies = new Samples(rate * options.windowSeconds * subs * 1.2);
  const acks = new Samples(rate * options.windowSeconds * 1.2);
  const sentAt = new Map<number, number>();
  let failed = 0;
  for (const ws of subscribers) {
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const event = JSON.parse(data.toString()) as { type: string; data?: { t: number; rec: boolean } };
      if (event.type !== 'event' || !event.data?.rec) return;
      latencies.push(now - event.data.t);
      received += 1;
    });
  }
  writer.on('message', (data: Buffer) => {
    const now = performance.now();
    const reply = JSON.parse(data.toString()) as {
      rid: number;
      type: string;
      results?: { status: string }[];
    };
    const t = sentAt.get(reply.rid);
    if (t === undefined) return;
    sentAt.delete(reply.rid);
    if (reply.type !== 'results' || reply.results![0]!.status !== 'applied') failed += 1;
    else if (recording) acks.push(now - t);
  });

  const runId = randomBytes(4).toString('hex');
  let rid = 0;
  const send = (record: boolean) => {
    rid += 1;
    const t = performance.now();
    sentAt.set(rid, t);
    const mutation = {
      mid: `${runId}-${rid}`,
      collection: 'latency',
      id: `r${rid % 1000}`,
      op: 'put',
      data: { t, rec: record, sku: 'SKU-000000', qty: rid, note: 'x'.repeat(24) },
    };
    writer.send(JSON.stringify({ type: 'mutate', rid, mutations: [mutation] }));
  };

  /** Sends at `rate` per second for `seconds`, on a 1 ms timer, catching up if a tick came late. */
  const paced = (seconds: number, record: boolean) =>
    new Promise<number>((resolve) => {
      const start = performance.now();
      let sent = 0;
      const tick = () => {
        const elapsed = performance.now() - start;
        const due = Math.min(Math.floor((elapsed / 1000) * rate), Math.round(rate * seconds));
        while (sent < due) {
          send(record);
          sent += 1;
        }
        if (elapsed < seconds * 1000) setTimeout(tick, 1);
        else resolve(sent);
      };
      tick();
    });

  const settle = async () => {
    const deadline = Date.now() + 10_000;
    while (sentAt.size > 0 && Date.now() < deadline) await sleep(10);
    await sleep(100); // the last events reach the subscribers just after the writer's results
  };

  await paced(options.warmupSeconds, false);
  await settle();
  const windows: WindowResult[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    latencies.length = 0;
    acks.length = 0;
    received = 0;
    recording = true;
    const cpu = new CpuWindow(server.pid);
    const sent = await paced(options.windowSeconds, true);
    const used = cpu.read();
    await settle();
    recording = false;
    const lat = latencies.sorted();
    const ack = acks.sorted();
    const w: WindowResult = {
      p50: percentileSorted(lat, 50),
      p99: percentileSorted(lat, 99),
      p999: percentileSorted(lat, 99.9),
      max: lat[lat.length - 1]!,
      ackP50: percentileSorted(ack, 50),
      ackP99: percentileSorted(ack, 99),
      expected: sent * subs,
      received,
      offeredRate: sent / used.seconds,
      serverCpuPct: used.serverMicros / used.seconds / 1e4,
      serverWaitPct: used.serverRunQueueWaitMicros / used.seconds / 1e4,
      loadgenCpuPct: used.loadgenMicros / used.seconds / 1e4,
    };
    windows.push(w);
    progress(
      `rep ${rep}: p50 ${w.p50.toFixed(2)} ms, p99 ${w.p99.toFixed(2)} ms, p99.9 ${w.p999.toFixed(2)} ms, max ${w.max.toFixed(1)} ms; ` +
        `ack p50 ${w.ackP50.toFixed(2)} ms; ${formatNumber(w.offeredRate)} writes/s, ${w.received}/${w.expected} delivered; ` +
        `server ${formatNumber(w.serverCpuPct)}% / load generator ${formatNumber(w.loadgenCpuPct)}% of a core, ` +
        `server waited for a CPU ${formatNumber(w.serverWaitPct)}% of the time`,
    );
  }
  terminateAll([writer, ...subscribers]);
  await server.stop();
  if (failed > 0) throw new Error(`${failed} writes were not applied`);
  const lost = windows.reduce((s, w) => s + (w.expected - w.received), 0);
  if (lost > 0) throw new Error(`${lost} deliveries never arrived`);

  const label = `syncbridge/${store}`;
  const common = { system: label, durability: server.durability, unit: 'ms' };
  const details = {
    'ack p50 ms': median(windows.map((w) => w.ackP50)),
    'ack p99 ms': median(windows.map((w) => w.ackP99)),
    'writes/s offered': median(windows.map((w) => w.offeredRate)),
    'server CPU %': median(windows.map((w) => w.serverCpuPct)),
    'server run-queue wait %': median(windows.map((w) => w.serverWaitPct)),
    'load generator CPU %': median(windows.map((w) => w.loadgenCpuPct)),
    'disk fdatasync p50 ms': disk.p50,
    'disk fdatasync p99 ms': disk.p99,
  };
  const name = (p: string) => `write-to-receive ${p}, ${formatNumber(rate)} writes/s × ${subs} subscribers`;
  return [
    figure({ ...common, name: name('p50'), summary: summarize(windows.map((w) => w.p50)) }),
    figure({
      ...common,
      name: name('p99'),
      summary: summarize(windows.map((w) => w.p99)),
      target: { op: '<=', value: P99_TARGET_MS },
      details,
    }),
    figure({ ...common, name: name('p99.9'), summary: summarize(windows.map((w) => w.p999)) }),
    figure({ ...common, name: name('max'), summary: summarize(windows.map((w) => w.max)) }),
  ];
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      rate: { type: 'string' },
      subscribers: { type: 'string' },
      synchronous: { type: 'string' },
    },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite', 'postgres']);
  const rate = numberFlag(values, 'rate', 1000);
  const subs = numberFlag(values, 'subscribers', 100);
  const load = loadAverage1m();
  process.stdout.write(`latency: ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`);
  const figures: Figure[] = [];
  const synchronous = (values.synchronous ?? 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('--synchronous FULL or NORMAL');
  for (const store of options.stores)
    figures.push(...(await measure(store, options, rate, subs, synchronous as Synchronous)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'latency',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Open loop: the writer sends on a 1 ms timer whatever the replies; one mutate of one put per write.',
      'Latency = subscriber receive time - writer send time, both performance.now() in this process.',
    ],
  });
}

runMain(main, 1800);
