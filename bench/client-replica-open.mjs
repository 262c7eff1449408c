/**
 * The measured child of `bench/client-replica.ts --only open`: what a Node app runs, in plain JavaScript
 * on plain `node` (no tsx), with `@syncbridge/client` from its build (dist; run `npm run build` first).
 * Opens the FileStorage at argv[2] with no server and prints, as one JSON line, the wall and CPU time from
 * `new SyncClient` to the first render (`source: 'storage'`) and to `whenLoaded()`.
 *
 *   node bench/client-replica-open.mjs FILE [FIRST_PAGE]
 */
import { FileStorage, SyncClient } from '@syncbridge/client';

const [path, firstPageArg] = process.argv.slice(2);
if (!path) throw new Error('usage: node bench/client-replica-open.mjs FILE [FIRST_PAGE]');
const firstPage = firstPageArg === undefined ? undefined : Number(firstPageArg);

const t0 = performance.now();
const cpu0 = process.cpuUsage();
const cpuMs = () => {
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000;
};
const client = new SyncClient({
  url: 'ws://127.0.0.1:9/v1/realtime',
  token: 'offline',
  replicaKey: 'bench-user',
  storage: new FileStorage(path),
  autoConnect: false,
  ...(firstPage === undefined ? {} : { replicaFirstPage: firstPage }),
});
let loaded;
const whenLoaded = client.whenLoaded().then(() => {
  loaded = { loadedMs: performance.now() - t0, loadedCpuMs: cpuMs() };
});
const first = await new Promise((resolve) => {
  const off = client.collection('items').subscribe((records, change) => {
    const result = {
      renderMs: performance.now() - t0,
      cpuMs: cpuMs(),
      count: records.length,
      source: change.source,
    };
    queueMicrotask(() => off());
    resolve(result);
  });
});
await whenLoaded;
const loadedCount = client.collection('items').list().length;
console.log(JSON.stringify({ ...first, ...loaded, loadedCount }));
await client.close();
