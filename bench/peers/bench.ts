/**
 * Side by side with peers: syncbridge and the alternatives a user would consider, on the same machine,
 * with the same load generator (this process), in one run, reported as syncbridge ÷ peer ratios.
 *
 *   npm run bench -- peers [--quick] [--only fanout,writes,connections,storm] [--reps 3] [--window 5]
 *                          [--writers 1,50] [--write-tenants 8] [--write-variants webhooks,merge]
 *                          [--subscribers 1000,10000] [--connections 50000] [--storm-clients 10000]
 *
 * (run.ts installs bench/peers/node_modules with `npm ci` when it is missing, then runs this script.)
 *
 * - fanout: deliveries/s and server CPU per delivery (closed loop, 16 messages in flight), then delivery
 *   latency p50/p99 at a fixed offered load of 50,000 deliveries/s, for 1,000 and 10,000 subscribers of
 *   one channel / room, 100-byte payloads: syncbridge (SQLite), Socket.IO rooms with and without
 *   connection state recovery, ShareDB (one document, every subscriber subscribed to it; 1,000 only) and
 *   the plain `ws` broadcast reference. Systems alternate window by window (A B C D A B C D …).
 * - writes: acknowledged durable writes/s and their p99 with 1 and 50 writers, each with one write in
 *   flight: syncbridge `mutate` (one put) on SQLite and PostgreSQL, ShareDB `submitOp` (one json0 op) on
 *   its in-memory database and on sharedb-postgres (same PostgreSQL server, synchronous_commit=on).
 *   --write-variants adds syncbridge with webhooks registered for the written events, and/or on a `merge`
 *   collection (bench/peers/write-variants.ts), at the largest writer count, as ratios to the plain case.
 * - connections: idle connections opened and held, and the server's RSS per connection (syncbridge with
 *   a JWT each, Socket.IO, the `ws` reference), clients spread over 127.0.0.2–127.0.0.9. 19,000 by
 *   default: the hard open-file limit of a process on this machine is 20,000 and cannot be raised here.
 * - storm: 10,000 subscribers with cursors; syncbridge is restarted (SIGTERM, same SQLite file) while
 *   a writer keeps publishing, and a burst of 20 events follows the restart; every client reconnects with
 *   the SDK's back-off (full jitter, 500 ms base) and subscribes with `since` = its last seq. Time until
 *   every client has caught up to the head, events lost or repeated (from the seqs each client sees).
 *   Socket.IO with connection state recovery gets its best case: its server keeps running and drops every
 *   connection (SIGUSR2); its clients come back with their own back-off (1 s base, ±50%, 5 s cap). After a
 *   real restart it has nothing to recover (its state is in the server's memory).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ShareDBClient from 'sharedb/lib/client/index.js';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { backoffDelay } from '../../packages/client/src/backoff.ts';
import { mapLimit, openSocket, RequestClient, syncbridgeUrl, terminateAll } from '../lib/clients.ts';
import { runMain, sleep } from '../lib/lifecycle.ts';
import { benchOptions, COMMON_FLAGS, numberFlag } from '../lib/options.ts';
import { CpuWindow, loadAverage1m } from '../lib/proc.ts';
import { cpuProfFlags, formatProfile, newestProfile, profileDir, summarizeProfile } from '../lib/profile.ts';
import {
  commandLine,
  type Figure,
  figure,
  formatNumber,
  machine,
  printTable,
  progress,
  saveSection,
} from '../lib/report.ts';
import {
  POSTGRES_URL,
  postgresDurability,
  type ServerUnderTest,
  type StoreKind,
  type SyncbridgeUnderTest,
  startReference,
  startSyncbridge,
  startWsServer,
} from '../lib/server-process.ts';
import { median, percentileSorted, summarize } from '../lib/stats.ts';
import {
  KnownVersions,
  parseVariants,
  registerWebhooks,
  variantEnv,
  WebhookReceiver,
  type WriteVariant,
} from './write-variants.ts';

const PAYLOAD_BYTES = 100;
const IN_FLIGHT = 16;
/**
 * Offered load for the latency windows (deliveries/s, whatever the subscriber count), below what every
 * system here reaches in the throughput windows on a quiet machine (--latency-rate to change it).
 */
let latencyDeliveriesPerSecond = 20_000;
const DOCS_PER_WRITER = 10;
/** Tenants the syncbridge writers spread over (--write-tenants); ShareDB writes the same documents either way. */
let writeTenants = 1;
/**
 * Open files per process. This machine's hard limit is 20,000 and cannot be raised (the container has no
 * CAP_SYS_RESOURCE), so one server process holds at most ~19,900 connections here.
 */
const SERVER_FILE_LIMIT = 20_000;
/** Sockets this process can hold at once (its open-file limit is 20,000), leaving room for the rest. */
const LOADGEN_SOCKETS = 18_000;
const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const sourceAddress = (i: number) => SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length]!;
const PEERS = import.meta.dirname;

/** Payload: {"t":<send time, ms>,"n":<sequence>,"d":"xxx…"} padded to 100 bytes of JSON. */
function payload(t: number, n: number): { t: number; n: number; d: string } {
  const base = { t, n, d: '' };
  base.d = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - JSON.stringify(base).length));
  return base;
}

// ---------------------------------------------------------------------------------------------------
// Servers

/** Profile directories of syncbridge servers started with --cpu-prof, summarised at the end. */
const profiles: string[] = [];

function syncbridgeServer(
  store: StoreKind,
  cpuProf: string | null,
  env: Record<string, string> = {},
): Promise<SyncbridgeUnderTest> {
  const dir = cpuProf ? profileDir(`peers-${cpuProf}-${store}`) : null;
  if (dir) profiles.push(dir);
  return startSyncbridge({
    store,
    env,
    fileLimit: SERVER_FILE_LIMIT,
    nodeFlags: dir ? cpuProfFlags(dir) : [],
  });
}

function socketioServer(recovery: boolean): Promise<ServerUnderTest> {
  return startWsServer(
    recovery ? 'socket.io + recovery' : 'socket.io',
    join(PEERS, 'socketio-server.ts'),
    { RECOVERY: recovery ? '1' : '0' },
    { fileLimit: SERVER_FILE_LIMIT },
  );
}

