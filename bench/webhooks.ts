/**
 * Outbound webhook delivery, measured from outside the server:
 *
 * 1. Throughput: signed deliveries per second to one local receiver, every attempt recorded. Each
 *    repetition queues `--events` deliveries behind a paused endpoint, resumes it, and times the drain
 *    until the receiver has every event (and the server's stats count every delivery as completed).
 * 2. Isolation: the delivery rate to 99 healthy endpoints while a 100th takes 10 s per request, beside
 *    the same load with the 100th healthy too, measured alternately on the same server.
 *
 *   node --import tsx bench/webhooks.ts [--quick] [--store sqlite|postgres|all] [--reps 3]
 *                                       [--events 20000] [--fanout-events 200] [--concurrency 64]
 *
 * The receiver runs in this (load-generator) process and checks the hex signature of every 50th request.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
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
import { type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { summarize } from './lib/stats.ts';

const ADMIN_KEY = 'bench-webhooks-admin-key-0123456789';
const SECRET = 'bench-webhook-secret-0001';
const SLOW_MS = 10_000;

/** One HTTP server for every endpoint (`/hook/<n>`): counts distinct webhook-ids per endpoint. */
class Receivers {
  readonly seen = new Map<string, Set<string>>();
  badSignatures = 0;
  private server!: Server;
  url = '';
  slowPath: string | null = null;
  private n = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        if (path === this.slowPath) {
          setTimeout(() => res.writeHead(204).end(), SLOW_MS).unref();
          return;
        }
        if (++this.n % 50 === 0) {
          const hex = createHmac('sha256', SECRET).update(Buffer.concat(chunks)).digest('hex');
          if (req.headers['x-webhook-signature'] !== hex) this.badSignatures += 1;
        }
        let ids = this.seen.get(path);
        if (!ids) {
          ids = new Set();
          this.seen.set(path, ids);
        }
        ids.add(String(req.headers['webhook-id']));
        res.writeHead(204).end();
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    onCleanup({ run: () => this.close(), runSync: () => this.server.closeAllConnections() });
  }

  count(paths: readonly string[]): number {
    let n = 0;
    for (const p of paths) n += this.seen.get(p)?.size ?? 0;
    return n;
  }

  reset(): void {
    this.seen.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

type Json = Record<string, unknown> & { id?: string };

function api(base: string, tenant: string) {
  return async (method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        'x-api-key': ADMIN_KEY,
        'x-tenant': tenant,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as Json;
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}

async function publishMany(call: ReturnType<typeof api>, count: number, type: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await call('POST', '/v1/events', { type, payload: { i, note: 'benchmark event' } });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

async function waitFor(check: () => boolean, what: string, ms = 300_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function measure(
  store: StoreKind,
  options: ReturnType<typeof benchOptions>,
  events: number,
  fanoutEvents: number,
  concurrency: number,
): Promise<Figure[]> {
  const receivers = new Receivers();
  await receivers.start();
  const profile = options.cpuProf ? profileDir(`webhooks-${store}`) : null;
  const server = await startSyncbridge({
    store,
    nodeFlags: profile ? cpuProfFlags(profile) : [],
    env: {
      SYNCBRIDGE_ADMIN_KEY: ADMIN_KEY,
      SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
      SYNCBRIDGE_LOG_LEVEL: 'error',
    },
  });
  const base = server.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  const label = store === 'sqlite' ? 'syncbridge/sqlite FULL' : 'syncbridge/postgres';
  const durability = store === 'sqlite' ? 'synchronous=FULL' : server.durability;
  process.stdout.write(`${label}: ${server.durability}\n`);
  const figures: Figure[] = [];

  // 1. Throughput to one endpoint.
  const one = api(base, 'throughput');
  const hook = await one('POST', '/v1/webhooks', {
    name: 'bench',
    url: `${receivers.url}/hook/one`,
    eventTypes: ['tick'],
    secret: SECRET,
    maxConcurrency: concurrency,
    status: 'paused',
  });
  const rates: number[] = [];
  const cpuPer: number[] = [];
  let queued = 0;
  for (let rep = 0; rep <= options.reps; rep++) {
    const n = rep === 0 ? Math.min(events, 2000) : events; // rep 0 warms up
    await publishMany(one, n, 'tick');
    queued += n;
    receivers.reset();
    const cpu = new CpuWindow(server.pid);
    await one('PUT', `/v1/webhooks/${hook.id}/status`, { status: 'active' });
    await waitFor(() => receivers.count(['/hook/one']) >= n, 'the throughput drain');
    const used = cpu.read();
    await one('PUT', `/v1/webhooks/${hook.id}/status`, { status: 'paused' });
    if (rep === 0) continue;
    rates.push(n / used.seconds);
    cpuPer.push(used.serverMicros / n);
    progress(
      `rep ${rep}: ${formatNumber(n / used.seconds)} deliveries/s, ${formatNumber(used.serverMicros / n)} µs server CPU each`,
    );
  }
  const stats = ((await one('GET', '/v1/stats?days=1')) as { stats: { completedEvents: number } }).stats;
  if (stats.completedEvents !== queued) {
    throw new Error(`stats count ${stats.completedEvents} completed deliveries, ${queued} were made`);
  }
  if (receivers.badSignatures > 0) throw new Error(`${receivers.badSignatures} signatures did not verify`);
  figures.push(
    figure({
      name: `signed deliveries/s to one local receiver (${concurrency} in flight), every attempt recorded`,
      system: label,
      durability,
      unit: 'deliveries/s',
      summary: summarize(rates),
      ...(store === 'sqlite' ? { target: { op: '>=' as const, value: 5000 } } : {}),
      details: { 'server CPU µs/delivery': summarize(cpuPer).median },
    }),
  );

  // 2. 99 healthy endpoints, with the 100th healthy or taking 10 s per request.
  const fan = api(base, 'isolation');
  const paths = Array.from({ length: 100 }, (_, i) => `/hook/fan-${i}`);
  const ids: string[] = [];
  for (const path of paths) {
    const created = await fan('POST', '/v1/webhooks', {
      name: path,
      url: `${receivers.url}${path}`,
      eventTypes: ['fan'],
      secret: SECRET,
      status: 'paused',
    });
    ids.push(String(created.id));
  }
  const healthy = paths.slice(0, 99);
  const perCase = new Map<string, number[]>([
    ['all healthy', []],
    ['one endpoint takes 10 s', []],
  ]);
  for (let rep = 0; rep <= options.reps; rep++) {
    for (const [name, rates] of perCase) {
      receivers.slowPath = name === 'all healthy' ? null : paths[99]!;
      await publishMany(fan, fanoutEvents, 'fan');
      receivers.reset();
      const started = performance.now();
      await Promise.all(ids.map((id) => fan('PUT', `/v1/webhooks/${id}/status`, { status: 'active' })));
      await waitFor(() => receivers.count(healthy) >= fanoutEvents * 99, 'the 99 healthy endpoints');
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(ids.map((id) => fan('PUT', `/v1/webhooks/${id}/status`, { status: 'paused' })));
      // Let the slow endpoint's requests run out before the next case; its backlog stays queued.
      if (receivers.slowPath)
        await fan('DELETE', `/v1/webhooks/${ids[99]}`).then(async () => {
          const again = await fan('POST', '/v1/webhooks', {
            name: 'slow',
            url: `${receivers.url}${paths[99]}`,
            eventTypes: ['fan'],
            secret: SECRET,
            status: 'paused',
          });
          ids[99] = String(again.id);
        });
      if (rep === 0) continue;
      rates.push((fanoutEvents * 99) / seconds);
      progress(
        `rep ${rep} ${name}: ${formatNumber((fanoutEvents * 99) / seconds)} deliveries/s to the 99 healthy`,
      );
    }
  }
  for (const [name, rates] of perCase) {
    figures.push(
      figure({
        name: `deliveries/s to 99 healthy endpoints, ${name}`,
        system: label,
        durability,
        unit: 'deliveries/s',
        summary: summarize(rates),
      }),
    );
  }
  await server.stop();
  await receivers.close();
  const profileFile = profile ? newestProfile(profile) : null;
  if (profileFile) console.log(formatProfile(summarizeProfile(profileFile, 30)));
  return figures;
}

export async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      ...COMMON_FLAGS,
      events: { type: 'string' },
      'fanout-events': { type: 'string' },
      concurrency: { type: 'string' },
    },
    strict: true,
  });
  const options = benchOptions(values, ['sqlite']);
  const events = Math.round(numberFlag(values, 'events', options.quick ? 5000 : 20_000));
  const fanoutEvents = Math.round(numberFlag(values, 'fanout-events', options.quick ? 50 : 200));
  const concurrency = Math.round(numberFlag(values, 'concurrency', 64));
  const load = loadAverage1m();
  process.stdout.write(
    `webhooks: ${JSON.stringify({ ...options, events, fanoutEvents, concurrency })} (load average ${load.toFixed(2)})\n`,
  );
  const figures: Figure[] = [];
  for (const store of options.stores)
    figures.push(...(await measure(store, options, events, fanoutEvents, concurrency)));
  console.log('');
  printTable(figures);
  saveSection({
    bench: 'webhooks',
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machine(load),
    options,
    figures,
    notes: [
      'Throughput: deliveries queued behind a paused endpoint, then drained; the window runs from resume to the last distinct webhook-id at the receiver.',
      `Isolation: ${fanoutEvents} events to 100 endpoints; the rate counts the 99 healthy ones only; the slow one answers after ${SLOW_MS / 1000} s.`,
      'The receiver runs in the load generator and verifies the hex signature of every 50th request.',
    ],
  });
}

runMain(main, 3600);
