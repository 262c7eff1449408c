/**
 * Access rules: what they cost the server, side by side in one run on one server, alternating with and
 * without rules (A B A B …):
 *
 *   fan-out  record changes to `--subscribers` subscribers of one collection. Without rules every
 *            subscriber gets every change (`records:plain`); with a claims rule
 *            (`record.locationId in auth.claims.locations`, half the subscribers hold wh-1, half wh-2,
 *            changes alternate) each gets about half (`records:ruled`). Server CPU µs per delivery.
 *            Also a claims rule every subscriber passes (`records:allowed`): the rules' own cost at the
 *            same deliveries per change, apart from sending half as many frames per change. And the same
 *            half of the changes by a filtered channel without rules (`records:filtered?locationId=…`):
 *            the delivery pattern of the claims rule, without rules.
 *   writes   single-mutation `mutate`s, `--in-flight` outstanding, to a collection without rules and to
 *            one with a write rule of the same kind. Server CPU µs per acknowledged mutation.
 *
 *   node --import tsx bench/rules.ts [--store sqlite|postgres] [--subscribers 1000] [--changes 100]
 *                                    [--writes 2000] [--in-flight 16] [--reps 3] [--cpu-prof DIR]
 *
 * Every subscriber has all four subscriptions, so the two fan-outs differ only in the rule. A window sends its
 * changes and ends when every expected delivery arrived.
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
import { runMain } from './lib/lifecycle.ts';
import { CpuWindow, loadAverage1m } from './lib/proc.ts';
import { type StoreKind, startSyncbridge } from './lib/server-process.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    store: { type: 'string' },
    subscribers: { type: 'string' },
    changes: { type: 'string' },
    writes: { type: 'string' },
    'in-flight': { type: 'string' },
    reps: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const store = (values.store ?? 'sqlite') as StoreKind;
const subscribers = Number(values.subscribers ?? 1000);
const changes = Number(values.changes ?? 100);
const writes = Number(values.writes ?? 2000);
const inFlight = Number(values['in-flight'] ?? 16);
const reps = Number(values.reps ?? 3);
const READ_RULE = 'record.locationId in auth.claims.locations';
const PAYLOAD = 'x'.repeat(60);

async function main(): Promise<void> {
  const load = loadAverage1m();
  // --cpu-prof DIR: the server writes a V8 CPU profile there when it stops (node --cpu-prof).
  const profile = values['cpu-prof'];
  const server = await startSyncbridge({
    store,
    ...(profile ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profile}`] } : {}),
  });
  const http = server.wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  const admin = await server.token('admin', 'bench', { roles: ['admin'] });
  for (const [name, rules] of [
    ['ruled', { read: READ_RULE }],
    ['allowed', { read: "'wh-1' in auth.claims.locations || 'wh-2' in auth.claims.locations" }],
    ['guarded', { write: READ_RULE, create: 'next.locationId in auth.claims.locations' }],
  ] as const) {
    const res = await fetch(`${http}/v1/collections/${name}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules }),
    });
    if (!res.ok) throw new Error(`setting rules on ${name}: HTTP ${res.status} ${await res.text()}`);
  }

  // Subscribers: half wh-1, half wh-2, each on both collections.
  const counts = { plain: 0, ruled: 0, allowed: 0, filtered: 0 };
  const sockets: WebSocket[] = await mapLimit(subscribers, 50, async (i) => {
    const location = i % 2 ? 'wh-1' : 'wh-2';
    const token = await server.token(`s${i}`, 'bench', { claims: { locations: [location] } });
    const ws = await openSocket(syncbridgeUrl(server.wsUrl, token), {
      localAddress: sourceAddress(i),
      welcome: true,
    });
    let subscribed = 0;
    await new Promise<void>((resolve) => {
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        if (text.startsWith('{"type":"event"')) {
          if (text.includes('"channel":"records:plain"')) counts.plain += 1;
          else if (text.includes('"channel":"records:ruled"')) counts.ruled += 1;
          else if (text.includes('"channel":"records:allowed"')) counts.allowed += 1;
          else if (text.includes('"channel":"records:filtered?')) counts.filtered += 1;
        } else if (text.startsWith('{"type":"subscribed"') && ++subscribed === 4) resolve();
      });
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'records:plain', rid: 1 }));
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'records:ruled', rid: 2 }));
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'records:allowed', rid: 3 }));
      // The same half of the changes by a filtered channel, without rules: the same delivery pattern.
      ws.send(
        JSON.stringify({ type: 'subscribe', channel: `records:filtered?locationId=${location}`, rid: 4 }),
      );
    });
    return ws;
  });
  const writer = await RequestClient.connect(
    server.wsUrl,
    await server.token('writer', 'bench', { claims: { locations: ['wh-1', 'wh-2'] } }),
  );
  let mid = 0;
  const put = (collection: string, i: number, locationId: string) =>
    writer.request({
      type: 'mutate',
      mutations: [
        { mid: `m${++mid}`, collection, id: `r${i % 50}`, op: 'put', data: { locationId, i, p: PAYLOAD } },
      ],
    });

  /** Sends `changes` changes to a collection and waits for every delivery; server CPU µs per delivery. */
  async function fanout(collection: 'plain' | 'ruled' | 'allowed' | 'filtered'): Promise<number> {
    const half = collection === 'ruled' || collection === 'filtered';
    const expected = half ? changes * Math.floor(subscribers / 2) : changes * subscribers;
    const start = counts[collection];
    const cpu = new CpuWindow(server.pid);
    await mapLimit(changes, inFlight, (i) => put(collection, i, i % 2 ? 'wh-1' : 'wh-2'));
    while (counts[collection] - start < expected) await new Promise((r) => setTimeout(r, 5));
    const used = cpu.read();
    return used.serverMicros / (counts[collection] - start);
  }

  /** Sends `writes` single-mutation writes; server CPU µs per acknowledged mutation. */
  async function writePath(collection: 'plain_w' | 'guarded'): Promise<number> {
    const cpu = new CpuWindow(server.pid);
    const replies = await mapLimit(writes, inFlight, (i) => put(collection, i, 'wh-1'));
    const used = cpu.read();
    const applied = replies.filter(
      (r) => (r.results as { status: string }[])[0]?.status === 'applied',
    ).length;
    if (applied !== writes) throw new Error(`${collection}: ${applied} of ${writes} writes applied`);
    return used.serverMicros / applied;
  }

  const fan = {
    plain: [] as number[],
    ruled: [] as number[],
    allowed: [] as number[],
    filtered: [] as number[],
  };
  const wr = { plain_w: [] as number[], guarded: [] as number[] };
  for (let rep = 0; rep <= reps; rep++) {
    const a = await fanout('plain');
    const b = await fanout('ruled');
    const e = await fanout('allowed');
    const f = await fanout('filtered');
    const c = await writePath('plain_w');
    const d = await writePath('guarded');
    if (rep === 0) continue; // warm-up
    fan.plain.push(a);
    fan.ruled.push(b);
    fan.allowed.push(e);
    fan.filtered.push(f);
    wr.plain_w.push(c);
    wr.guarded.push(d);
    process.stderr.write(
      `rep ${rep}: fan-out ${a.toFixed(2)} / ${b.toFixed(2)} / ${e.toFixed(2)} / ${f.toFixed(2)} µs per delivery; writes ${c.toFixed(0)} / ${d.toFixed(0)} µs per mutation\n`,
    );
  }
  const ratio = (xs: number[], ys: number[]) => median(ys.map((y, k) => y / xs[k]!));
  const out = [
    `access rules, ${server.label} (${server.durability}), ${subscribers} subscribers, load ${load.toFixed(1)} at start, ${reps} reps`,
    `fan-out  no rules ${median(fan.plain).toFixed(2)} µs CPU/delivery; claims rule ${median(fan.ruled).toFixed(2)} µs CPU/delivery; ratio ${ratio(fan.plain, fan.ruled).toFixed(2)}x (target <= 1.5x)`,
    `fan-out  rule every subscriber passes ${median(fan.allowed).toFixed(2)} µs CPU/delivery; ratio ${ratio(fan.plain, fan.allowed).toFixed(2)}x`,
    `fan-out  the same half by a filtered channel, no rules ${median(fan.filtered).toFixed(2)} µs CPU/delivery; ratio ${ratio(fan.plain, fan.filtered).toFixed(2)}x; claims rule vs filtered ${ratio(fan.filtered, fan.ruled).toFixed(2)}x`,
    `writes   no rules ${median(wr.plain_w).toFixed(0)} µs CPU/mutation; write rule ${median(wr.guarded).toFixed(0)} µs CPU/mutation; ratio ${ratio(wr.plain_w, wr.guarded).toFixed(2)}x (target <= 1.2x)`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  terminateAll([...sockets, writer]);
  await server.stop();
}

runMain(main, 1800);
