/**
 * Durable before acknowledged, across a kill -9: the server runs as a child process, several writers
 * pump mutations into it (increments and puts over a few hundred records, every one with its own mid),
 * and the process is killed with SIGKILL mid-burst. A new process on the same data must hold every write
 * that was acknowledged as applied (replaying its mid answers `duplicate` with the same seq), the log must
 * be 1..head with no gap, each record's versions 1..v, and each counter between its acknowledged and its
 * sent increments. Finally an offline queue replaying everything it sent ends with every increment
 * applied exactly once, in a log that continued gap-free on the recovered store.
 */
import type { LogEvent, Mutation, MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.ts';
import {
  createTestStorage,
  type ServerProcess,
  type StoreKind,
  spawnServerProcess,
  storeKinds,
  TEST_JWT_SECRET,
  type TestStorage,
} from '../helpers/server.ts';
import {
  expectContiguous,
  getJson,
  postJson,
  range,
  readHistory,
  readLog,
  sleep,
  startBurstWriter,
} from './support.ts';

const kinds = await storeKinds();

const WRITERS = 4;
const COUNTERS = 100;
const DOCS = 200;
/** Acknowledged writes to wait for before the kill, so it lands mid-burst. */
const KILL_AFTER = 300;

const tokens = new TokenService({ jwtSecret: TEST_JWT_SECRET });

/** Writer w's k-th message: 1 to 4 mutations, increments on counters and puts on docs. */
function message(w: number, k: number): Mutation[] {
  const size = 1 + ((w + k) % 4);
  return range(0, size - 1).map((j) => {
    const mid = `w${w}-m${k}-${j}`;
    const x = (k * 7 + j * 13 + w * 31) % (COUNTERS + DOCS);
    return x < COUNTERS
      ? { mid, collection: 'counters', id: `ctr-${x}`, op: 'increment', data: { n: 1 } }
      : { mid, collection: 'docs', id: `doc-${x - COUNTERS}`, op: 'put', data: { w, k, j } };
  });
}

async function stop(proc: ServerProcess | null): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  await Promise.race([proc.exited, sleep(10_000)]);
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
}

