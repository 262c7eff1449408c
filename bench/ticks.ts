/**
 * Market-data ticks through a `ws-feed` connector: how many ticks per second one node ingests (parsed,
 * published to the topic, stored in batches), and what 1,000 screens subscribed to the topic see at a
 * given feed rate: deliveries per second and tick-to-screen latency (from the feed's send to the
 * screen's receive, both in this process, so one clock).
 *
 *   node --import tsx bench/ticks.ts [--quick] [--store sqlite|postgres|all] [--subscribers 1000]
 *                                    [--rate 100] [--symbols 1000] [--batch 200] [--window 10]
 *
 * Ingest: the feed (a WebSocket server in this process) sends messages of `--batch` ticks as fast as the
 * server's socket takes them, with no subscriber; the figure is the server's own tick count over the
 * window (GET /v1/connectors/bench), and the rows it stored. Fan-out: `--subscribers` screens (one user
 * each) subscribe `topic:bench`; the feed sends `--rate` ticks per second over `--symbols` symbols in
 * messages every 10 ms; the figures are deliveries per second (live ticks and conflated values) and the
 * latency percentiles of live ticks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { mapLimit, openSocket, sourceAddress, syncbridgeUrl, terminateAll } from './lib/clients.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from './lib/options.ts';
import { cpuProfFlags, formatProfile, newestProfile, profileDir, summarizeProfile } from './lib/profile.ts';
import { formatNumber, progress } from './lib/report.ts';
import { type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { percentileSorted } from './lib/stats.ts';

const ADMIN_KEY = 'bench-ticks-admin-key-0123456789';
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    ...COMMON_FLAGS,
    subscribers: { type: 'string' },
    rate: { type: 'string' },
    symbols: { type: 'string' },
    batch: { type: 'string' },
  },
  strict: true,
});
const options = benchOptions(values, ['sqlite']);
const SUBSCRIBERS = numberFlag(values, 'subscribers', 1000);
const RATE = numberFlag(values, 'rate', 100);
const SYMBOLS = Array.from({ length: numberFlag(values, 'symbols', 1000) }, (_, i) => `SYM${i}`);
const BATCH = numberFlag(values, 'batch', 200);
const now = () => performance.timeOrigin + performance.now();

interface Feed {
  url: string;
  socket(): WebSocket | null;
  close(): Promise<void>;
}

async function startFeed(): Promise<Feed> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let current: WebSocket | null = null;
  wss.on('connection', (ws) => {
    current = ws;
    ws.on('error', () => undefined);
  });
  const address = wss.address();
  return {
    url: `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`,
    socket: () => (current?.readyState === WebSocket.OPEN ? current : null),
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

let seq = 0;
function message(n: number): string {
  const d: string[] = [];
  for (let i = 0; i < n; i++) {
    seq += 1;
    const s = SYMBOLS[seq % SYMBOLS.length]!;
    d.push(`{"s":"${s}","p":${100 + (seq % 1000) / 100},"v":${seq % 500},"t":${now().toFixed(3)}}`);
  }
  return `{"d":[${d.join(',')}]}`;
}

async function connector(url: string): Promise<{ ticks: number; stored: number }> {
  const res = await fetch(`${url}/v1/connectors/bench`, {
    headers: { 'x-api-key': ADMIN_KEY, 'x-tenant': 'bench' },
  });
  const body = (await res.json()) as { metrics: { ticks_total: number } };
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const stored = /^syncbridge_ticks_stored_total (\d+)/m.exec(metrics);
  return { ticks: body.metrics.ticks_total, stored: Number(stored?.[1] ?? 0) };
}

async function runStore(store: StoreKind): Promise<void> {
  const feed = await startFeed();
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-ticks-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      connectors: {
        tickFlushMs: 200,
        tickFlushRows: 20_000,
        instances: [
          {
            name: 'bench',
            tenant: 'bench',
            kind: 'ws-feed',
            url: feed.url,
            symbols: SYMBOLS,
            subscribeMessage: { op: 'subscribe', symbols: '{{symbols}}' },
            parse: { tick: { items: 'd', symbol: 's', price: 'p', volume: 'v', ts: 't' } },
          },
        ],
      },
    }),
  );
  const profiles = options.cpuProf ? profileDir(`ticks-${store}`) : null;
  const server = await startSyncbridge({
    store,
    ...(profiles ? { nodeFlags: cpuProfFlags(profiles) } : {}),
    env: { SYNCBRIDGE_CONFIG: configFile, SYNCBRIDGE_ADMIN_KEY: ADMIN_KEY, SYNCBRIDGE_LOG_LEVEL: 'warn' },
  });
  const httpUrl = server.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  try {
    while (!feed.socket()) await sleep(20);

    // 1. Ingest, no subscriber: as fast as the server's socket takes messages.
    progress(`${server.label}: ingest, ${BATCH} ticks per message`);
    let sending = true;
    const pump = (async () => {
      while (sending) {
        const ws = feed.socket();
        if (ws && ws.bufferedAmount < 4 * 1024 * 1024) ws.send(message(BATCH));
        else await new Promise((r) => setImmediate(r));
        if (seq % (BATCH * 20) === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    await sleep(options.warmupSeconds * 1000);
    const a = await connector(httpUrl);
    const cpuA = server.cpuMicros();
    const tA = performance.now();
    await sleep(options.windowSeconds * 1000);
    const b = await connector(httpUrl);
    const cpuB = server.cpuMicros();
    const seconds = (performance.now() - tA) / 1000;
    sending = false;
    await pump;
    const ingest = (b.ticks - a.ticks) / seconds;
    const stored = (b.stored - a.stored) / seconds;
    console.log(
      `| ${server.label} | ingest | ${formatNumber(ingest)} ticks/s | stored ${formatNumber(stored)} rows/s | ` +
        `server CPU ${((cpuB - cpuA) / Math.max(1, b.ticks - a.ticks)).toFixed(1)} µs/tick |`,
    );
    await sleep(1000);

    // 2. Fan-out to screens at a steady feed rate.
    progress(`${server.label}: ${SUBSCRIBERS} screens, ${RATE} ticks/s`);
    const latencies: number[] = [];
    let delivered = 0;
    let conflated = 0;
    let measuring = false;
    const screens = await mapLimit(SUBSCRIBERS, 50, async (i) => {
      const ws = await openSocket(syncbridgeUrl(server.wsUrl, await server.token(`screen-${i}`, 'bench')), {
        localAddress: sourceAddress(i),
        welcome: true,
      });
      await new Promise<void>((resolve) => {
        ws.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.startsWith('{"type":"subscribed"')) return resolve();
          if (!measuring) return;
          if (text.startsWith('{"type":"tick"')) {
            delivered += 1;
            const t = /"ts":([\d.]+)/.exec(text);
            if (t && latencies.length < 5_000_000) latencies.push(now() - Number(t[1]));
          } else if (text.startsWith('{"type":"ticks"')) {
            const frame = JSON.parse(text) as { ticks: unknown[]; conflated?: number };
            delivered += frame.ticks.length;
            conflated += frame.conflated ?? 0;
          }
        });
        ws.send(JSON.stringify({ type: 'subscribe', channel: 'topic:bench' }));
      });
      return ws;
    });
    let running = true;
    const perMessage = Math.max(1, Math.round(RATE / 100));
    const steady = (async () => {
      let next = performance.now();
      while (running) {
        feed.socket()?.send(message(perMessage));
        next += (perMessage / RATE) * 1000;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
      }
    })();
    await sleep(options.warmupSeconds * 1000);
    measuring = true;
    const t0 = performance.now();
    const fanCpu0 = server.cpuMicros();
    const load0 = process.cpuUsage();
    await sleep(options.windowSeconds * 1000);
    measuring = false;
    const fanCpu = server.cpuMicros() - fanCpu0;
    const loadgen = process.cpuUsage(load0);
    const fanSeconds = (performance.now() - t0) / 1000;
    running = false;
    await steady;
    latencies.sort((x, y) => x - y);
    console.log(
      `| ${server.label} | ${SUBSCRIBERS} screens at ${RATE} ticks/s | ${formatNumber(delivered / fanSeconds)} deliveries/s | ` +
        `tick-to-screen p50 ${percentileSorted(latencies, 50).toFixed(1)} ms, p99 ${percentileSorted(latencies, 99).toFixed(1)} ms | ` +
        `conflated ${formatNumber(conflated)} | server CPU ${(fanCpu / Math.max(1, delivered)).toFixed(2)} µs/delivery, ` +
        `${((fanCpu / 1e6 / fanSeconds) * 100).toFixed(0)}% of a core; load generator ${(((loadgen.user + loadgen.system) / 1e6 / fanSeconds) * 100).toFixed(0)}% |`,
    );
    terminateAll(screens);
  } finally {
    await server.stop();
    await feed.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const profile = profiles ? newestProfile(profiles) : null;
  if (profile) console.log(formatProfile(summarizeProfile(profile, 25)));
}

runMain(async () => {
  for (const store of options.stores) await runStore(store);
}, 600);
