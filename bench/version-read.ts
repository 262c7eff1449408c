/**
 * One version of a record with a long history: `GET /v1/records/docs/d1/versions/{v}` and
 * `?version=N` against an in-process server (test helpers), after `--versions` (100) versions of d1
 * interleaved with four other records' writes, optionally compacted (`--compacted`). Reports wall time
 * and the process's CPU (client and server share it) per request, for an old, a middle and the last
 * version, over `--requests` (400) sequential requests each after 50 warm-up requests.
 *
 *   node --import tsx bench/version-read.ts [--store sqlite|postgres|all] [--versions 100]
 *                                           [--requests 400] [--compacted]
 */
import { parseArgs } from 'node:util';
import { type StoreKind, startTestServer, storeKinds } from '../packages/server/test/helpers/server.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'all' },
    versions: { type: 'string', default: '100' },
    requests: { type: 'string', default: '400' },
    compacted: { type: 'boolean', default: false },
  },
});
const versions = Number(values.versions);
const requests = Number(values.requests);
const kinds: StoreKind[] = values.store === 'all' ? await storeKinds() : [values.store as StoreKind];

for (const kind of kinds) {
  const srv = await startTestServer(kind);
  try {
    const token = await srv.token('vb', 'u');
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let from = 1; from <= versions; from += 100) {
      const mutations: unknown[] = [];
      for (let n = from; n < from + 100 && n <= versions; n++) {
        mutations.push({
          mid: `d${n}`,
          collection: 'docs',
          id: 'd1',
          op: 'put',
          data: { n, text: 'x'.repeat(200) },
        });
        for (let k = 0; k < 4; k++)
          mutations.push({ mid: `o${n}-${k}`, collection: 'docs', id: `o${k}`, op: 'put', data: { n } });
      }
      const res = await fetch(`${srv.url}/v1/mutations`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ mutations }),
      });
      if (res.status !== 200) throw new Error(`mutations: HTTP ${res.status} ${await res.text()}`);
    }
    if (values.compacted) await srv.server.compactHistory(Date.now() + 30 * 86_400_000);
    const paths = [
      '/v1/records/docs/d1/versions/3',
      `/v1/records/docs/d1/versions/${Math.max(1, versions - 3)}`,
      `/v1/records/docs/d1?version=${Math.ceil(versions / 2)}`,
    ];
    for (const path of paths) {
      const get = async () => {
        const res = await fetch(srv.url + path, { headers });
        await res.text();
        if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
      };
      for (let i = 0; i < 50; i++) await get();
      const started = performance.now();
      const cpu = process.cpuUsage();
      for (let i = 0; i < requests; i++) await get();
      const used = process.cpuUsage(cpu);
      const wall = (performance.now() - started) / requests;
      const cpuMs = (used.user + used.system) / 1000 / requests;
      console.log(`${kind}\t${path}\t${wall.toFixed(3)} ms/request\t${cpuMs.toFixed(3)} ms CPU/request`);
    }
  } finally {
    await srv.close();
  }
}