describe.each(kinds)('kill -9 in the middle of a burst (%s)', (kind: StoreKind) => {
  let storage: TestStorage;
  const procs: ServerProcess[] = [];
  beforeAll(() => {
    storage = createTestStorage(kind);
  });
  afterAll(async () => {
    for (const proc of procs) await stop(proc);
    await storage?.cleanup();
  });

  it('keeps every acknowledged write, with a gap-free log and gap-free versions', async () => {
    const { token } = await tokens.mint({ tenant: 'acme', user: 'writer' });
    const sent: Mutation[] = [];
    const results: MutationResult[] = [];
    const first = await spawnServerProcess(storage);
    procs.push(first);
    const writers = await Promise.all(
      range(0, WRITERS - 1).map((w) => startBurstWriter(first.wsUrl, token, (k) => message(w, k))),
    );
    const acked = () => writers.reduce((n, w) => n + w.results.length, 0);
    const deadline = Date.now() + 20_000;
    while (acked() < KILL_AFTER && Date.now() < deadline) await sleep(2);
    expect(acked()).toBeGreaterThanOrEqual(KILL_AFTER);
    first.child.kill('SIGKILL');
    await first.exited;
    await Promise.all(writers.map((w) => w.closed));
    for (const w of writers) {
      sent.push(...w.sent);
      results.push(...w.results);
      // Mutations were still in flight when the process died.
      expect(w.sent.length).toBeGreaterThan(w.results.length);
    }
    // A new process on the same data.
    const proc = await spawnServerProcess(storage);
    procs.push(proc);
    const url = proc.url;
    const { token: audit } = await tokens.mint({ tenant: 'acme', user: 'auditor' });

    const applied = results.filter((r) => r.status === 'applied');
    expect(applied).toHaveLength(results.length);
    const mutationByMid = new Map(sent.map((m) => [m.mid, m]));
    const ackedMids = new Set(applied.map((r) => r.mid));

    // The log is 1..head and holds every acknowledged seq, with the record and version it was acked with.
    const log = await readLog(url, audit);
    expectContiguous(
      log.events.map((e) => e.seq),
      1,
      log.head,
      'log after the crash',
    );
    expect(log.head).toBeGreaterThanOrEqual(applied.length);
    const bySeq = new Map(log.events.map((e: LogEvent) => [e.seq, e]));
    for (const r of applied) {
      const m = mutationByMid.get(r.mid)!;
      expect(bySeq.get(r.seq!), `acked ${r.mid} at seq ${r.seq}`).toMatchObject({
        collection: m.collection,
        id: m.id,
        op: m.op,
        version: r.version,
      });
    }
    expect(log.head).toBeLessThanOrEqual(sent.length);

    // Each acknowledged mid replays as a duplicate of its first result.
    const ackedMutations = applied.map((r) => mutationByMid.get(r.mid)!);
    for (let i = 0; i < ackedMutations.length; i += 1000) {
      const batch = ackedMutations.slice(i, i + 1000);
      const replay = await postJson<{ results: MutationResult[] }>(`${url}/v1/mutations`, audit, {
        mutations: batch,
      });
      expect(replay.status).toBe(200);
      replay.body.results.forEach((r, k) => {
        const firstResult = applied[i + k]!;
        expect(r, r.mid).toMatchObject({
          mid: firstResult.mid,
          status: 'duplicate',
          originalStatus: 'applied',
          seq: firstResult.seq,
          version: firstResult.version,
        });
      });
    }
    expect((await readLog(url, audit)).head, 'replaying acked writes appended nothing').toBe(log.head);

    // Per record: versions 1..v in the history, in seq order; counters hold at least the acknowledged
    // increments and at most the sent ones, one version per increment.
    const touched = new Map<string, { collection: string; id: string; acked: number; sent: number }>();
    for (const m of sent) {
      const key = `${m.collection}/${m.id}`;
      const entry = touched.get(key) ?? { collection: m.collection, id: m.id, acked: 0, sent: 0 };
      entry.sent += 1;
      if (ackedMids.has(m.mid)) entry.acked += 1;
      touched.set(key, entry);
    }
    let counterTotal = 0;
    for (const { collection, id, acked, sent: sentCount } of touched.values()) {
      const inLog = log.events.filter((e) => e.collection === collection && e.id === id);
      if (acked === 0 && inLog.length === 0) continue;
      const history = await readHistory(url, audit, collection, id);
      expect(
        history.map((h) => h.version),
        `${collection}/${id}`,
      ).toEqual(range(1, history.length));
      expect(history.map((h) => h.seq)).toEqual(inLog.map((e) => e.seq));
      expect(history.length).toBeGreaterThanOrEqual(acked);
      expect(history.length).toBeLessThanOrEqual(sentCount);
      if (collection === 'counters') {
        const record = await getJson<{ data: { n: number }; version: number }>(
          `${url}/v1/records/counters/${id}`,
          audit,
        );
        expect(record.data.n, id).toBeGreaterThanOrEqual(acked);
        expect(record.data.n, id).toBeLessThanOrEqual(sentCount);
        expect(record.version, id).toBe(record.data.n);
        counterTotal += record.data.n;
      }
    }
    const ackedIncrements = applied.filter((r) => mutationByMid.get(r.mid)!.op === 'increment').length;
    const sentIncrements = sent.filter((m) => m.op === 'increment').length;
    expect(counterTotal).toBeGreaterThanOrEqual(ackedIncrements);
    expect(counterTotal).toBeLessThanOrEqual(sentIncrements);

    // An offline queue replays everything it sent: afterwards every increment counts exactly once.
    for (let i = 0; i < sent.length; i += 1000) {
      const replay = await postJson<{ results: MutationResult[] }>(`${url}/v1/mutations`, audit, {
        mutations: sent.slice(i, i + 1000),
      });
      expect(replay.status).toBe(200);
      for (const r of replay.body.results) {
        expect(['applied', 'duplicate']).toContain(r.status);
        if (ackedMids.has(r.mid)) expect(r.status).toBe('duplicate');
      }
    }
    for (const { collection, id, sent: sentCount } of touched.values()) {
      if (collection !== 'counters') continue;
      const record = await getJson<{ data: { n: number } }>(`${url}/v1/records/counters/${id}`, audit);
      expect(record.data.n, id).toBe(sentCount);
    }
    const final = await readLog(url, audit);
    expectContiguous(
      final.events.map((e) => e.seq),
      1,
      final.head,
      'log after the full replay',
    );
    expect(final.head).toBe(sent.length);
  }, 120_000); // spawns server processes: slow when the machine is loaded
});
