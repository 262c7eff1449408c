/**
 * Hostile clients against innocent ones, on loopback:
 *
 * - ping flood: a bystander measures app-level `ping` round trips (closed loop, one at a time) while,
 *   in a worker thread, an attacker sends `ping` frames as fast as its socket takes them, and reconnects
 *   at once whenever the server closes it. Figure: the bystander's p50 under the flood against none
 *   (target: within 2x).
 * - poison writer: 8 innocent writers keep 4 single-put mutations each in flight (closed loop) while an
 *   attacker sends one `put` nested 10,000 levels deep every 20 ms. Figure: the innocent mutations/s
 *   under the poison against none (target: within 20%), and what the poison writes were answered.
 *
 * Bounded: each phase runs `--window` seconds (`--reps` times), the attacker stops with its phase.
 *
 *   node --import tsx bench/hostile.ts [--quick] [--store sqlite|postgres|all] [--reps 3] [--window 10]
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { RequestClient, terminateAll } from './lib/clients.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS } from './lib/options.ts';
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
import { type StoreKind, type SyncbridgeUnderTest, startSyncbridge } from './lib/server-process.ts';
import { median, percentileSorted, summarize } from './lib/stats.ts';

const WRITERS = 8;
const IN_FLIGHT = 4;
const POISON_EVERY_MS = 20;
const POISON_DEPTH = 10_000;

/**
 * The flooder, as plain JavaScript for a worker thread: sends `ping` frames while its socket's buffer
 * is under 1 MiB, reconnects whenever the server closes it, and reports frames sent and closes seen.
 */
const FLOODER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsModule);
const frame = JSON.stringify({ type: 'ping' });
let stopped = false, sent = 0, closes = {}, ws = null;
function open() {
  if (stopped) return;
  ws = new WebSocket(workerData.url, { perMessageDeflate: false });
  ws.on('error', () => undefined);
  ws.on('open', pump);
  ws.on('close', (code) => { closes[code] = (closes[code] || 0) + 1; setImmediate(open); });
}
function pump() {
  if (stopped || ws.readyState !== 1) return;
  for (let i = 0; i < 500 && ws.bufferedAmount < 1 << 20; i++) { ws.send(frame); sent++; }
  setImmediate(pump);
}
parentPort.on('message', () => {
  stopped = true;
  if (ws) ws.terminate();
  parentPort.postMessage({ sent, closes });
});
open();
`;

interface Flood {
  stop(): Promise<{ sent: number; closes: Record<string, number> }>;
}

function startFlood(url: string): Flood {
  const worker = new Worker(FLOODER, { eval: true, workerData: { url, wsModule: require_ws() } });
  return {
    stop: () =>
      new Promise((resolve) => {
        worker.once('message', (m: { sent: number; closes: Record<string, number> }) => {
          void worker.terminate();
          resolve(m);
        });
        worker.postMessage('stop');
      }),
  };
}

/** The resolved path of the `ws` package, for the worker (an eval worker resolves from the cwd). */
function require_ws(): string {
  return createRequire(import.meta.url).resolve('ws');
}

/**
 * Ping round trips of one bystander, one at a time with 1 ms between them (well inside its own rate
 * limit of 5,000 messages/s), for `seconds`; sorted milliseconds.
 */
async function pingRoundTrips(client: RequestClient, seconds: number): Promise<Float64Array> {
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    const reply = await client.request({ type: 'ping' }, 10_000);
    if (reply.type !== 'pong') throw new Error(`bystander got ${JSON.stringify(reply).slice(0, 200)}`);
    samples.push(performance.now() - t);
    await sleep(1);
  }
  return Float64Array.from(samples).sort();
}

/** Innocent writers in a closed loop for `seconds`: applied mutations per second. */
async function innocentWrites(writers: RequestClient[], seconds: number, runId: string): Promise<number> {
  let applied = 0;
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  await Promise.all(
    writers.flatMap((w, wi) =>
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          n += 1;
          const mid = `${runId}-${wi}-${n}`;
          const reply = await w.request({
            type: 'mutate',
            mutations: [
              { mid, collection: 'orders', id: `o${n % 500}`, op: 'put', data: { n, sku: 'SKU-1', qty: 3 } },
            ],
          });
          const status = (reply.results as { status: string }[] | undefined)?.[0]?.status;
          if (status === 'applied') applied += 1;
          else failed += 1;
        }
      }),
    ),
  );
  if (failed > 0) throw new Error(`${failed} innocent writes were not applied`);
  return applied / ((performance.now() - start) / 1000);
}

/** The poison writer: one deep put every 20 ms until stopped; counts the answers by outcome. */
function startPoison(client: RequestClient, runId: string) {
  const deep = `${'{"a":'.repeat(POISON_DEPTH)}1${'}'.repeat(POISON_DEPTH)}`;
  const outcomes: Record<string, number> = {};
  const waiting = new Map<string, () => void>();
  let n = 0;
  const onMessage = (data: Buffer) => {
    const text = data.toString();
    const rid = /"rid":"(p\d+)"/.exec(text)?.[1];
    const done = rid === undefined ? undefined : waiting.get(rid);
    if (!done) return;
    waiting.delete(rid!);
    const m = JSON.parse(text) as {
      type: string;
      code?: string;
      results?: { status: string; error?: { code: string } }[];
    };
    const r = m.results?.[0];
    const key = r ? `${r.status}${r.error ? ` ${r.error.code}` : ''}` : `${m.type} ${m.code ?? ''}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    done();
  };
  client.ws.on('message', onMessage);
  const answered: Promise<void>[] = [];
  const timer = setInterval(() => {
    n += 1;
    const rid = `p${n}`;
    answered.push(new Promise<void>((resolve) => waiting.set(rid, resolve)));
    client.ws.send(
      `{"type":"mutate","rid":"${rid}","mutations":[{"mid":"${runId}-poison-${n}","collection":"orders","id":"poison","op":"put","data":${deep}}]}`,
    );
  }, POISON_EVERY_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.race([Promise.all(answered), sleep(10_000)]);
      client.ws.off('message', onMessage);
      return { sent: n, unanswered: waiting.size, outcomes };
    },
  };
}