async function sharedbServer(store: 'memory' | 'postgres'): Promise<ServerUnderTest & { schema?: string }> {
  if (store === 'memory')
    return startWsServer(
      'sharedb/memory',
      join(PEERS, 'sharedb-server.ts'),
      {},
      { fileLimit: SERVER_FILE_LIMIT },
    );
  const schema = `sharedb_bench_${process.pid}_${Date.now()}`;
  const server = await startWsServer(
    'sharedb/postgres',
    join(PEERS, 'sharedb-server.ts'),
    { PG_URL: POSTGRES_URL, PG_SCHEMA: schema },
    { fileLimit: SERVER_FILE_LIMIT },
  );
  return {
    ...server,
    stop: async () => {
      await server.stop();
      spawnSync('psql', [POSTGRES_URL, '-qc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`]);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Clients: the same approach for every system. Subscribers count deliveries; in latency windows they
// read the send time from the payload (same process, same clock).

function openSocketio(url: string, i: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = ioClient(url, {
      transports: ['websocket'],
      forceNew: true,
      localAddress: sourceAddress(i),
    } as Parameters<typeof ioClient>[1]);
    const timer = setTimeout(
      () => reject(new Error(`socket.io client ${i}: no connect within 30 s`)),
      30_000,
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
  });
}

function joinRoom(socket: Socket, room: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ack to join within 30 s')), 30_000);
    socket.emit('join', room, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function openSyncbridge(server: SyncbridgeUnderTest, user: string, i: number): Promise<WebSocket> {
  return openSocket(syncbridgeUrl(server.wsUrl, await server.token(user)), {
    localAddress: sourceAddress(i),
    welcome: true,
  });
}

/** Sends a syncbridge request with rid 1 on a fresh socket and waits for its reply type. */
function firstReply(ws: WebSocket, message: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(message)}`)), 30_000);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    ws.send(JSON.stringify({ ...message, rid: 1 }));
  });
}

function openShareDb(
  url: string,
  i: number,
): Promise<{ ws: WebSocket; connection: ShareDBClient.Connection }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress: sourceAddress(i), perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('open', () => resolve({ ws, connection: new ShareDBClient.Connection(ws) }));
  });
}

const call = (fn: (cb: (err?: Error) => void) => void) =>
  new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

// ---------------------------------------------------------------------------------------------------
// Fan-out

interface FanoutSystem {
  label: string;
  durability: string;
  server: ServerUnderTest;
  n: number;
  send: (t: number, seq: number) => void;
  received: number;
  onDelivery: () => void;
  /** In latency windows: delivery latencies in ms (subscribers parse the payload). */
  latencies: number[] | null;
  errors: number;
  close: () => void;
}

interface FanoutWindow {
  deliveries: number;
  seconds: number;
  serverMicros: number;
  waitMicros: number;
  loadgenMicros: number;
}

function newSystem(label: string, durability: string, server: ServerUnderTest, n: number): FanoutSystem {
  return {
    label,
    durability,
    server,
    n,
    send: () => undefined,
    received: 0,
    onDelivery: () => undefined,
    latencies: null,
    errors: 0,
    close: () => undefined,
  };
}

function delivered(system: FanoutSystem, sentAt: () => number): void {
  system.received += 1;
  if (system.latencies) system.latencies.push(performance.now() - sentAt());
  system.onDelivery();
}

async function syncbridgeFanout(n: number, cpuProf: string | null): Promise<FanoutSystem> {
  const server = await syncbridgeServer('sqlite', cpuProf);
  const system = newSystem(server.label, server.durability, server, n);
  const sender = await RequestClient.connect(server.wsUrl, await server.token('sender'), sourceAddress(0));
  sender.ws.on('message', (data: Buffer) => {
    if (!data.subarray(0, 12).toString().startsWith('{"type":"ok"')) {
      system.errors += 1;
      if (system.errors === 1) process.stderr.write(`publish failed: ${data.toString().slice(0, 300)}\n`);
    }
  });
  system.send = (t, seq) =>
    sender.ws.send(
      `{"type":"publish","event":{"type":"bench","payload":${JSON.stringify(payload(t, seq))}}}`,
    );
  const subscribers = await mapLimit(n, 100, async (i) => {
    const ws = await openSyncbridge(server, `subscriber-${i}`, i);
    const reply = await firstReply(ws, { type: 'subscribe', channel: 'events:bench' });
    if (reply.type !== 'subscribed') throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
    ws.on('message', (data: Buffer) =>
      delivered(system, () => (JSON.parse(data.toString()) as { payload: { t: number } }).payload.t),
    );
    ws.on('close', () => (system.errors += 1));
    return ws;
  });
  system.close = () => terminateAll([sender, ...subscribers]);
  return system;
}

async function socketioFanout(n: number, recovery: boolean): Promise<FanoutSystem> {
  const server = await socketioServer(recovery);
  const system = newSystem(server.label, 'none (in memory)', server, n);
  const sender = await openSocketio(server.wsUrl, 0);
  system.send = (t, seq) => sender.emit('pub', 'bench', payload(t, seq));
  const subscribers = await mapLimit(n, 100, async (i) => {
    const socket = await openSocketio(server.wsUrl, i);
    await joinRoom(socket, 'bench');
    socket.on('m', (p: { t: number }) => delivered(system, () => p.t));
    socket.on('disconnect', () => (system.errors += 1));
    return socket;
  });
  system.close = () => {
    for (const s of [sender, ...subscribers]) s.disconnect();
  };
  return system;
}

async function referenceFanout(n: number): Promise<FanoutSystem> {
  const server = await startReference({ fileLimit: SERVER_FILE_LIMIT });
  const system = newSystem(server.label, 'none (in memory)', server, n);
  const sender = await openSocket(server.wsUrl, { localAddress: sourceAddress(0) });
  system.send = (t, seq) => sender.send(JSON.stringify({ type: 'bench', ...payload(t, seq) }));
  const subscribers = await mapLimit(n, 100, async (i) => {
    const ws = await openSocket(server.wsUrl, { localAddress: sourceAddress(i) });
    ws.on('message', (data: Buffer) =>
      delivered(system, () => (JSON.parse(data.toString()) as { t: number }).t),
    );
    ws.on('close', () => (system.errors += 1));
    return ws;
  });
  system.close = () => terminateAll([sender, ...subscribers]);
  return system;
}

/** ShareDB: one JSON document, every subscriber subscribed to it; a message is one op setting `p`. */
async function sharedbFanout(n: number): Promise<FanoutSystem> {
  const server = await sharedbServer('memory');
  const system = newSystem('sharedb/memory (doc subscriptions)', 'none (in memory)', server, n);
  const writer = await openShareDb(server.wsUrl, 0);
  const doc = writer.connection.get('bench', 'fanout');
  // Otherwise ops waiting behind the one in flight are composed into one, and subscribers get fewer.
  doc.preventCompose = true;
  await call((cb) => doc.fetch(cb));
  if (!doc.type) await call((cb) => doc.create({ p: payload(0, 0) }, cb));
  system.send = (t, seq) =>
    doc.submitOp([{ p: ['p'], od: doc.data.p, oi: payload(t, seq) }], (err) => {
      if (err) system.errors += 1;
    });
  const subscribers = await mapLimit(n, 100, async (i) => {
    const c = await openShareDb(server.wsUrl, i);
    const d = c.connection.get('bench', 'fanout');
    await call((cb) => d.subscribe(cb));
    d.on('op', (op) => delivered(system, () => (op[0]!.oi as { t: number }).t));
    c.ws.on('close', () => (system.errors += 1));
    return c;
  });
  system.close = () => terminateAll([writer.ws, ...subscribers.map((s) => s.ws)]);
  return system;
}

/** Closed loop: `IN_FLIGHT` messages outstanding, a message is done when all subscribers have it. */
async function throughputWindow(system: FanoutSystem, seconds: number): Promise<FanoutWindow> {
  const n = system.n;
  const start = system.received;
  let sent = 0;
  let running = true;
  const pump = () => {
    while (running && sent * n - (system.received - start) < IN_FLIGHT * n) {
      sent += 1;
      system.send(performance.now(), sent);
    }
  };
  system.onDelivery = pump;
  pump();
  await sleep(300);
  const cpu = new CpuWindow(system.server.pid);
  const before = system.received;
  await sleep(seconds * 1000);
  const deliveries = system.received - before;
  const used = cpu.read();
  running = false;
  await drain(system, () => sent * n - (system.received - start));
  system.onDelivery = () => undefined;
  return {
    deliveries,
    seconds: used.seconds,
    serverMicros: used.serverMicros,
    waitMicros: used.serverRunQueueWaitMicros,
    loadgenMicros: used.loadgenMicros,
  };
}

async function drain(system: FanoutSystem, missing: () => number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (missing() > 0) {
    if (Date.now() > deadline || system.errors > 0)
      throw new Error(`${system.label}: ${missing()} deliveries missing, ${system.errors} errors`);
    await sleep(20);
  }
}

/** Open loop at a fixed rate well below saturation; latencies from the send time in each payload. */
async function latencyWindow(system: FanoutSystem, seconds: number): Promise<number[]> {
  const perSecond = latencyDeliveriesPerSecond / system.n;
  const start = system.received;
  system.latencies = [];
  let sent = 0;
  const t0 = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond);
    while (sent < due) {
      sent += 1;
      system.send(performance.now(), sent);
    }
  }, 2);
  await sleep(seconds * 1000);
  clearInterval(timer);
  await drain(system, () => sent * system.n - (system.received - start));
  const samples = system.latencies.sort((a, b) => a - b);
  system.latencies = null;
  return samples;
}

async function fanout(options: ReturnType<typeof benchOptions>, sizes: number[], cpuProf: boolean) {
  const figures: Figure[] = [];
  const ratios: RatioRow[] = [];
  for (const n of sizes) {
    const systems: FanoutSystem[] = [];
    const build = [
      () => syncbridgeFanout(n, cpuProf ? `fanout-${n}` : null),
      () => socketioFanout(n, false),
      () => socketioFanout(n, true),
      ...(n <= 1000 ? [() => sharedbFanout(n)] : []),
      () => referenceFanout(n),
    ];
    const runs = new Map<FanoutSystem, { t: FanoutWindow; lat: number[] }[]>();
    const measure = async (s: FanoutSystem, rep: number) => {
      const t = await throughputWindow(s, options.windowSeconds);
      const lat = await latencyWindow(s, Math.min(options.windowSeconds, 5));
      runs.get(s)!.push({ t, lat });
      progress(
        `rep ${rep} ${n} subscribers ${s.label}: ${formatNumber(t.deliveries / t.seconds)} deliveries/s, ` +
          `${formatNumber(t.serverMicros / t.deliveries)} µs server CPU/delivery (server ${formatNumber(t.serverMicros / t.seconds / 1e4)}%, ` +
          `load generator ${formatNumber(t.loadgenMicros / t.seconds / 1e4)}% of a core); latency p50 ${formatNumber(percentileSorted(lat, 50))} ms, ` +
          `p99 ${formatNumber(percentileSorted(lat, 99))} ms`,
      );
    };
    const open = async (make: () => Promise<FanoutSystem>) => {
      const s = await make();
      systems.push(s);
      runs.set(s, []);
      progress(`fanout ${n}: ${s.label} ready`);
      return s;
    };
    if (n * build.length < LOADGEN_SOCKETS) {
      // All systems connected at once, measured in turn: A B C D, A B C D, …
      for (const make of build) await open(make);
      for (const s of systems) await throughputWindow(s, options.warmupSeconds);
      for (let rep = 1; rep <= options.reps; rep++) for (const s of systems) await measure(s, rep);
    } else {
      // This process cannot hold every system's subscribers at once: one system at a time, all its
      // repetitions back to back, then the next (same run, same load generator, not interleaved).
      for (const make of build) {
        const s = await open(make);
        await throughputWindow(s, options.warmupSeconds);
        for (let rep = 1; rep <= options.reps; rep++) await measure(s, rep);
        s.close();
        await s.server.stop();
      }
    }
    for (const s of systems) {
      const rs = runs.get(s)!;
      figures.push(
        figure({
          name: `fan-out deliveries/s, ${formatNumber(n)} subscribers`,
          system: s.label,
          durability: s.durability,
          unit: 'deliveries/s',
          summary: summarize(rs.map((r) => r.t.deliveries / r.t.seconds)),
          details: {
            'server CPU µs/delivery': median(rs.map((r) => r.t.serverMicros / r.t.deliveries)),
            'server run-queue wait %': median(rs.map((r) => r.t.waitMicros / r.t.seconds / 1e4)),
            'load generator CPU %': median(rs.map((r) => r.t.loadgenMicros / r.t.seconds / 1e4)),
            'latency p50 ms': median(rs.map((r) => percentileSorted(r.lat, 50))),
            'latency p99 ms': median(rs.map((r) => percentileSorted(r.lat, 99))),
            'latency max ms': median(rs.map((r) => r.lat.at(-1)!)),
          },
        }),
      );
    }
    const sb = systems[0]!;
    for (const peer of systems.slice(1)) {
      const a = runs.get(sb)!;
      const b = runs.get(peer)!;
      const pair = (f: (r: { t: FanoutWindow; lat: number[] }) => number) => a.map((r, i) => f(r) / f(b[i]!));
      const target = peer.label === 'socket.io' ? 3 : peer.label === 'ws reference' ? 0.8 : undefined;
      ratios.push(
        ratio(
          `fan-out ${formatNumber(n)}: deliveries/s`,
          sb,
          peer,
          pair((r) => r.t.deliveries / r.t.seconds),
          target,
        ),
        ratio(
          `fan-out ${formatNumber(n)}: server CPU per delivery (peer ÷ syncbridge: > 1 = syncbridge cheaper)`,
          sb,
          peer,
          a.map((r, i) => b[i]!.t.serverMicros / b[i]!.t.deliveries / (r.t.serverMicros / r.t.deliveries)),
          target,
        ),
        ratio(
          `fan-out ${formatNumber(n)}: latency p50 (lower is better)`,
          sb,
          peer,
          pair((r) => percentileSorted(r.lat, 50)),
        ),
        ratio(
          `fan-out ${formatNumber(n)}: latency p99 (lower is better)`,
          sb,
          peer,
          pair((r) => percentileSorted(r.lat, 99)),
        ),
      );
    }
    for (const s of systems) {
      s.close();
      await s.server.stop();
    }
  }
  return { figures, ratios };
}

// ---------------------------------------------------------------------------------------------------
// Durable writes

interface Writer {
  /** One durable write; resolves when it is acknowledged. */
  write: (i: number) => Promise<void>;
}

interface WriteSystem {
  label: string;
  durability: string;
  server: ServerUnderTest;
  writers: Writer[];
  /** syncbridge only: which case of bench/peers/write-variants.ts this server runs. */
  variant?: WriteVariant;
  /** The webhook variant: deliveries its receiver has had so far. */
  delivered?: () => number;
  /**
   * The webhook variant: waits until every acknowledged write has been delivered, so that a backlog
   * left by one window is not sent during the next system's window (stealing its CPU).
   */
  settle?: () => Promise<void>;
  close: () => void;
}

async function syncbridgeWrites(
  store: StoreKind,
  writers: number,
  cpuProf: string | null,
  variant: WriteVariant = 'plain',
): Promise<WriteSystem> {
  const server = await syncbridgeServer(
    store,
    cpuProf && (variant === 'plain' ? cpuProf : `${cpuProf}-${variant}`),
    variantEnv(variant),
  );
  const runId = Date.now().toString(36);
  // Writer w writes tenant w mod --write-tenants (one tenant, "bench", by default).
  const tenantOf = (w: number) => (writeTenants > 1 ? `bench-${w % writeTenants}` : undefined);
  let receiver: WebhookReceiver | null = null;
  if (variant === 'webhooks') {
    receiver = new WebhookReceiver();
    await receiver.start();
    const tenants =
      writeTenants > 1 ? Array.from({ length: writeTenants }, (_, t) => `bench-${t}`) : ['bench'];
    await registerWebhooks(server.wsUrl, tenants, receiver);
  }
  const clients = await mapLimit(writers, 10, async (w) =>
    RequestClient.connect(server.wsUrl, await server.token(`writer-${w}`, tenantOf(w)), sourceAddress(w)),
  );
  const known = clients.map(() => new KnownVersions());
  let applied = 0;
  const settle = async () => {
    const deadline = Date.now() + 120_000;
    while (receiver && receiver.received < applied) {
      if (Date.now() > deadline)
        throw new Error(`${server.label} +webhooks: ${applied - receiver.received} deliveries still missing`);
      await sleep(50);
    }
  };
  return {
    label: variant === 'plain' ? server.label : `${server.label} +${variant}`,
    durability: server.durability,
    server,
    variant,
    ...(receiver ? { delivered: () => receiver.received, settle } : {}),
    writers: clients.map((client, w) => ({
      write: async (i) => {
        const id = `w${w}-${i % DOCS_PER_WRITER}`;
        const reply = await client.request({
          type: 'mutate',
          mutations: [
            {
              mid: `${runId}-${w}-${i}`,
              collection: 'bench',
              id,
              op: 'put',
              data: { sku: 'SKU-000000', qty: i, location: 'warehouse-1', note: 'x'.repeat(40) },
              ...(variant === 'merge' ? known[w]!.base(id) : {}),
            },
          ],
        });
        const result =
          reply.type === 'results' ? (reply.results as { status: string; version?: number }[])[0] : undefined;
        if (result?.status !== 'applied') throw new Error(`mutate: ${JSON.stringify(reply).slice(0, 300)}`);
        applied += 1;
        if (variant === 'merge') known[w]!.saw(id, result);
      },
    })),
    close: () => {
      terminateAll(clients);
      void receiver?.close();
    },
  };
}

async function sharedbWrites(store: 'memory' | 'postgres', writers: number): Promise<WriteSystem> {
  const server = await sharedbServer(store);
  const durability = store === 'postgres' ? await postgresDurability() : 'none (in memory)';
  const conns = await mapLimit(writers, 10, (w) => openShareDb(server.wsUrl, w));
  const docs = await mapLimit(writers * DOCS_PER_WRITER, 20, async (k) => {
    const doc = conns[Math.floor(k / DOCS_PER_WRITER)]!.connection.get('bench', `w${k}`);
    await call((cb) => doc.fetch(cb));
    if (!doc.type)
      await call((cb) =>
        doc.create({ sku: 'SKU-000000', qty: 0, location: 'warehouse-1', note: 'x'.repeat(40) }, cb),
      );
    return doc;
  });
  return {
    label: `sharedb/${store}`,
    durability,
    server,
    writers: conns.map((_, w) => ({
      write: (i) => {
        const doc = docs[w * DOCS_PER_WRITER + (i % DOCS_PER_WRITER)]!;
        return call((cb) => doc.submitOp([{ p: ['qty'], od: doc.data.qty, oi: i }], cb));
      },
    })),
    close: () => terminateAll(conns.map((c) => c.ws)),
  };
}

interface WriteWindow {
  acked: number;
  seconds: number;
  serverMicros: number;
  waitMicros: number;
  latencies: number[];
  /** Webhook deliveries the variant's receiver had during the window. */
  delivered: number;
  /** The webhook variant: server CPU from the window's start until every write was delivered. */
  settledMicros: number;
}

/** Numbers every write of the run (mutation ids must never repeat across windows). */
let writeCounter = 0;

async function writeWindow(system: WriteSystem, writers: number, seconds: number): Promise<WriteWindow> {
  let stop = false;
  let measuring = false;
  let acked = 0;
  let failure: Error | null = null;
  const latencies: number[] = [];
  const loops = system.writers.slice(0, writers).map(async (w) => {
    while (!stop) {
      const start = performance.now();
      try {
        await w.write(writeCounter++);
      } catch (err) {
        failure ??= err as Error;
        stop = true;
        return;
      }
      if (!measuring) continue;
      acked += 1;
      latencies.push(performance.now() - start);
    }
  });
  await sleep(300);
  measuring = true;
  const cpu = new CpuWindow(system.server.pid);
  const delivered0 = system.delivered?.() ?? 0;
  await sleep(seconds * 1000);
  measuring = false;
  const used = cpu.read();
  const result = {
    delivered: (system.delivered?.() ?? 0) - delivered0,
    acked,
    seconds: used.seconds,
    serverMicros: used.serverMicros,
    waitMicros: used.serverRunQueueWaitMicros,
  };
  stop = true;
  await Promise.all(loops);
  if (failure) throw new Error(`${system.label}: ${(failure as Error).message}`);
  await system.settle?.();
  const settledMicros = cpu.read().serverMicros;
  return { ...result, settledMicros, latencies: latencies.sort((a, b) => a - b) };
}

async function writes(
  options: ReturnType<typeof benchOptions>,
  writerCounts: number[],
  cpuProf: boolean,
  variants: WriteVariant[],
) {
  const max = Math.max(...writerCounts);
  const systems = [
    await syncbridgeWrites('sqlite', max, cpuProf ? 'writes' : null),
    await sharedbWrites('memory', max),
    await syncbridgeWrites('postgres', max, cpuProf ? 'writes' : null),
    await sharedbWrites('postgres', max),
  ];
  // The variants (webhooks, merge) run at the largest writer count only, beside their store's plain case.
  const variantSystems: [WriteSystem, WriteSystem][] = [];
  for (const v of variants)
    for (const plain of [systems[0]!, systems[2]!]) {
      const store = plain === systems[0] ? 'sqlite' : 'postgres';
      variantSystems.push([await syncbridgeWrites(store, max, cpuProf ? 'writes' : null, v), plain]);
    }
  const all = [...systems, ...variantSystems.map(([v]) => v)];
  for (const s of all) await writeWindow(s, max, options.warmupSeconds);
  const runs = new Map<string, WriteWindow[]>();
  const key = (s: WriteSystem, w: number) => `${s.label}|${w}`;
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const w of writerCounts) {
      for (const s of w === max ? all : systems) {
        const r = await writeWindow(s, w, options.windowSeconds);
        runs.set(key(s, w), [...(runs.get(key(s, w)) ?? []), r]);
        progress(
          `rep ${rep} ${w} writer(s) ${s.label}: ${formatNumber(r.acked / r.seconds)} acks/s, p99 ${formatNumber(percentileSorted(r.latencies, 99))} ms, ` +
            `${formatNumber(r.serverMicros / r.acked)} µs server CPU/ack` +
            (s.delivered
              ? `, ${formatNumber(r.delivered / r.seconds)} webhook deliveries/s, ` +
                `${formatNumber(r.settledMicros / r.acked)} µs server CPU/ack until all delivered`
              : ''),
        );
      }
    }
  }
  const figures: Figure[] = [];
  const ratios: RatioRow[] = [];
  for (const w of writerCounts) {
    for (const s of w === max ? all : systems) {
      const rs = runs.get(key(s, w))!;
      figures.push(
        figure({
          name: `acknowledged writes/s, ${w} writer${w > 1 ? 's' : ''}`,
          system: s.label,
          durability: s.durability,
          unit: 'writes/s',
          summary: summarize(rs.map((r) => r.acked / r.seconds)),
          details: {
            'write p50 ms': median(rs.map((r) => percentileSorted(r.latencies, 50))),
            'write p99 ms': median(rs.map((r) => percentileSorted(r.latencies, 99))),
            'server CPU µs/write': median(rs.map((r) => r.serverMicros / r.acked)),
            'server run-queue wait %': median(rs.map((r) => r.waitMicros / r.seconds / 1e4)),
            ...(s.delivered
              ? {
                  'webhook deliveries/s': median(rs.map((r) => r.delivered / r.seconds)),
                  'server CPU µs/write until delivered': median(rs.map((r) => r.settledMicros / r.acked)),
                }
              : {}),
          },
        }),
      );
    }
    for (const [sb, peer, target] of [
      // Issue 15: ≥ 1.5× ShareDB with one writer, ≥ 10× with 50 (on PostgreSQL).
      [systems[2]!, systems[3]!, w === 1 ? 1.5 : 10],
      [systems[0]!, systems[1]!, undefined],
    ] as const) {
      const a = runs.get(key(sb, w))!;
      const b = runs.get(key(peer, w))!;
      const wsys = (s: WriteSystem) => ({ label: s.label, durability: s.durability });
      ratios.push(
        ratio(
          `writes, ${w} writer(s): acknowledged/s`,
          wsys(sb),
          wsys(peer),
          a.map((r, i) => r.acked / r.seconds / (b[i]!.acked / b[i]!.seconds)),
          target,
        ),
        ratio(
          `writes, ${w} writer(s): p99 (lower is better)`,
          wsys(sb),
          wsys(peer),
          a.map((r, i) => percentileSorted(r.latencies, 99) / percentileSorted(b[i]!.latencies, 99)),
        ),
        ratio(
          `writes, ${w} writer(s): server CPU per write (lower is better)`,
          wsys(sb),
          wsys(peer),
          a.map((r, i) => r.serverMicros / r.acked / (b[i]!.serverMicros / b[i]!.acked)),
        ),
      );
    }
    if (w !== max) continue;
    // Issue 15: with webhooks, and on a merge collection, within 1.2x of the plain case.
    for (const [v, plain] of variantSystems) {
      const a = runs.get(key(v, w))!;
      const b = runs.get(key(plain, w))!;
      ratios.push(
        ratio(
          `writes, ${w} writer(s), ${v.variant}: acknowledged/s`,
          v,
          plain,
          a.map((r, i) => r.acked / r.seconds / (b[i]!.acked / b[i]!.seconds)),
          1 / 1.2,
        ),
        ratio(
          `writes, ${w} writer(s), ${v.variant}: server CPU per write (lower is better)`,
          v,
          plain,
          a.map((r, i) => r.serverMicros / r.acked / (b[i]!.serverMicros / b[i]!.acked)),
          undefined,
          1.2,
        ),
      );
    }
  }
  for (const s of all) {
    s.close();
    await s.server.stop();
  }
  return { figures, ratios };
}

// ---------------------------------------------------------------------------------------------------
// Idle connections

async function settledRss(server: ServerUnderTest, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(server.rssBytes());
    await sleep(200);
  }
  return median(samples);
}

interface ConnectionResult {
  label: string;
  opened: number;
  held: number;
  kbPerConnection: number;
  acceptMicros: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  openSeconds: number;
}

async function idleConnections(
  kind: 'syncbridge' | 'socket.io' | 'ws reference',
  n: number,
  settleMs: number,
) {
  let server: ServerUnderTest;
  let open: (i: number, prefix: string) => Promise<{ close: () => void; isOpen: () => boolean }>;
  if (kind === 'syncbridge') {
    const sb = await syncbridgeServer('sqlite', null);
    server = sb;
    // Tokens are minted first so the load generator's signing is not inside the window.
    const tokens = new Map<string, string>();
    open = async (i, prefix) => {
      const user = `${prefix}-${i}`;
      const token = tokens.get(user) ?? (await sb.token(user));
      const ws = await openSocket(syncbridgeUrl(sb.wsUrl, token), {
        localAddress: sourceAddress(i),
        welcome: true,
      });
      return { close: () => ws.terminate(), isOpen: () => ws.readyState === WebSocket.OPEN };
    };
    await mapLimit(n, 50, async (i) => tokens.set(`idle-${i}`, await sb.token(`idle-${i}`)));
  } else if (kind === 'socket.io') {
    server = await socketioServer(false);
    open = async (i) => {
      const s = await openSocketio(server.wsUrl, i);
      return { close: () => s.disconnect(), isOpen: () => s.connected };
    };
  } else {
    server = await startReference({ fileLimit: SERVER_FILE_LIMIT });
    open = async (i) => {
      const ws = await openSocket(server.wsUrl, { localAddress: sourceAddress(i) });
      return { close: () => ws.terminate(), isOpen: () => ws.readyState === WebSocket.OPEN };
    };
  }
  for (const c of await mapLimit(500, 50, (i) => open(i, 'warmup'))) c.close();
  const before = await settledRss(server, settleMs);
  const cpuStart = server.cpuMicros();
  const t0 = performance.now();
  const results = await mapLimit(n, 200, (i) => open(i, 'idle').catch((err: Error) => err));
  const openSeconds = (performance.now() - t0) / 1000;
  const acceptMicros = (server.cpuMicros() - cpuStart) / n;
  const conns = results.filter(
    (r): r is { close: () => void; isOpen: () => boolean } => !(r instanceof Error),
  );
  const failures = results.filter((r): r is Error => r instanceof Error);
  if (failures.length > 0)
    process.stderr.write(`${kind}: ${failures.length} failed, first: ${failures[0]!.message}\n`);
  const after = await settledRss(server, settleMs);
  await sleep(5000);
  const held = conns.filter((c) => c.isOpen()).length;
  for (const c of conns) c.close();
  await server.stop();
  const r: ConnectionResult = {
    label: server.label,
    opened: conns.length,
    held,
    kbPerConnection: (after - before) / conns.length / 1000,
    acceptMicros,
    rssBeforeMiB: before / 2 ** 20,
    rssAfterMiB: after / 2 ** 20,
    openSeconds,
  };
  progress(
    `${r.label}: ${r.held}/${n} held, ${formatNumber(r.kbPerConnection)} KB per connection (RSS ${formatNumber(r.rssBeforeMiB)} → ` +
      `${formatNumber(r.rssAfterMiB)} MiB), ${formatNumber(r.acceptMicros)} µs server CPU per accept, opened in ${formatNumber(openSeconds)} s`,
  );
  return r;
}

async function connections(n: number, reps: number, settleMs: number) {
  const kinds = ['syncbridge', 'socket.io', 'ws reference'] as const;
  const runs = new Map<string, ConnectionResult[]>(kinds.map((k) => [k, []]));
  for (let rep = 1; rep <= reps; rep++)
    for (const k of kinds) runs.get(k)!.push(await idleConnections(k, n, settleMs));
  const figures: Figure[] = [];
  const ratios: RatioRow[] = [];
  const sys = (k: string) => ({ label: runs.get(k)![0]!.label, durability: 'n/a' });
  for (const k of kinds) {
    const rs = runs.get(k)!;
    figures.push(
      figure({
        name: `idle connections held (of ${formatNumber(n)} opened)`,
        system: sys(k).label,
        durability: 'n/a',
        unit: 'connections',
        summary: summarize(rs.map((r) => r.held)),
        target: k === 'syncbridge' ? { op: '>=', value: 50_000 } : undefined,
        details: {
          'seconds to open': median(rs.map((r) => r.openSeconds)),
          'server CPU µs per accept': median(rs.map((r) => r.acceptMicros)),
        },
      }),
      figure({
        name: `RSS per idle connection, ${formatNumber(n)} open`,
        system: sys(k).label,
        durability: 'n/a',
        unit: 'KB',
        summary: summarize(rs.map((r) => r.kbPerConnection)),
        target: k === 'syncbridge' ? { op: '<=', value: 15 } : undefined,
        details: {
          'RSS before MiB': median(rs.map((r) => r.rssBeforeMiB)),
          'RSS after MiB': median(rs.map((r) => r.rssAfterMiB)),
        },
      }),
    );
  }
  const sb = runs.get('syncbridge')!;
  for (const k of kinds.slice(1)) {
    const p = runs.get(k)!;
    ratios.push(
      ratio(
        'idle connections: RSS per connection (lower is better)',
        sys('syncbridge'),
        sys(k),
        sb.map((r, i) => r.kbPerConnection / p[i]!.kbPerConnection),
      ),
      ratio(
        'idle connections: server CPU per accept (lower is better)',
        sys('syncbridge'),
        sys(k),
        sb.map((r, i) => r.acceptMicros / p[i]!.acceptMicros),
      ),
    );
  }
  return { figures, ratios };
}

// ---------------------------------------------------------------------------------------------------
// Reconnect storm

interface StormClient {
  last: number;
  lost: number;
  repeated: number;
}

interface StormResult {
  label: string;
  clients: number;
  caughtUpSeconds: number;
  fromStopSeconds: number;
  lost: number;
  repeated: number;
  delivered: number;
  notRecovered: number;
  head: number;
  /** Seconds from the server being back (or the drop) to the last client's new subscription, if known. */
  resubscribedSeconds?: number;
  /** From the server being back to all caught up: its CPU, its run-queue wait, this process's CPU (% of a core). */
  serverCpuPct?: number;
  serverWaitPct?: number;
  loadgenCpuPct?: number;
  /** Seconds the server took to stop, then to start again (a restart only). */
  stopSeconds?: number;
}

function track(c: StormClient, seq: number): void {
  if (seq <= c.last) c.repeated += 1;
  else {
    if (seq > c.last + 1) c.lost += seq - c.last - 1;
    c.last = seq;
  }
}

async function waitAll(clients: StormClient[], head: () => number, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const h = head();
    if (clients.every((c) => c.last >= h)) return true;
    await sleep(20);
  }
  return false;
}

const STORM_RATE = 5;
const STORM_BURST = 20;

async function syncbridgeStorm(n: number, cpuProf: string | null): Promise<StormResult> {
  const server = await syncbridgeServer('sqlite', cpuProf);
  const clients: StormClient[] = Array.from({ length: n }, () => ({ last: 0, lost: 0, repeated: 0 }));
  let head = 0;
  let delivered = 0;
  let closing = false;
  const tokens = await mapLimit(n, 50, (i) => server.token(`storm-${i}`));
  const sockets: (WebSocket | null)[] = new Array(n).fill(null);
  /** When each client subscribed again after the restart (performance.now()). */
  const resubscribedAt: number[] = [];
  /** How the server's sockets closed, by close code (1001: told to go away; 1006: cut). */
  const closeCodes = new Map<number, number>();
  /** Connects client i and subscribes from its cursor; on a close, tries again after a back-off. */
  const connect = async (i: number, first: boolean): Promise<void> => {
    const c = clients[i]!;
    for (let attempt = 0; !closing; attempt++) {
      try {
        const ws = await openSocket(syncbridgeUrl(server.wsUrl, tokens[i]!), {
          localAddress: sourceAddress(i),
          welcome: true,
        });
        // One handler from the start: backlog events may arrive in the same read as `subscribed`.
        const subscribed = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no reply to subscribe within 30 s')), 30_000);
          ws.on('message', (data: Buffer) => {
            const m = JSON.parse(data.toString()) as { type: string; seq?: number; cursor?: number };
            if (m.type === 'event') {
              delivered += 1;
              track(c, m.seq!);
            } else if (m.type === 'subscribed') {
              clearTimeout(timer);
              if (first) c.last = m.cursor!;
              resolve();
            } else if (m.type === 'error' || m.type === 'reset') {
              clearTimeout(timer);
              reject(new Error(`subscribe: ${data.toString().slice(0, 200)}`));
            }
          });
        });
        ws.send(
          JSON.stringify({
            type: 'subscribe',
            rid: 1,
            channel: 'events:bench',
            ...(first ? {} : { since: c.last }),
          }),
        );
        await subscribed;
        ws.once('close', (code: number) => {
          sockets[i] = null;
          closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
          if (!closing) setTimeout(() => void connect(i, false), backoffDelay(0));
        });
        sockets[i] = ws;
        if (!first) {
          lastResubscribed = performance.now();
          resubscribedAt.push(lastResubscribed);
        }
        return;
      } catch (err) {
        if (first) throw err;
        retries += 1;
        lastRetryError = (err as Error).message;
        await sleep(backoffDelay(attempt + 1));
      }
    }
  };
  let retries = 0;
  let lastRetryError = '';
  let lastResubscribed = 0;
  await mapLimit(n, 100, (i) => connect(i, true));
  progress(`${server.label}: ${n} clients subscribed, cursor ${clients[0]!.last}`);
  // The writer: publishes at STORM_RATE/s; after a restart, reconnects at once and publishes a burst.
  let writer: RequestClient | null = null;
  let writing = true;
  const publish = async () => {
    if (writer!.ws.readyState !== WebSocket.OPEN) throw new Error('writer disconnected');
    const reply = await writer!.request({
      type: 'publish',
      event: { type: 'bench', payload: payload(performance.now(), 0) },
    });
    if (reply.type !== 'ok') throw new Error(`publish: ${JSON.stringify(reply)}`);
    head = Math.max(head, reply.seq as number);
  };
  const writerLoop = (async () => {
    while (writing) {
      try {
        writer ??= await RequestClient.connect(server.wsUrl, await server.token('writer'), sourceAddress(0));
        await publish();
      } catch {
        writer?.close();
        writer = null;
        await sleep(50);
        continue;
      }
      await sleep(1000 / STORM_RATE);
    }
  })();
  await sleep(3000);
  if (!(await waitAll(clients, () => head, 30_000)))
    throw new Error('syncbridge storm: clients not live before the restart');
  const tStop = performance.now();
  progress(`${server.label}: all live at seq ${head}; restarting the server`);
  const oldPid = server.pid;
  const exited = (async () => {
    while (existsSync(`/proc/${oldPid}`)) await sleep(5);
    return performance.now();
  })();
  await server.restart();
  const tReady = performance.now();
  const stormCpu = new CpuWindow(server.pid);
  const tExited = await exited;
  progress(
    `${server.label}: back after ${formatNumber((tReady - tStop) / 1000)} s ` +
      `(stopping took ${formatNumber((tExited - tStop) / 1000)} s)`,
  );
  // A burst right after the restart, so that every cursor is behind when its client comes back.
  let burstHead = 0;
  for (let b = 0; b < STORM_BURST; ) {
    try {
      writer ??= await RequestClient.connect(server.wsUrl, await server.token('writer'), sourceAddress(0));
      await publish();
      b += 1;
    } catch {
      writer?.close();
      writer = null;
      await sleep(50);
    }
  }
  burstHead = head;
  progress(`${server.label}: burst written, head ${burstHead}`);
  const caughtUp = await waitAll(clients, () => burstHead, 90_000);
  const used = stormCpu.read();
  const pct = (micros: number) => micros / used.seconds / 1e4;
  progress(
    `${server.label}: until all caught up: server CPU ${formatNumber(pct(used.serverMicros))}% of a core ` +
      `(waited for a CPU ${formatNumber(pct(used.serverRunQueueWaitMicros))}%), ` +
      `load generator ${formatNumber(pct(used.loadgenMicros))}%, load average ${loadavg()[0]!.toFixed(2)}`,
  );
  const after = resubscribedAt.map((t) => (t - tReady) / 1000).sort((a, b) => a - b);
  progress(
    `${server.label}: re-subscribed after the server was back: ${after.length} clients, ` +
      `p50 ${formatNumber(percentileSorted(after, 50))} s, p90 ${formatNumber(percentileSorted(after, 90))} s, ` +
      `p99 ${formatNumber(percentileSorted(after, 99))} s, ` +
      `${after.filter((t) => t < 0).length} while it was starting; closes by code ${JSON.stringify(Object.fromEntries(closeCodes))}`,
  );
  progress(
    `${server.label}: last client re-subscribed ${formatNumber((lastResubscribed - tReady) / 1000)} s after the server was back; ` +
      `${retries} reconnection attempts failed (last: ${lastRetryError})`,
  );
  if (!caughtUp) {
    const behind = clients.filter((c) => c.last < burstHead);
    progress(
      `${server.label}: NOT caught up: ${behind.length} behind (lowest cursor ${Math.min(...behind.map((c) => c.last))}), ` +
        `${sockets.filter((x) => x !== null).length} connected`,
    );
  }
  const tCaught = performance.now();
  writing = false;
  await writerLoop;
  const final = head;
  await waitAll(clients, () => final, 30_000);
  closing = true;
  const result: StormResult = {
    label: server.label,
    clients: n,
    caughtUpSeconds: caughtUp ? (tCaught - tReady) / 1000 : Number.POSITIVE_INFINITY,
    fromStopSeconds: caughtUp ? (tCaught - tStop) / 1000 : Number.POSITIVE_INFINITY,
    lost: clients.reduce((s, c) => s + c.lost + Math.max(0, final - c.last), 0),
    repeated: clients.reduce((s, c) => s + c.repeated, 0),
    delivered,
    notRecovered: 0,
    head: final,
    resubscribedSeconds: (lastResubscribed - tReady) / 1000,
    serverCpuPct: pct(used.serverMicros),
    serverWaitPct: pct(used.serverRunQueueWaitMicros),
    loadgenCpuPct: pct(used.loadgenMicros),
    stopSeconds: (tExited - tStop) / 1000,
  };
  writer?.close();
  terminateAll(sockets.filter((s): s is WebSocket => s !== null));
  await server.stop();
  return result;
}

async function socketioStorm(n: number): Promise<StormResult> {
  const server = await socketioServer(true);
  const clients: StormClient[] = Array.from({ length: n }, () => ({ last: 0, lost: 0, repeated: 0 }));
  let delivered = 0;
  let notRecovered = 0;
  let reconnected = 0;
  const sockets = await mapLimit(n, 100, async (i) => {
    const s = await openSocketio(server.wsUrl, i);
    await joinRoom(s, 'storm');
    const c = clients[i]!;
    s.on('m', (p: { n: number }) => {
      delivered += 1;
      track(c, p.n);
    });
    s.on('connect', () => {
      reconnected += 1;
      if (!s.recovered) {
        notRecovered += 1;
        s.emit('join', 'storm', () => undefined);
      }
    });
    return s;
  });
  const writer = await openSocketio(server.wsUrl, 0);
  let seq = 0;
  const publish = () =>
    new Promise<void>((resolve) => {
      // An ack is lost when the connection drops under it: give up waiting after 5 s.
      writer
        .timeout(5000)
        .emit('pub', 'storm', payload(performance.now(), 0), (err: Error | null, n: number) => {
          if (!err) seq = Math.max(seq, n);
          resolve();
        });
    });
  // Clients start at the head: the first event each one sees must be seq 1.
  let writing = true;
  const writerLoop = (async () => {
    while (writing) {
      if (writer.connected) await publish();
      await sleep(1000 / STORM_RATE);
    }
  })();
  await sleep(3000);
  if (!(await waitAll(clients, () => seq, 30_000)))
    throw new Error('socket.io storm: clients not live before the drop');
  const tStop = performance.now();
  process.kill(server.pid, 'SIGUSR2');
  const tReady = performance.now();
  while (!writer.connected) await sleep(10);
  for (let b = 0; b < STORM_BURST; b++) await publish();
  const burstHead = seq;
  const caughtUp = await waitAll(clients, () => burstHead, 60_000);
  const tCaught = performance.now();
  writing = false;
  await writerLoop;
  const final = seq;
  await waitAll(clients, () => final, 30_000);
  const result: StormResult = {
    label: server.label,
    clients: n,
    caughtUpSeconds: caughtUp ? (tCaught - tReady) / 1000 : Number.POSITIVE_INFINITY,
    fromStopSeconds: caughtUp ? (tCaught - tStop) / 1000 : Number.POSITIVE_INFINITY,
    lost: clients.reduce((s, c) => s + c.lost + Math.max(0, final - c.last), 0),
    repeated: clients.reduce((s, c) => s + c.repeated, 0),
    delivered,
    notRecovered,
    head: final,
  };
  progress(`socket.io: ${reconnected} reconnections`);
  for (const s of [writer, ...sockets]) s.disconnect();
  await server.stop();
  return result;
}

async function storm(n: number, cpuProf: boolean) {
  const results: StormResult[] = [];
  const report = (r: StormResult) =>
    progress(
      `${r.label}: all ${n} caught up ${formatNumber(r.caughtUpSeconds)} s after the server was back ` +
        `(${formatNumber(r.fromStopSeconds)} s after it stopped); lost ${r.lost}, repeated ${r.repeated}, ` +
        `${r.delivered} events delivered, head ${r.head}` +
        (r.notRecovered ? `, ${r.notRecovered} sessions not recovered` : ''),
    );
  results.push(await syncbridgeStorm(n, cpuProf ? 'storm' : null));
  report(results[0]!);
  results.push(await socketioStorm(n));
  report(results[1]!);
  const figures: Figure[] = [];
  for (const r of results) {
    const isSb = r.label.startsWith('syncbridge');
    figures.push(
      figure({
        name: `reconnect storm, ${formatNumber(n)} clients: seconds until all caught up`,
        system: isSb ? `${r.label} (restart)` : `${r.label} (connections dropped, server kept)`,
        durability: isSb ? 'SQLite synchronous=FULL (WAL)' : 'none (in memory)',
        unit: 's',
        summary: summarize([r.caughtUpSeconds]),
        target: isSb ? { op: '<=', value: 10 } : undefined,
        details: {
          'from the stop s': r.fromStopSeconds,
          'events lost': r.lost,
          'events repeated': r.repeated,
          'sessions not recovered': r.notRecovered,
          ...(r.stopSeconds === undefined
            ? {}
            : {
                'server stop s': r.stopSeconds,
                'last client re-subscribed s': r.resubscribedSeconds ?? Number.NaN,
                'server CPU % until caught up': r.serverCpuPct ?? Number.NaN,
                'server run-queue wait %': r.serverWaitPct ?? Number.NaN,
                'load generator CPU %': r.loadgenCpuPct ?? Number.NaN,
              }),
          'events delivered': r.delivered,
        },
      }),
      figure({
        name: `reconnect storm, ${formatNumber(n)} clients: events lost + repeated`,
        system: r.label,
        durability: isSb ? 'SQLite synchronous=FULL (WAL)' : 'none (in memory)',
        unit: 'events',
        summary: summarize([r.lost + r.repeated]),
        target: isSb ? { op: '<=', value: 0 } : undefined,
      }),
    );
  }
  const ratios = [
    ratio(
      'reconnect storm: seconds until caught up (lower is better)',
      { label: results[0]!.label },
      { label: results[1]!.label },
      [results[0]!.caughtUpSeconds / results[1]!.caughtUpSeconds],
    ),
  ];
  return { figures, ratios };
}

// ---------------------------------------------------------------------------------------------------
// Ratios and main

interface RatioRow {
  figure: string;
  syncbridge: string;
  peer: string;
  ratios: number[];
  /** Met when the median is at least this. */
  target?: number;
  /** Met when the median is at most this (figures where lower is better). */
  atMost?: number;
}

function ratio(
  name: string,
  sb: { label: string },
  peer: { label: string },
  values: number[],
  target?: number,
  atMost?: number,
): RatioRow {
  return { figure: name, syncbridge: sb.label, peer: peer.label, ratios: values, target, atMost };
}

function ratioTarget(r: RatioRow): { text: string; met: boolean } | null {
  const m = median(r.ratios);
  if (r.target !== undefined) return { text: `≥ ${formatNumber(r.target)}×`, met: m >= r.target };
  if (r.atMost !== undefined) return { text: `≤ ${formatNumber(r.atMost)}×`, met: m <= r.atMost };
  return null;
}

function printRatios(rows: RatioRow[], out: (line: string) => void = console.log): void {
  const table = [
    ['figure', 'syncbridge', 'peer', 'ratio (median)', 'per repetition', 'target', 'met'],
    ...rows.map((r) => {
      const m = median(r.ratios);
      return [
        r.figure,
        r.syncbridge,
        r.peer,
        `${formatNumber(m)}×`,
        r.ratios.map((v) => formatNumber(v)).join(' '),
        ratioTarget(r)?.text ?? '',
        ratioTarget(r) === null ? '' : ratioTarget(r)!.met ? 'yes' : 'NO',
      ];
    }),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) out(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      only: { type: 'string' },
      subscribers: { type: 'string' },
      writers: { type: 'string' },
      'write-tenants': { type: 'string' },
      'write-variants': { type: 'string' },
      connections: { type: 'string' },
      'connection-reps': { type: 'string' },
      'storm-clients': { type: 'string' },
      'latency-rate': { type: 'string' },
    },
    strict: true,
  });
  if (values.window === undefined && !values.quick) values.window = '5';
  const options = benchOptions(values, ['sqlite']);
  const only = (values.only ?? 'fanout,writes,connections,storm').split(',').map((s) => s.trim());
  const sizes = (values.subscribers ?? '1000,10000').split(',').map(Number);
  const writerCounts = (values.writers ?? '1,50').split(',').map(Number);
  writeTenants = Math.max(1, Math.round(numberFlag(values, 'write-tenants', 1)));
  const writeVariants = parseVariants(values['write-variants']);
  const nConnections = Math.round(numberFlag(values, 'connections', options.quick ? 10_000 : 19_000));
  const connectionReps = Math.round(numberFlag(values, 'connection-reps', 1));
  latencyDeliveriesPerSecond = numberFlag(values, 'latency-rate', latencyDeliveriesPerSecond);
  const stormClients = Math.round(numberFlag(values, 'storm-clients', 10_000));
  const load = loadAverage1m();
  process.stdout.write(
    `peers: ${only.join(', ')}, ${JSON.stringify(options)} (load average ${load.toFixed(2)})\n`,
  );
  const figures: Figure[] = [];
  const ratios: RatioRow[] = [];
  const loads: string[] = [];
  const add = (name: string, r: { figures: Figure[]; ratios: RatioRow[] }) => {
    figures.push(...r.figures);
    ratios.push(...r.ratios);
    saveSection({
      bench: 'peers',
      date: new Date().toISOString(),
      command: commandLine(),
      machine: machine(load),
      options,
      figures,
      notes: [
        ...loads,
        ...ratios.map(
          (x) =>
            `ratio ${x.figure} | ${x.syncbridge} ÷ ${x.peer} | ${median(x.ratios)} | ${x.ratios.join(' ')}`,
        ),
      ],
    });
    progress(`${name} done`);
  };
  const section = async (name: string, run: () => Promise<{ figures: Figure[]; ratios: RatioRow[] }>) => {
    if (!only.includes(name)) return;
    const l = `load average at the start of ${name}: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`;
    loads.push(l);
    process.stdout.write(`\n=== ${name} (${l}) ===\n`);
    add(name, await run());
  };
  await section('fanout', () => fanout(options, sizes, options.cpuProf));
  await section('writes', () => writes(options, writerCounts, options.cpuProf, writeVariants));
  await section('connections', () => connections(nConnections, connectionReps, options.quick ? 1000 : 3000));
  await section('storm', () => storm(stormClients, options.cpuProf));
  for (const dir of profiles) {
    const file = newestProfile(dir);
    if (file) console.log(formatProfile(summarizeProfile(file, 25)));
  }
  console.log('');
  printTable(figures);
  console.log('\n=== syncbridge ÷ peer, same run ===');
  printRatios(ratios);
  for (const l of loads) console.log(l);
}

/**
 * Re-runs this script with room for tens of thousands of sockets: the open-file limit raised to the hard
 * limit, and a larger heap (many thousands of Socket.IO clients live in this process).
 */
function ensureLimits(): boolean {
  if (process.env.BENCH_PEERS_LIMITS_RAISED) return true;
  const result = spawnSync(
    '/bin/sh',
    [
      '-c',
      'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
      process.execPath,
      '--max-old-space-size=8192',
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, BENCH_PEERS_LIMITS_RAISED: '1' } },
  );
  process.exit(result.status ?? 1);
}

// ws on both sides without its optional native helpers, as syncbridge itself runs (fair to every system).
process.env.WS_NO_BUFFER_UTIL = '1';
process.env.WS_NO_UTF_8_VALIDATE = '1';
if (ensureLimits()) runMain(main, 1500);
