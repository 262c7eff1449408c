/**
 * Server-sent events beside WebSocket: fan-out to `--subscribers` (1,000) SSE streams and to as many
 * WebSocket connections of one syncbridge server, in alternating windows (WS SSE WS SSE …) driven by the
 * same closed-loop sender, and the memory an idle connection of each kind costs.
 *
 *   node --import tsx bench/sse.ts [--quick] [--store sqlite|postgres] [--subscribers 1000]
 *                                  [--in-flight 16] [--reps 3] [--window 10]
 *
 * Fan-out: both groups subscribe on the same server, the WebSocket ones to `events:bench_ws`, the SSE
 * ones (GET /v1/stream) to `events:bench_sse`; a window publishes to one group only, so the other
 * group idles. A message is done when every subscriber of its group received it. Reports server CPU µs
 * per delivery and the SSE ÷ WebSocket ratio (target ≤ 1.5).
 * Memory: a fresh server per kind, its RSS before and after opening the connections (authenticated,
 * one channel each, idle for 3 s), divided by their number; target SSE ≤ 2x WebSocket.
 * The load generator counts deliveries without decoding them (SSE: the blank line ending each event).
 */
import { type IncomingMessage, request } from 'node:http';
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
import { median, summarize } from './lib/stats.ts';

const CPU_TARGET = 1.5;
const MEMORY_TARGET = 2;
const NL = 0x0a;

interface Group {
  label: string;
  size: number;
  received: number;
  onDelivery: () => void;
  errors: number;
  close: () => void;
}

function newGroup(label: string, size: number): Group {
  return { label, size, received: 0, onDelivery: () => undefined, errors: 0, close: () => undefined };
}

async function wsSubscribers(
  server: SyncbridgeUnderTest,
  n: number,
  channel: string,
  group: Group | null,
): Promise<WebSocket[]> {
  return mapLimit(n, 50, async (i) => {
    const ws = await openSocket(syncbridgeUrl(server.wsUrl, await server.token(`ws-${i}`)), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', (data: Buffer) => {
        if (data.toString().startsWith('{"type":"subscribed"')) resolve();
        else reject(new Error(`subscribe failed: ${data.toString()}`));
      });
      ws.send(JSON.stringify({ type: 'subscribe', rid: 1, channel }));
    });
    if (group) {
      ws.on('message', () => {
        group.received += 1;
        group.onDelivery();
      });
      ws.on('close', () => {
        group.errors += 1;
      });
    }
    return ws;
  });
}

