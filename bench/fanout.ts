/**
 * Fan-out: deliveries per second to 1,000 subscribers of one channel (100-byte payloads), beside the
 * plain `ws` broadcast reference (bench/reference/ws-broadcast-server.ts) in the same run, alternating
 * syncbridge and reference (A B A B …) with the same load generator. Reports server CPU µs per
 * delivery for both and the pairwise ratios.
 *
 *   node --import tsx bench/fanout.ts [--quick] [--store sqlite|postgres|all] [--subscribers 1000]
 *                                     [--in-flight 16] [--reps 3] [--window 10] [--cpu-prof]
 *                                     [--candidate <other checkout>/packages/server/src/cli/main.ts]
 *                                     [--reference-bytes 100]
 *
 * The sender is a separate connection (not one of the subscribers). It keeps `--in-flight` messages
 * outstanding: a message counts as done when every subscriber has received it, so neither server is
 * ever asked to queue without bound. On syncbridge each message is a `publish` of a domain event (a
 * durable write, acknowledged after its commit) to subscribers of `events:bench`; on the reference it
 * is 100 bytes that the server sends on, unchanged, to every other client. With --candidate, a second
 * syncbridge built from another checkout joins the rotation (A B A' B …), to measure a change.
 */
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import {
  mapLimit,
  openSocket,
  RequestClient,
  sourceAddress,
  syncbridgeUrl,
  terminateAll,
} from './lib/clients.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
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
  type ServerUnderTest,
  type StoreKind,
  startReference,
  startSyncbridge,
} from './lib/server-process.ts';
import { median, summarize } from './lib/stats.ts';

const PAYLOAD_BYTES = 100;
const EFFICIENCY_TARGET = 0.8;

/** One system under load: its subscribers, how to send one message, and counters the window reads. */
interface FanoutSystem {
  label: string;
  durability: string;
  server: ServerUnderTest;
  subscribers: WebSocket[];
  send: () => void;
  received: number;
  /** Called after every delivery; the window replaces it with its pump. */
  onDelivery: () => void;
  frameBytes: number;
  errors: number;
  profile: string | null;
  close: () => void;
}

interface WindowResult {
  deliveries: number;
  seconds: number;
  serverMicros: number;
  serverSystemMicros: number;
  serverWaitMicros: number;
  loadgenMicros: number;
}

function paddedJson(make: (pad: string) => unknown, bytes: number): string {
  let pad = '';
  while (JSON.stringify(make(pad)).length < bytes) pad += 'x';
  return JSON.stringify(make(pad));
}

/** Subscribers count deliveries only: decoding them would measure the load generator, not the server. */
function countDeliveries(system: FanoutSystem, ws: WebSocket): void {
  ws.on('message', (data: Buffer) => {
    system.frameBytes = data.length;
    system.received += 1;
    system.onDelivery();
  });
  ws.on('close', () => {
    system.errors += 1;
  });
}

async function syncbridgeSystem(
  store: StoreKind,
  subscribers: number,
  cpuProf: boolean,
  cli?: string,
): Promise<FanoutSystem> {
  const profile = cpuProf ? profileDir(`fanout-${store}${cli ? '-candidate' : ''}`) : null;
  const server = await startSyncbridge({ store, cli, nodeFlags: profile ? cpuProfFlags(profile) : [] });
  const sender = await RequestClient.connect(server.wsUrl, await server.token('sender'));
  const body = paddedJson((d) => ({ d }), PAYLOAD_BYTES);
  const publish = Buffer.from(`{"type":"publish","event":{"type":"bench","payload":${body}}}`);
  const system: FanoutSystem = {
    label: server.label,
    durability: server.durability,
    server,
    subscribers: [],
    send: () => sender.ws.send(publish, { binary: false }),
    received: 0,
    onDelivery: () => undefined,
    frameBytes: 0,
    errors: 0,
    profile,
    close: () => terminateAll([sender, ...system.subscribers]),
  };
  // Replies to publish carry no rid here; anything but `ok` is an error.
  sender.ws.on('message', (data: Buffer) => {
    if (!data.subarray(0, 12).toString().startsWith('{"type":"ok"')) {
      system.errors += 1;
      if (system.errors === 1) process.stderr.write(`publish failed: ${data.toString().slice(0, 300)}\n`);
    }
  });
  system.subscribers = await mapLimit(subscribers, 50, async (i) => {
    // One user per subscriber: the server caps connections per user.
    const ws = await openSocket(syncbridgeUrl(server.wsUrl, await server.token(`subscriber-${i}`)), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', (data: Buffer) => {
        const reply = JSON.parse(data.toString()) as { type: string };
        if (reply.type === 'subscribed') resolve();
        else reject(new Error(`subscribe failed: ${data.toString()}`));
      });
      ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel: 'events:bench' }));
    });
    countDeliveries(system, ws);
    return ws;
  });
  return system;
}

