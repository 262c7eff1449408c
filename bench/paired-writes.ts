/**
 * Two servers measured under the same conditions: this checkout's and another's (`--cli`, its
 * packages/server/src/cli/main.ts), both started at once, each with its own 50 writer connections, and
 * short windows alternating between them (A, B, A, B, …) so that a busy machine weighs on both alike.
 * Each writer keeps one single-put `mutate` in flight, as in bench/mutations.ts. Prints, per server, the
 * median over its windows of acknowledged mutations/s, server CPU µs per ack (all threads, and the
 * main thread's), and mutations per commit. `--other-env K=V` / `--other-node-flag F` start the other
 * side with an environment variable or node flag of its own (with `--cli` this checkout's own main.ts,
 * a setting is compared against the default).
 *
 *   node --import tsx bench/paired-writes.ts --cli /path/to/main/packages/server/src/cli/main.ts
 *                                            [--store sqlite|postgres] [--windows 6] [--seconds 3]
 *                                            [--other-env K=V]... [--other-node-flag F]...
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { mapLimit, RequestClient, sourceAddress, terminateAll } from './lib/clients.ts';
import { runMain, sleep } from './lib/lifecycle.ts';
import { cpuMicros, loadAverage1m, mainThreadMicros } from './lib/proc.ts';
import { type StoreKind, type SyncbridgeUnderTest, startSyncbridge } from './lib/server-process.ts';

const WRITERS = 50;
const RECORDS_PER_WRITER = 100;

interface Side {
  name: string;
  server: SyncbridgeUnderTest;
  clients: RequestClient[];
  windows: { acksPerSecond: number; cpuPerAck: number; mainPerAck: number; perCommit: number }[];
}

async function commitTotals(wsUrl: string): Promise<{ commits: number; writes: number }> {
  const text = await (
    await fetch(wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '/metrics'))
  ).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    commits: read('syncbridge_commit_batch_size_count'),
    writes: read('syncbridge_commit_batch_size_sum'),
  };
}

/** Runs the side's writers for `seconds` (after half a second to reach their pace); counts what it measured. */
async function window(side: Side, seconds: number, record: boolean): Promise<void> {
  const runId = randomBytes(4).toString('hex');
  const data = { sku: 'SKU-000000', qty: 0, location: 'warehouse-1', note: 'x'.repeat(40) };
  let stop = false;
  let measuring = false;
  let acked = 0;
  let n = 0;
  const loops = side.clients.map(async (client, w) => {
    while (!stop) {
      const i = n++;
      const reply = await client.request({
        type: 'mutate',
        mutations: [
          {
            mid: `${runId}-${i}`,
            collection: 'bench',
            id: `w${w}-${i % RECORDS_PER_WRITER}`,
            op: 'put',
            data,
          },
        ],
      });
      const ok = reply.type === 'results' && (reply.results as { status: string }[])[0]?.status === 'applied';
      if (measuring && ok) acked += 1;
    }
  });
  await sleep(500);
  const totals0 = await commitTotals(side.server.wsUrl);
  const cpu0 = cpuMicros(side.server.pid);
  const main0 = mainThreadMicros(side.server.pid);
  const t0 = performance.now();
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const cpu = cpuMicros(side.server.pid) - cpu0;
  const main = mainThreadMicros(side.server.pid) - main0;
  const elapsed = (performance.now() - t0) / 1000;
  const counted = acked;
  const totals1 = await commitTotals(side.server.wsUrl);
  stop = true;
  await Promise.all(loops);
  if (!record) return;
  side.windows.push({
    acksPerSecond: counted / elapsed,
    cpuPerAck: cpu / counted,
    mainPerAck: main / counted,
    perCommit: (totals1.writes - totals0.writes) / Math.max(1, totals1.commits - totals0.commits),
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      cli: { type: 'string' },
      store: { type: 'string' },
      windows: { type: 'string' },
      seconds: { type: 'string' },
      'other-env': { type: 'string', multiple: true },
      'other-node-flag': { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (!values.cli) throw new Error('--cli <other checkout>/packages/server/src/cli/main.ts');
  const store = (values.store ?? 'sqlite') as StoreKind;
  const windows = Number(values.windows ?? 6);
  const seconds = Number(values.seconds ?? 3);
  const otherEnv = Object.fromEntries(
    (values['other-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const otherFlags = values['other-node-flag'] ?? [];
  const start = async (name: string, cli?: string): Promise<Side> => {
    const other = cli ? { cli, env: otherEnv, nodeFlags: otherFlags } : {};
    const server = await startSyncbridge({ store, synchronous: 'FULL', ...other });
    const clients = await mapLimit(WRITERS, 10, async (i) =>
      RequestClient.connect(server.wsUrl, await server.token(`writer-${i}`), sourceAddress(i)),
    );
    return { name, server, clients, windows: [] };
  };
  const settings = [...otherFlags, ...Object.keys(otherEnv).map((k) => `${k}=${otherEnv[k]}`)].join(' ');
  const sides = [
    await start(`other (${values.cli}${settings ? ` ${settings}` : ''})`, values.cli),
    await start('this checkout'),
  ];
  const loads = [loadAverage1m()];
  for (const side of sides) await window(side, 3, false); // warm-up: JIT, caches, records created
  for (let i = 0; i < windows; i++) for (const side of sides) await window(side, seconds, true);
  loads.push(loadAverage1m());
  for (const side of sides) {
    terminateAll(side.clients);
    await side.server.stop();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `paired-writes: ${store}, ${WRITERS} writers, ${windows} × ${seconds} s each, load ${loads.join(' → ')}`,
  );
  for (const side of sides) {
    const w = side.windows;
    console.log(
      JSON.stringify({
        server: side.name,
        'acks/s': Math.round(median(w.map((x) => x.acksPerSecond))),
        'CPU µs/ack': Number(median(w.map((x) => x.cpuPerAck)).toFixed(1)),
        'main thread µs/ack': Number(median(w.map((x) => x.mainPerAck)).toFixed(1)),
        'mutations/commit': Number(median(w.map((x) => x.perCommit)).toFixed(1)),
        windows: w
          .map(
            (x) => `${Math.round(x.acksPerSecond)}/s ${x.cpuPerAck.toFixed(0)}/${x.mainPerAck.toFixed(0)}µs`,
          )
          .join(', '),
      }),
    );
  }
  const [a, b] = sides as [Side, Side];
  const ratios = (f: (x: Side['windows'][number]) => number) =>
    Number(median(b.windows.map((x, i) => f(x) / f(a.windows[i]!))).toFixed(3));
  console.log(
    JSON.stringify({
      'this ÷ other, median of window pairs': {
        'acks/s': ratios((x) => x.acksPerSecond),
        'CPU µs/ack': ratios((x) => x.cpuPerAck),
        'main thread µs/ack': ratios((x) => x.mainPerAck),
      },
    }),
  );
}

runMain(main, 900);