/** Opens SSE streams; each resolves once its `subscribed` arrived, then counts events (blank lines). */
async function sseSubscribers(
  server: SyncbridgeUnderTest,
  n: number,
  channel: string,
  group: Group | null,
): Promise<IncomingMessage[]> {
  const base = server.wsUrl.replace(/^ws/, 'http').replace('/v1/realtime', '/v1/stream');
  return mapLimit(n, 50, async (i) => {
    const token = await server.token(`sse-${i}`);
    const url = `${base}?channels=${encodeURIComponent(channel)}&access_token=${encodeURIComponent(token)}`;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { agent: false, localAddress: sourceAddress(i) }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream refused: HTTP ${res.statusCode}`));
        let ready = false;
        let text = '';
        let lastByte = 0;
        res.on('data', (chunk: Buffer) => {
          if (!ready) {
            text += chunk.toString();
            if (text.includes('"type":"subscribed"')) {
              ready = true;
              resolve(res);
            }
            return;
          }
          if (!group) return;
          // An event ends with a blank line; count "\n\n" (also across chunk boundaries).
          let count = lastByte === NL && chunk[0] === NL ? 1 : 0;
          let at = chunk.indexOf('\n\n');
          while (at >= 0) {
            count += 1;
            at = chunk.indexOf('\n\n', at + 2);
          }
          lastByte = chunk[chunk.length - 1]!;
          for (let k = 0; k < count; k++) {
            group.received += 1;
            group.onDelivery();
          }
        });
        res.on('close', () => {
          if (group) group.errors += 1;
        });
      });
      req.on('error', reject);
      req.end();
    });
  });
}

interface WindowResult {
  deliveries: number;
  seconds: number;
  serverMicros: number;
}

async function runWindow(
  server: SyncbridgeUnderTest,
  group: Group,
  send: () => void,
  seconds: number,
  inFlight: number,
): Promise<WindowResult> {
  const n = group.size;
  const startReceived = group.received;
  let sent = 0;
  let running = true;
  const pump = () => {
    while (running && sent * n - (group.received - startReceived) < inFlight * n) {
      sent += 1;
      send();
    }
  };
  group.onDelivery = pump;
  pump();
  await sleep(300);
  const cpu = new CpuWindow(server.pid);
  const before = group.received;
  await sleep(seconds * 1000);
  const deliveries = group.received - before;
  const used = cpu.read();
  running = false;
  const deadline = Date.now() + 30_000;
  while (group.received - startReceived < sent * n) {
    if (Date.now() > deadline || group.errors > 0)
      throw new Error(`${group.label}: ${sent * n - (group.received - startReceived)} deliveries missing`);
    await sleep(20);
  }
  group.onDelivery = () => undefined;
  return { deliveries, seconds: used.seconds, serverMicros: used.serverMicros };
}

/** RSS growth per idle connection of one kind, on a fresh server. */
async function idleMemory(store: StoreKind, kind: 'ws' | 'sse', n: number): Promise<number> {
  const server = await startSyncbridge({ store });
  try {
    // Warm the paths (token checks, first subscription) so their one-time cost is not counted.
    const warm =
      kind === 'ws'
        ? await wsSubscribers(server, 20, 'events:idle', null)
        : await sseSubscribers(server, 20, 'events:idle', null);
    await sleep(2000);
    const before = server.rssBytes();
    const conns =
      kind === 'ws'
        ? await wsSubscribers(server, n, 'events:idle', null)
        : await sseSubscribers(server, n, 'events:idle', null);
    await sleep(3000);
    const after = server.rssBytes();
    if (kind === 'ws') terminateAll([...(warm as WebSocket[]), ...(conns as WebSocket[])]);
    else for (const res of [...(warm as IncomingMessage[]), ...(conns as IncomingMessage[])]) res.destroy();
    return (after - before) / n;
  } finally {
    await server.stop();
  }
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { ...COMMON_FLAGS, subscribers: { type: 'string' }, 'in-flight': { type: 'string' } },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite']);
  const subscribers = numberFlag(values, 'subscribers', 1000);
  const inFlight = numberFlag(values, 'in-flight', 16);
  const load = loadAverage1m();
  process.stdout.write(
    `sse: ${subscribers} SSE + ${subscribers} WebSocket subscribers, ${inFlight} in flight, ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`,
  );
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const store of options.stores) {
    const server = await startSyncbridge({ store });
    const sender = await RequestClient.connect(server.wsUrl, await server.token('sender'));
    const payload = JSON.stringify({ d: 'x'.repeat(90) });
    const publishTo = (type: string) => {
      const frame = Buffer.from(`{"type":"publish","event":{"type":"${type}","payload":${payload}}}`);
      return () => sender.ws.send(frame, { binary: false });
    };
    const ws = newGroup('WebSocket', subscribers);
    const sse = newGroup('SSE', subscribers);
    const wsConns = await wsSubscribers(server, subscribers, 'events:bench_ws', ws);
    const sseConns = await sseSubscribers(server, subscribers, 'events:bench_sse', sse);
    const sendWs = publishTo('bench_ws');
    const sendSse = publishTo('bench_sse');
    await runWindow(server, ws, sendWs, options.warmupSeconds, inFlight);
    await runWindow(server, sse, sendSse, options.warmupSeconds, inFlight);
    const pairs: { ws: WindowResult; sse: WindowResult }[] = [];
    const per = (r: WindowResult) => r.serverMicros / r.deliveries;
    for (let rep = 1; rep <= options.reps; rep++) {
      const a = await runWindow(server, ws, sendWs, options.windowSeconds, inFlight);
      const b = await runWindow(server, sse, sendSse, options.windowSeconds, inFlight);
      progress(
        `rep ${rep}: WebSocket ${formatNumber(a.deliveries / a.seconds)}/s ${formatNumber(per(a))} µs/delivery; SSE ${formatNumber(b.deliveries / b.seconds)}/s ${formatNumber(per(b))} µs/delivery`,
      );
      pairs.push({ ws: a, sse: b });
    }
    terminateAll([sender, ...wsConns]);
    for (const res of sseConns) res.destroy();
    await server.stop();
    for (const [label, runs] of [
      ['WebSocket', pairs.map((p) => p.ws)],
      ['SSE', pairs.map((p) => p.sse)],
    ] as const) {
      figures.push(
        figure({
          name: `deliveries/s to ${subscribers} ${label} subscribers`,
          system: `syncbridge/${store} ${label}`,
          durability: server.durability,
          unit: 'deliveries/s',
          summary: summarize(runs.map((r) => r.deliveries / r.seconds)),
          details: { 'server CPU µs/delivery': median(runs.map(per)) },
        }),
      );
    }
    figures.push(
      figure({
        name: 'server CPU per delivery, SSE ÷ WebSocket',
        system: `syncbridge/${store}`,
        durability: server.durability,
        unit: 'ratio',
        summary: summarize(pairs.map((p) => per(p.sse) / per(p.ws))),
        target: { op: '<=', value: CPU_TARGET },
      }),
    );
    const wsBytes = await idleMemory(store, 'ws', subscribers);
    const sseBytes = await idleMemory(store, 'sse', subscribers);
    notes.push(
      `${store}: idle connection RSS ${formatNumber(wsBytes / 1024)} KiB WebSocket, ${formatNumber(sseBytes / 1024)} KiB SSE (${subscribers} each, fresh server per kind).`,
    );
    figures.push(
      figure({
        name: 'idle connection memory, SSE ÷ WebSocket',
        system: `syncbridge/${store}`,
        durability: server.durability,
        unit: 'ratio',
        summary: summarize([sseBytes / wsBytes]),
        details: { 'WebSocket KiB/connection': wsBytes / 1024, 'SSE KiB/connection': sseBytes / 1024 },
        target: { op: '<=', value: MEMORY_TARGET },
      }),
    );
  }
  notes.push(
    `Closed loop: ${inFlight} domain events outstanding (100-byte payloads), a message is done when all ${subscribers} subscribers of its group received it; the other group idles meanwhile.`,
  );
  console.log('');
  printTable(figures);
  for (const note of notes) console.log(note);
  saveSection({
    bench: 'sse',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes,
  });
}

runMain(main, 900);
