/**
 * Paced device sync: a device registered with a 64 KiB/s budget and priorities settings 10, documents 1
 * misses 1,000 changes (900 to 300 documents, then 100 to 20 settings) and reconnects. Measured from the
 * bytes the device's socket received: the most bytes in any one-second window ÷ the budget (target
 * ≤ 1.1), the catch-up time against the time the bytes need at the budget, when the settings backlog was
 * complete, and with `conflate: true` the events and bytes received (target ≤ one event per record).
 * Server CPU per event sent is compared with the same catch-up unpaced (no budget), in one run.
 * `--transport sse` runs the same over server-sent events (`GET /v1/stream?deviceId=`, the device
 * registered over REST), measured from the HTTP body's chunks; its figures are saved as `paced-sync-sse`.
 *
 *   node --import tsx bench/paced-sync.ts [--quick] [--store sqlite|postgres|all] [--reps 3] [--transport ws|sse]
 */
import { parseArgs } from 'node:util';
import { createParser } from 'eventsource-parser';
import WebSocket from 'ws';
import { RequestClient } from './lib/clients.ts';
import { runMain } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS } from './lib/options.ts';
import { CpuWindow, loadAverage1m } from './lib/proc.ts';
import {
  commandLine,
  type Figure,
  figure,
  machine,
  printTable,
  progress,
  saveSection,
} from './lib/report.ts';
import { type StoreKind, type SyncbridgeUnderTest, startSyncbridge } from './lib/server-process.ts';
import { median, summarize } from './lib/stats.ts';

const BUDGET = 64 * 1024;
const RECORDS = 320;

interface Run {
  seconds: number;
  settingsDoneSeconds: number;
  bytes: number;
  maxWindowRatio: number;
  events: number;
  serverMicrosPerEvent: number;
}

type Msg = { type: string; channel?: string; events?: unknown[] };

async function write(writer: RequestClient, collection: string, records: number, count: number, tag: string) {
  const mutations = Array.from({ length: count }, (_, i) => ({
    mid: `${tag}-${collection}-${i}`,
    collection,
    id: `${collection}-${i % records}`,
    op: 'put',
    data: { n: i, body: 'x'.repeat(16) },
  }));
  const reply = await writer.request({ type: 'mutate', mutations });
  if (reply.type !== 'results') throw new Error(`write failed: ${JSON.stringify(reply).slice(0, 200)}`);
}

type Transport = 'ws' | 'sse';

/**
 * Over SSE: registers the device over REST, opens its stream of both channels after `since` and hands
 * each message to `onMessage` (which returns true once everything expected came), noting each chunk.
 */
async function streamSse(
  server: SyncbridgeUnderTest,
  token: string,
  device: Record<string, unknown>,
  since: number,
  frames: { at: number; bytes: number }[],
  onMessage: (message: Msg) => boolean,
): Promise<void> {
  const http = server.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime.*$/, '');
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const registered = await fetch(`${http}/v1/devices`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ id: 'phone', ...device }),
  });
  if (!registered.ok) throw new Error(`device registration failed: ${registered.status}`);
  const controller = new AbortController();
  const channels = ['records:documents', 'records:settings'].map((c) => `channels=${encodeURIComponent(c)}`);
  const res = await fetch(`${http}/v1/stream?${channels.join('&')}&since=${since}&deviceId=phone`, {
    headers,
    signal: controller.signal,
  });
  if (!res.ok || !res.body) throw new Error(`stream refused: ${res.status}`);
  let complete = false;
  const parser = createParser({
    onEvent: (event) => {
      if (onMessage(JSON.parse(event.data) as Msg)) complete = true;
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      frames.push({ at: performance.now(), bytes: chunk.length });
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (complete) break;
    }
  } finally {
    controller.abort();
  }
}

