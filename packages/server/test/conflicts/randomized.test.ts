/**
 * Randomized conflicts: eight WebSocket writers race random puts, patches, increments and deletes
 * (with current, stale or no baseVersion, with and without client HLCs, and some offline-queue replays
 * of an earlier mid) over ~30 shared records in collections with different strategies. Afterwards every
 * subscriber's folded view equals the store, the log holds exactly the changes that were acknowledged,
 * each strategy produced only the outcomes it documents, and `syncbridge replay --verify` finds the
 * records table equal to the log. The schedule comes from a seeded PRNG (SYNCBRIDGE_TEST_SEED to
 * replay one); the seed is in every failure message.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { LogEvent, Mutation, MutationResult, Strategy, SyncRecord } from '@syncbridge/protocol';
import { describe, expect, it } from 'vitest';
import { deepEqual } from '../../src/core/merge.ts';
import { type StoreKind, startTestServer, storeKinds } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { getJson, readLog, seededRandom } from '../realtime/support.ts';

const kinds = await storeKinds();
const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');

const WRITERS = 8;
const MESSAGES_PER_WRITER = 40;
const IDS_PER_COLLECTION = 8;
const STRATEGIES: Strategy[] = ['lww', 'server_wins', 'client_wins', 'merge'];

type Json = Record<string, unknown>;

interface Sent {
  writer: number;
  mutation: Mutation;
  result: MutationResult;
}

function hlcAt(ms: number, node: string): string {
  return `${String(ms).padStart(15, '0')}-0000-${node}`;
}

describe.each(kinds)('randomized conflicts (%s)', (kind: StoreKind) => {
  it('subscribers converge on the store, the log holds exactly the acknowledged changes, replay verifies', async () => {
    const seed = Number(process.env.SYNCBRIDGE_TEST_SEED ?? (kind === 'sqlite' ? 20261125 : 5126));
    const where = `(seed ${seed})`;
    const rng = seededRandom(seed);
    const int = (n: number) => Math.floor(rng() * n);
    const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

    // Collections with the strategies in a random order; merge settles clashes by per-field lww.
    const order = [...STRATEGIES].sort(() => rng() - 0.5);
    const strategyOf = new Map(order.map((s, i) => [`rnd${i}`, s]));
    const collections = [...strategyOf.keys()];
    const srv = await startTestServer(kind, {
      collections: Object.fromEntries(
        [...strategyOf].map(([name, strategy]) => [
          name,
          strategy === 'merge' ? { strategy, mergeFallback: 'lww' as const } : { strategy },
        ]),
      ),
    });
    let closed = false;
    try {
      const admin = await srv.token('rnd', 'auditor', { roles: ['admin'] });

      const subscribe = async (user: string) => {
        const client = await TestWsClient.connect(srv.wsUrl, await srv.token('rnd', user));
        for (const c of collections) {
          const reply = await client.request({ type: 'subscribe', channel: `records:${c}`, since: 0 });
          expect(reply.type).toBe('subscribed');
        }
        return client;
      };
      const subscribers = [await subscribe('early')];

      const writers = await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) =>
          TestWsClient.connect(srv.wsUrl, await srv.token('rnd', `w${w}`)),
        ),
      );
      const sent: Sent[] = [];
      const firstResult = new Map<string, MutationResult>();

      const run = async (w: number) => {
        const known = new Map<string, number>();
        const mine: Mutation[] = [];
        for (let k = 0; k < MESSAGES_PER_WRITER; k++) {
          // The second subscriber arrives halfway, with since 0: backlog, then live.
          if (w === 0 && k === MESSAGES_PER_WRITER / 2) subscribers.push(await subscribe('late'));
          const batch: Mutation[] = [];
          const size = 1 + int(3);
          for (let j = 0; j < size; j++) {
            if (mine.length > 0 && rng() < 0.05) {
              const again = pick(mine); // an offline queue sent twice
              if (!batch.includes(again)) batch.push(again);
              continue;
            }
            const collection = pick(collections);
            const id = `i${int(IDS_PER_COLLECTION)}`;
            const version = known.get(`${collection}/${id}`);
            const r = rng();
            const op = r < 0.35 ? 'put' : r < 0.65 ? 'patch' : r < 0.85 ? 'increment' : 'delete';
            const m: Mutation = { mid: `w${w}-${k}-${j}`, collection, id, op };
            if (op === 'put')
              m.data = { n: int(100), tag: pick(['a', 'b', 'c']), meta: { x: int(5), by: w } };
            else if (op === 'patch') {
              const data: Json = {};
              if (rng() < 0.6) data.tag = pick(['a', 'b', 'c', 'd']);
              if (rng() < 0.5) data.meta = rng() < 0.5 ? { x: int(5) } : { y: int(5) };
              if (rng() < 0.3) data.note = rng() < 0.5 ? null : `note ${w}-${k}`;
              m.data = data;
            } else if (op === 'increment') m.data = { n: int(11) - 5 };
            const b = rng();
            if (version === undefined) {
              if (b < 0.5) m.baseVersion = 0;
            } else if (b < 0.25)
              m.baseVersion = Math.max(1, version - 1 - int(2)); // stale on purpose
            else if (b < 0.85) m.baseVersion = version; // current as far as this writer knows
            if (rng() < 0.5) m.hlc = hlcAt(Date.now() + int(2000) - 1000, `w${w}`);
            batch.push(m);
          }
          const reply = await writers[w]!.request({ type: 'mutate', mutations: batch }, 10_000);
          expect(reply.type, `${where} ${JSON.stringify(reply)}`).toBe('results');
          const results = reply.results as MutationResult[];
          expect(results.map((x) => x.mid)).toEqual(batch.map((x) => x.mid));
          batch.forEach((mutation, i) => {
            const result = results[i]!;
            if (!mine.includes(mutation)) mine.push(mutation);
            sent.push({ writer: w, mutation, result });
            if (result.record) known.set(`${mutation.collection}/${mutation.id}`, result.record.version);
          });
        }
      };
      await Promise.all(writers.map((_, w) => run(w)));

      // Idempotency: a mid sent again returns its first result as `duplicate` and changes nothing.
      const firsts: Sent[] = [];
      for (const s of sent) {
        const first = firstResult.get(s.mutation.mid);
        if (!first) {
          expect(s.result.status, `${where} ${s.mutation.mid}`).not.toBe('duplicate');
          firstResult.set(s.mutation.mid, s.result);
          firsts.push(s);
        } else {
          expect(s.result, `${where} ${s.mutation.mid}`).toMatchObject({
            status: 'duplicate',
            originalStatus: first.status,
          });
        }
      }

      // Each strategy produced only the outcomes it documents.
      for (const { mutation: m, result: r } of firsts) {
        const strategy = strategyOf.get(m.collection)!;
        const what = `${where} ${strategy} ${JSON.stringify(m)} -> ${JSON.stringify(r)}`;
        expect(['applied', 'merged', 'rejected'], what).toContain(r.status);
        if (r.status === 'merged') expect(strategy, what).toBe('merge');
        if (r.status === 'rejected') {
          const code = r.error?.code;
          if (code === 'NOT_FOUND') expect(m.op, what).toBe('delete');
          else {
            expect(code, what).toBe('CONFLICT');
            expect(['lww', 'server_wins', 'merge'], what).toContain(strategy);
            expect(m.op, what).not.toBe('increment');
            expect(m.baseVersion, what).toBeDefined();
            expect(m.baseVersion, what).not.toBe(r.record!.version);
          }
        }
      }

      // The log holds exactly the acknowledged changes, each by its writer, versions 1, 2, 3… per record.
      const { events } = await readLog(srv.url, admin);
      const records = events.filter((e) => e.kind === 'record');
      const acked = firsts.filter((s) => s.result.status === 'applied' || s.result.status === 'merged');
      expect(records.length, where).toBe(acked.length);
      const bySeq = new Map(records.map((e) => [e.seq, e]));
      for (const { writer, mutation, result } of acked) {
        expect(bySeq.get(result.seq!), `${where} ${mutation.mid}`).toMatchObject({
          actor: `w${writer}`,
          collection: mutation.collection,
          id: mutation.id,
          version: result.version,
          data: result.record!.data,
        });
      }
      const versions = new Map<string, number>();
      for (const e of records) {
        const key = `${e.collection}/${e.id}`;
        expect(e.version, `${where} ${key}`).toBe((versions.get(key) ?? 0) + 1);
        versions.set(key, e.version!);
      }

      // Every subscriber got exactly its collections' record events, in order, and folds to the store.
      for (const c of collections) {
        const expectedSeqs = records.filter((e) => e.collection === c).map((e) => e.seq);
        const last = expectedSeqs[expectedSeqs.length - 1] ?? 0;
        const stored = await getJson<{ records: SyncRecord[] }>(
          `${srv.url}/v1/records/${c}?includeDeleted=true&limit=1000`,
          admin,
        );
        const want = new Map(stored.records.map((r) => [r.id, r]));
        for (const sub of subscribers) {
          const channel = `records:${c}`;
          const deadline = Date.now() + 10_000;
          while (Math.max(0, ...sub.events(channel).map((e) => e.seq as number)) < last) {
            if (Date.now() > deadline) throw new Error(`${where} ${channel}: not caught up to seq ${last}`);
            await new Promise((r) => setTimeout(r, 20));
          }
          const got = sub.events(channel) as unknown as LogEvent[];
          expect(
            got.map((e) => e.seq),
            `${where} ${channel}`,
          ).toEqual(expectedSeqs);
          const folded = new Map<string, { version: number; data: unknown; deleted: boolean }>();
          for (const e of got) {
            if ((folded.get(e.id!)?.version ?? 0) >= e.version!) continue;
            folded.set(e.id!, { version: e.version!, data: e.data ?? {}, deleted: e.op === 'delete' });
          }
          expect([...folded.keys()].sort(), `${where} ${channel}`).toEqual([...want.keys()].sort());
          for (const [id, r] of want) {
            const f = folded.get(id)!;
            const same = deepEqual(f, { version: r.version, data: r.data, deleted: r.deleted });
            expect(same, `${where} ${channel} ${id}: ${JSON.stringify(f)} vs ${JSON.stringify(r)}`).toBe(
              true,
            );
          }
        }
      }
      expect(new Set(firsts.map((s) => s.result.status)).has('merged'), `${where} some merges`).toBe(true);

      for (const c of [...writers, ...subscribers]) await c.close();
      await srv.close({ keepData: true });
      closed = true;

      // The records table equals the fold of the log.
      const cfg = srv.storage.config;
      const verify = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'replay', '--verify'], {
        env: {
          ...process.env,
          SYNCBRIDGE_DATA_DIR: srv.storage.dataDir,
          SYNCBRIDGE_LOG_LEVEL: 'warn',
          ...(cfg.databaseUrl ? { SYNCBRIDGE_DATABASE_URL: cfg.databaseUrl } : {}),
          ...(cfg.databaseSchema ? { SYNCBRIDGE_DATABASE_SCHEMA: cfg.databaseSchema } : {}),
        },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(verify.stdout, `${where} ${verify.stderr}`).toContain('no differences');
      expect(verify.stdout).toMatch(new RegExp(`replayed ${events.length} log entries of 1 tenant`));
      expect(verify.status).toBe(0);
    } finally {
      if (!closed) await srv.close({ keepData: true });
      await srv.storage.cleanup();
    }
  });
});