async function referenceSystem(subscribers: number, bytes: number): Promise<FanoutSystem> {
  const server = await startReference();
  const sender = await openSocket(server.wsUrl);
  const message = Buffer.from(paddedJson((d) => ({ type: 'bench', d }), bytes));
  const system: FanoutSystem = {
    label: 'ws reference',
    durability: 'none (in memory)',
    server,
    subscribers: [],
    send: () => sender.send(message, { binary: false }),
    received: 0,
    onDelivery: () => undefined,
    frameBytes: 0,
    errors: 0,
    profile: null,
    close: () => terminateAll([sender, ...system.subscribers]),
  };
  system.subscribers = await mapLimit(subscribers, 50, async (i) => {
    const ws = await openSocket(server.wsUrl, { localAddress: sourceAddress(i) });
    countDeliveries(system, ws);
    return ws;
  });
  return system;
}

/** Drives one system with `inFlight` messages outstanding for `seconds`, then lets it drain. */
async function runWindow(system: FanoutSystem, seconds: number, inFlight: number): Promise<WindowResult> {
  const n = system.subscribers.length;
  const startReceived = system.received;
  let sent = 0;
  let running = true;
  const pump = () => {
    while (running && sent * n - (system.received - startReceived) < inFlight * n) {
      sent += 1;
      system.send();
    }
  };
  system.onDelivery = pump;
  pump();
  await sleep(300); // ramp up before the window opens
  const cpu = new CpuWindow(system.server.pid);
  const before = system.received;
  await sleep(seconds * 1000);
  const deliveries = system.received - before;
  const used = cpu.read();
  running = false;
  const deadline = Date.now() + 30_000;
  while (system.received - startReceived < sent * n) {
    if (Date.now() > deadline || system.errors > 0)
      throw new Error(
        `${system.label}: ${sent * n - (system.received - startReceived)} deliveries missing, ${system.errors} errors`,
      );
    await sleep(20);
  }
  system.onDelivery = () => undefined;
  return {
    deliveries,
    seconds: used.seconds,
    serverMicros: used.serverMicros,
    serverSystemMicros: used.serverSystemMicros,
    serverWaitMicros: used.serverRunQueueWaitMicros,
    loadgenMicros: used.loadgenMicros,
  };
}