/** One catch-up of 1,000 missed changes by a fresh device of a fresh tenant. */
async function catchUp(
  server: SyncbridgeUnderTest,
  tenant: string,
  device: Record<string, unknown>,
  transport: Transport = 'ws',
): Promise<Run> {
  const token = await server.token('alice', tenant);
  const writer = await RequestClient.connect(server.wsUrl, token);
  await write(writer, 'seed', 1, 1, 'seed');
  const since = Number((await writer.request({ type: 'subscribe', channel: 'records:seed' })).cursor);
  await write(writer, 'documents', 300, 900, 'a');
  await write(writer, 'settings', 20, 100, 'a');
  writer.close();

  const frames: { at: number; bytes: number }[] = [];
  let events = 0;
  let settingsLeft = device.conflate ? 20 : 100;
  let settingsDone = 0;
  const cpu = new CpuWindow(server.pid);
  const start = performance.now();
  const expected = device.conflate ? RECORDS : 1000;
  /** Counts a message's events; true once all expected arrived. */
  const count = (message: Msg): boolean => {
    const n = message.type === 'event' ? 1 : message.type === 'events' ? message.events!.length : 0;
    events += n;
    if (n > 0 && message.channel === 'records:settings') {
      settingsLeft -= n;
      if (settingsLeft === 0) settingsDone = performance.now() - start;
    }
    return events >= expected;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`catch-up incomplete: ${events} events`)), 60_000);
  });
  let ws: WebSocket | null = null;
  if (transport === 'sse') {
    await Promise.race([streamSse(server, token, device, since, frames, count), timeout]);
  } else {
    const socket = new WebSocket(server.wsUrl, { perMessageDeflate: false });
    ws = socket;
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    await Promise.race([
      new Promise<void>((resolve) => {
        socket.on('message', (data: Buffer) => {
          const message = JSON.parse(data.toString()) as Msg;
          frames.push({ at: performance.now(), bytes: data.length });
          if (message.type === 'welcome') {
            for (const channel of ['records:documents', 'records:settings'])
              socket.send(JSON.stringify({ type: 'subscribe', channel, since }));
          }
          if (count(message)) resolve();
        });
        socket.send(
          JSON.stringify({ type: 'hello', token, deviceId: 'phone', device, capabilities: ['batch'] }),
        );
      }),
      timeout,
    ]);
  }
  clearTimeout(timer);
  const used = cpu.read();
  const seconds = (performance.now() - start) / 1000;
  ws?.terminate();
  let max = 0;
  let sum = 0;
  let end = 0;
  for (let i = 0; i < frames.length; i++) {
    while (end < frames.length && frames[end]!.at < frames[i]!.at + 1000) sum += frames[end++]!.bytes;
    max = Math.max(max, sum);
    sum -= frames[i]!.bytes;
  }
  const rate = (device.bandwidth as { bytesPerSecond: number } | undefined)?.bytesPerSecond;
  return {
    seconds,
    settingsDoneSeconds: settingsDone / 1000,
    bytes: frames.reduce((s, f) => s + f.bytes, 0),
    maxWindowRatio: rate ? max / rate : Number.NaN,
    events,
    serverMicrosPerEvent: used.serverMicros / events,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ...COMMON_FLAGS, transport: { type: 'string' } }, strict: true });
  const transport = (values.transport ?? 'ws') as Transport;
  if (transport !== 'ws' && transport !== 'sse')
    throw new Error(`--transport ${values.transport} must be ws or sse`);
  const options = benchOptions(values, ['sqlite', 'postgres']);
  const reps = options.quick ? 1 : options.reps;
  const load = loadAverage1m();
  const figures: Figure[] = [];
  const priorities = { settings: 10, documents: 1 };
  for (const store of options.stores as StoreKind[]) {
    const server = await startSyncbridge({ store });
    try {
      const paced: Run[] = [];
      const conflated: Run[] = [];
      const unpaced: Run[] = [];
      for (let r = 0; r < reps; r++) {
        // Alternating: unpaced, paced, conflated.
        unpaced.push(await catchUp(server, `u${r}`, { priorities }, transport));
        paced.push(
          await catchUp(server, `p${r}`, { bandwidth: { bytesPerSecond: BUDGET }, priorities }, transport),
        );
        conflated.push(
          await catchUp(
            server,
            `c${r}`,
            { bandwidth: { bytesPerSecond: BUDGET }, priorities, conflate: true },
            transport,
          ),
        );
        progress(
          `${store} rep ${r + 1}: paced ${paced[r]!.seconds.toFixed(2)} s (max 1 s window ${paced[r]!.maxWindowRatio.toFixed(3)}x budget), conflated ${conflated[r]!.events} events in ${conflated[r]!.seconds.toFixed(2)} s`,
        );
      }
      const base = {
        system: `${server.label}${transport === 'sse' ? ', SSE' : ''}`,
        durability: server.durability,
      };
      figures.push(
        figure({
          ...base,
          name: 'paced catch-up, most bytes in any 1 s window ÷ budget (64 KiB/s, 1,000 changes)',
          unit: 'x',
          summary: summarize(paced.map((p) => p.maxWindowRatio)),
          target: { op: '<=', value: 1.1 },
          details: {
            seconds: median(paced.map((p) => p.seconds)),
            secondsAtBudget: median(paced.map((p) => p.bytes / BUDGET)),
            settingsCompleteSeconds: median(paced.map((p) => p.settingsDoneSeconds)),
            bytes: median(paced.map((p) => p.bytes)),
          },
        }),
        figure({
          ...base,
          name: 'conflated catch-up, events per record (1,000 changes of 320 records)',
          unit: 'events/record',
          summary: summarize(conflated.map((c) => c.events / RECORDS)),
          target: { op: '<=', value: 1 },
          details: {
            seconds: median(conflated.map((c) => c.seconds)),
            bytes: median(conflated.map((c) => c.bytes)),
            maxWindowRatio: median(conflated.map((c) => c.maxWindowRatio)),
          },
        }),
        figure({
          ...base,
          name: 'server CPU per event sent, paced ÷ unpaced catch-up',
          unit: 'x',
          summary: summarize(paced.map((p, i) => p.serverMicrosPerEvent / unpaced[i]!.serverMicrosPerEvent)),
          details: {
            pacedMicrosPerEvent: median(paced.map((p) => p.serverMicrosPerEvent)),
            unpacedMicrosPerEvent: median(unpaced.map((p) => p.serverMicrosPerEvent)),
            unpacedSeconds: median(unpaced.map((p) => p.seconds)),
          },
        }),
      );
    } finally {
      await server.stop();
    }
  }
  printTable(figures);
  saveSection({
    bench: transport === 'sse' ? 'paced-sync-sse' : 'paced-sync',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [`load average (1 min) at the end: ${loadAverage1m().toFixed(2)}`],
  });
}

runMain(main, 600);