async function measure(store: StoreKind, options: ReturnType<typeof benchOptions>): Promise<Figure[]> {
  const server: SyncbridgeUnderTest = await startSyncbridge({ store });
  const label = `syncbridge/${store}`;
  const runId = randomBytes(4).toString('hex');
  const bystander = await RequestClient.connect(server.wsUrl, await server.token('bystander'));
  const writers = await Promise.all(
    Array.from({ length: WRITERS }, async (_, i) =>
      RequestClient.connect(server.wsUrl, await server.token(`writer-${i}`)),
    ),
  );
  const poisoner = await RequestClient.connect(server.wsUrl, await server.token('poisoner'));
  const floodUrl = `${server.wsUrl}?token=${encodeURIComponent(await server.token('flooder'))}`;

  await pingRoundTrips(bystander, options.warmupSeconds);
  await innocentWrites(writers, options.warmupSeconds, `${runId}-w`);

  const quiet: number[] = [];
  const flooded: number[] = [];
  const floodedP99: number[] = [];
  const quietP99: number[] = [];
  const cleanWrites: number[] = [];
  const poisonedWrites: number[] = [];
  const floodNotes: string[] = [];
  const poisonNotes: string[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    const q = await pingRoundTrips(bystander, options.windowSeconds);
    const flood = startFlood(floodUrl);
    await sleep(500);
    const cpu = new CpuWindow(server.pid);
    const f = await pingRoundTrips(bystander, options.windowSeconds);
    const used = cpu.read();
    const floodResult = await flood.stop();
    quiet.push(percentileSorted(q, 50));
    quietP99.push(percentileSorted(q, 99));
    flooded.push(percentileSorted(f, 50));
    floodedP99.push(percentileSorted(f, 99));
    const floodLine =
      `flooder sent ${formatNumber(floodResult.sent)} pings, closes ${JSON.stringify(floodResult.closes)}; ` +
      `server ${formatNumber(used.serverMicros / used.seconds / 1e4)}% of a core during the flood`;
    floodNotes.push(floodLine);
    progress(
      `rep ${rep} ping: p50 ${quiet.at(-1)!.toFixed(2)} ms quiet, ${flooded.at(-1)!.toFixed(2)} ms under the flood ` +
        `(p99 ${quietP99.at(-1)!.toFixed(2)} / ${floodedP99.at(-1)!.toFixed(2)} ms); ${floodLine}`,
    );
    await sleep(1500); // the flooder's bucket refills; its last sockets close

    // Clean and poisoned windows alternate in order from rep to rep, so a machine whose load drifts
    // does not favour either.
    const cleanWindow = () => innocentWrites(writers, options.windowSeconds, `${runId}-c${rep}`);
    const poisonedWindow = async () => {
      const poison = startPoison(poisoner, `${runId}-${rep}`);
      const rate = await innocentWrites(writers, options.windowSeconds, `${runId}-p${rep}`);
      return { rate, result: await poison.stop() };
    };
    let clean: number;
    let poisoned: { rate: number; result: Awaited<ReturnType<ReturnType<typeof startPoison>['stop']>> };
    if (rep % 2 === 1) {
      clean = await cleanWindow();
      poisoned = await poisonedWindow();
    } else {
      poisoned = await poisonedWindow();
      clean = await cleanWindow();
    }
    const poisonResult = poisoned.result;
    cleanWrites.push(clean);
    poisonedWrites.push(poisoned.rate);
    const poisonLine =
      `${poisonResult.sent} poison writes answered ${JSON.stringify(poisonResult.outcomes)}` +
      (poisonResult.unanswered > 0 ? `, ${poisonResult.unanswered} unanswered` : '');
    poisonNotes.push(poisonLine);
    progress(
      `rep ${rep} writes: ${formatNumber(clean)} mutations/s clean, ${formatNumber(poisoned.rate)} under the poison writer; ${poisonLine}`,
    );
  }
  terminateAll([bystander, poisoner, ...writers]);
  await server.stop();

  const common = { system: label, durability: server.durability };
  const ratio = (a: number[], b: number[]) => a.map((v, i) => v / b[i]!);
  return [
    figure({ ...common, name: 'bystander ping p50, no flood', unit: 'ms', summary: summarize(quiet) }),
    figure({
      ...common,
      name: 'bystander ping p50 under a ping flood',
      unit: 'ms',
      summary: summarize(flooded),
      details: {
        'p99 quiet ms': median(quietP99),
        'p99 flooded ms': median(floodedP99),
        flood: floodNotes.join(' | '),
      },
    }),
    figure({
      ...common,
      name: 'bystander ping p50, flood / no flood',
      unit: 'x',
      summary: summarize(ratio(flooded, quiet)),
      target: { op: '<=', value: 2 },
    }),
    figure({
      ...common,
      name: `innocent mutations/s (${WRITERS} writers × ${IN_FLIGHT} in flight), no poison`,
      unit: '/s',
      summary: summarize(cleanWrites),
    }),
    figure({
      ...common,
      name: `innocent mutations/s, one ${formatNumber(POISON_DEPTH)}-deep put every ${POISON_EVERY_MS} ms`,
      unit: '/s',
      summary: summarize(poisonedWrites),
      details: { poison: poisonNotes.join(' | ') },
    }),
    figure({
      ...common,
      name: 'innocent mutations/s, poison / none',
      unit: 'x',
      summary: summarize(ratio(poisonedWrites, cleanWrites)),
      target: { op: '>=', value: 0.8 },
    }),
  ];
}

export async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { ...COMMON_FLAGS }, strict: true });
  const options = benchOptions(values, ['sqlite']);
  const load = loadAverage1m();
  process.stdout.write(`hostile: ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`);
  const figures: Figure[] = [];
  for (const store of options.stores) figures.push(...(await measure(store, options)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'hostile',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Ping flood: the flooder is a worker thread of the load generator, reconnecting at once after each close.',
      `Poison: one put nested ${POISON_DEPTH} levels every ${POISON_EVERY_MS} ms from its own connection and user.`,
    ],
  });
}

runMain(main, 900);