function describe(r: WindowResult): string {
  return (
    `${formatNumber(r.deliveries / r.seconds)} deliveries/s, ${formatNumber(r.serverMicros / r.deliveries)} µs server CPU/delivery, ` +
    `server ${formatNumber(r.serverMicros / r.seconds / 1e4)}% / load generator ${formatNumber(r.loadgenMicros / r.seconds / 1e4)}% of a core`
  );
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      subscribers: { type: 'string' },
      'in-flight': { type: 'string' },
      candidate: { type: 'string', multiple: true },
      'reference-bytes': { type: 'string' },
    },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite', 'postgres']);
  const subscribers = numberFlag(values, 'subscribers', 1000);
  const inFlight = numberFlag(values, 'in-flight', 16);
  const load = loadAverage1m();
  process.stdout.write(
    `fanout: ${subscribers} subscribers, ${inFlight} messages in flight, ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`,
  );
  const referenceBytes = numberFlag(values, 'reference-bytes', PAYLOAD_BYTES);
  const reference = await referenceSystem(subscribers, referenceBytes);
  const systems: FanoutSystem[] = [];
  for (const store of options.stores) {
    systems.push(await syncbridgeSystem(store, subscribers, options.cpuProf));
    for (const cli of values.candidate ?? [])
      systems.push(await syncbridgeSystem(store, subscribers, options.cpuProf, cli));
  }
  for (const s of [...systems, reference]) await runWindow(s, options.warmupSeconds, inFlight);
  // A B A B: each syncbridge window is paired with the reference window that follows it.
  const pairs = new Map<FanoutSystem, { sb: WindowResult; ref: WindowResult }[]>(systems.map((s) => [s, []]));
  const refRuns: WindowResult[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const s of systems) {
      const sb = await runWindow(s, options.windowSeconds, inFlight);
      progress(`rep ${rep} ${s.label}: ${describe(sb)}`);
      const ref = await runWindow(reference, options.windowSeconds, inFlight);
      progress(`rep ${rep} ${reference.label}: ${describe(ref)}`);
      pairs.get(s)!.push({ sb, ref });
      refRuns.push(ref);
    }
  }

  const perDelivery = (r: WindowResult) => r.serverMicros / r.deliveries;
  const rate = (r: WindowResult) => r.deliveries / r.seconds;
  const throughputFigure = (s: FanoutSystem, runs: WindowResult[]) =>
    figure({
      name: `deliveries/s to ${subscribers} subscribers`,
      system: s.label,
      durability: s.durability,
      unit: 'deliveries/s',
      summary: summarize(runs.map(rate)),
      details: {
        'server CPU µs/delivery': median(runs.map(perDelivery)),
        'of which kernel µs/delivery': median(runs.map((r) => r.serverSystemMicros / r.deliveries)),
        'server CPU %': median(runs.map((r) => r.serverMicros / r.seconds / 1e4)),
        'server run-queue wait %': median(runs.map((r) => r.serverWaitMicros / r.seconds / 1e4)),
        'load generator CPU %': median(runs.map((r) => r.loadgenMicros / r.seconds / 1e4)),
        'frame bytes': s.frameBytes,
      },
    });
  const figures: Figure[] = [];
  for (const s of systems)
    figures.push(
      throughputFigure(
        s,
        pairs.get(s)!.map((p) => p.sb),
      ),
    );
  figures.push(throughputFigure(reference, refRuns));
  for (const s of systems) {
    const runs = pairs.get(s)!;
    figures.push(
      figure({
        name: 'CPU efficiency vs ws reference (ref µs/delivery ÷ syncbridge µs/delivery)',
        system: s.label,
        durability: s.durability,
        unit: 'ratio',
        summary: summarize(runs.map((p) => perDelivery(p.ref) / perDelivery(p.sb))),
        target: { op: '>=', value: EFFICIENCY_TARGET },
      }),
      figure({
        name: 'throughput vs ws reference (syncbridge ÷ ref deliveries/s)',
        system: s.label,
        durability: s.durability,
        unit: 'ratio',
        summary: summarize(runs.map((p) => rate(p.sb) / rate(p.ref))),
        target: { op: '>=', value: EFFICIENCY_TARGET },
      }),
    );
  }
  for (const s of [...systems, reference]) {
    s.close();
    await s.server.stop();
  }
  const notes = [
    `Payload ${PAYLOAD_BYTES} bytes (reference frames ${referenceBytes} bytes); syncbridge frames carry the event envelope (seq, eventId, ts, actor, hlc, channel).`,
    `Closed loop: ${inFlight} messages outstanding, a message is done when all ${subscribers} subscribers received it.`,
  ];
  for (const s of systems) {
    const file = s.profile ? newestProfile(s.profile) : null;
    if (!file) continue;
    const text = formatProfile(summarizeProfile(file, 25));
    console.log(text);
    notes.push(text);
  }
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'fanout',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes,
  });
}

runMain(main, 1800);
