/**
 * The pg-cdc connector on the real local PostgreSQL: a platform's own database (a fresh `cdc_src_*`
 * database with a publication) streams into a tenant. The rows present at the start arrive as a
 * snapshot, then each source transaction's changes reach a WebSocket subscriber in commit order as one
 * group of consecutive seqs, with the column lists applied; outbox rows become domain events delivered
 * by webhook; a source restart (the walsender ended) resumes with nothing lost or repeated; status
 * reports the slot, lag and retained WAL; removing the connector drops its slot.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/config/config.ts';
import {
  POSTGRES_URL,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { postgresAvailable, requireService } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { readLog } from '../realtime/support.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { createSourceDb, type SourceDb } from './pg-source.ts';
import { adminRest, waitFor } from './support.ts';

const available = requireService(`PostgreSQL at ${POSTGRES_URL}`, await postgresAvailable(POSTGRES_URL));
const kinds = available ? await storeKinds() : [];
const SECRETS_KEY = 'a'.repeat(64);
const settings: Partial<ServerConfig> = { webhookAllowPrivate: ['127.0.0.1/32'], secretsKey: SECRETS_KEY };

/** The record events of one collection in a tenant's log. */
function recordEvents(events: LogEvent[], collection: string): LogEvent[] {
  return events.filter((e) => e.kind === 'record' && e.collection === collection);
}

describe.skipIf(kinds.length === 0).each(kinds)('pg-cdc connector (%s)', (kind: StoreKind) => {
  let source: SourceDb;
  let srv: TestServer;
  let receiver: Receiver;

  beforeAll(async () => {
    source = await createSourceDb();
    receiver = await Receiver.start(() => ({ status: 200 }));
    srv = await startTestServer(kind, settings);
  });
  afterAll(async () => {
    await srv?.close();
    await receiver?.close();
    await source?.drop();
  });

  it('snapshots, streams in commit order, publishes the outbox, resumes after a source restart', async () => {
    await source.tx([
      [
        "INSERT INTO trades (id, symbol, qty, internal_note) VALUES (1, 'AAPL', 10, 'x'), (2, 'MSFT', 5, 'y')",
      ],
    ]);
    const admin = adminRest(srv.url, srv.adminKey, 'bank');
    expect((await admin('PUT', '/v1/connector-secrets/SOURCE_URL', { value: source.url })).status).toBe(200);
    const hook = await admin('POST', '/v1/webhooks', {
      name: 'vyomo',
      url: receiver.url,
      eventTypes: ['trade.booked'],
      secret: 'pg-cdc-test-secret-01',
    });
    expect(hook.status, hook.text).toBe(201);
    const spec = {
      name: 'platform-db',
      kind: 'pg-cdc',
      connection: '{{secrets.SOURCE_URL}}',
      publication: source.publication,
      slot: `sb_${source.name}`,
      tables: [{ table: 'trades', collection: 'trades', exclude: ['internal_note'] }],
      outbox: {
        table: 'public.outbox',
        type: 'event_type',
        payload: 'payload',
        source: 'source',
        target: 'target',
        priority: 'priority',
      },
      statusIntervalMs: 200,
      // Any retained WAL is past this limit: the warning must show.
      maxRetainedWalBytes: 1,
    };
    const created = await admin('POST', '/v1/connectors', spec);
    expect(created.status, created.text).toBe(201);

    const token = await srv.token('bank', 'reader');
    const ws = await TestWsClient.connect(srv.wsUrl, token);
    await ws.request({ type: 'subscribe', channel: 'records:trades', since: 0 });
    await ws.waitForEvents(2, 'records:trades', 15_000);

    // Several transactions: a two-row one, an update, a delete, a key change, one with an outbox row.
    await source.tx([
      ["INSERT INTO trades (id, symbol, qty) VALUES (3, 'TSLA', 1)"],
      ['UPDATE trades SET qty = qty + 1 WHERE id = 1'],
    ]);
    await source.tx([['DELETE FROM trades WHERE id = 2']]);
    await source.tx([['INSERT INTO unmapped (id) VALUES (1)']]);
    await source.tx([['UPDATE trades SET id = 30 WHERE id = 3']]);
    await source.tx([
      ["INSERT INTO trades (id, symbol, qty) VALUES (4, 'NVDA', 7)"],
      [
        `INSERT INTO outbox (event_type, payload, source, target, priority)
         VALUES ('trade.booked', '{"trade": 4, "qty": 7}', 'vyomo', 'bank', 5)`,
      ],
    ]);
    const frames = await ws.waitForEvents(8, 'records:trades', 15_000);
    const seen = frames.map((f) => `${f.op}:${f.id}`);
    expect(seen).toEqual(['put:1', 'put:2', 'put:3', 'put:1', 'delete:2', 'delete:3', 'put:30', 'put:4']);
    expect(frames[0]!.data).toMatchObject({ id: 1, symbol: 'AAPL', qty: 10 });
    expect(frames[0]!.data).not.toHaveProperty('internal_note');
    expect(frames[3]!.data).toMatchObject({ qty: 11 });
    expect(typeof (frames[2]!.data as Record<string, unknown>).booked_at).toBe('string');
    const seqs = frames.map((f) => f.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    // One source transaction, one group: the trade and its outbox event have consecutive seqs.
    const { events } = await readLog(srv.url, token);
    const booked = events.filter((e) => e.kind === 'event' && e.type === 'trade.booked');
    expect(booked).toHaveLength(1);
    expect(booked[0]).toMatchObject({
      payload: { trade: 4, qty: 7 },
      source: 'vyomo',
      target: 'bank',
      priority: 5,
      actor: 'connector:platform-db',
    });
    const put4 = events.find((e) => e.kind === 'record' && e.id === '4')!;
    expect(booked[0]!.seq).toBe(put4.seq + 1);
    const put3 = events.find((e) => e.kind === 'record' && e.id === '3' && e.op === 'put')!;
    const update1 = events.find((e) => e.kind === 'record' && e.id === '1' && e.version === 2)!;
    expect(update1.seq).toBe(put3.seq + 1);

    // The outbox event reaches the platform's webhook.
    await receiver.waitFor(1);
    const delivered = JSON.parse(receiver.requests[0]!.body);
    expect(delivered).toMatchObject({ type: 'trade.booked', data: { trade: 4, qty: 7 } });

    // A source restart: the walsender is ended; the connector reconnects and resumes.
    expect(await source.terminateWalSenders()).toBe(1);
    for (let i = 5; i <= 9; i++) {
      await source.tx([[`INSERT INTO trades (id, symbol, qty) VALUES (${i}, 'X', ${i})`]]);
    }
    await ws.waitForEvents(13, 'records:trades', 20_000);
    await waitFor(
      async () => (await readLog(srv.url, token)).events,
      (all) => recordEvents(all, 'trades').length >= 13,
      'the changes after the restart',
      20_000,
    );
    // Nothing lost, nothing repeated.
    const after = recordEvents((await readLog(srv.url, token)).events, 'trades').map(
      (e) => `${e.op}:${e.id}`,
    );
    expect(after).toEqual([...seen, 'put:5', 'put:6', 'put:7', 'put:8', 'put:9']);

    const status = await waitFor(
      async () => (await admin('GET', '/v1/connectors/platform-db')).body,
      (s) =>
        s.state === 'running' &&
        s.details?.committedLsn !== null &&
        s.metrics.reconnects >= 1 &&
        s.metrics.wal_warning === 1,
      'a running connector after the restart',
      15_000,
    );
    expect(status.details).toMatchObject({
      slot: `sb_${source.name}`,
      phase: 'streaming',
      snapshot: [{ table: 'public.trades', rows: 2, total: 2 }],
    });
    expect(status.details.warning).toMatch(/holds \d+ bytes of WAL, past its limit/);
    expect(status.metrics.wal_warning).toBe(1);
    expect(status.metrics.retained_wal_bytes).toBeGreaterThan(1);
    expect(status.metrics).toHaveProperty('lag_seconds');
    expect(status.metrics).toHaveProperty('lag_bytes');
    expect(status.metrics).toHaveProperty('retained_wal_bytes');
    expect(status.metrics.transactions).toBeGreaterThanOrEqual(9);
    await ws.close();

    // Removed: the slot goes with it.
    expect((await admin('DELETE', '/v1/connectors/platform-db')).status).toBe(204);
    await eventually(async () => ((await source.slots()).length === 0 ? true : undefined), 10_000, 'no slot');
  }, 90_000);

  it('does not recreate a slot dropped behind its back; a PUT starts over with a snapshot', async () => {
    const admin = adminRest(srv.url, srv.adminKey, 'bank');
    const spec = {
      name: 'dropped',
      kind: 'pg-cdc',
      connection: '{{secrets.SOURCE_URL}}',
      publication: source.publication,
      slot: `sb2_${source.name}`,
      tables: [{ table: 'trades', collection: 'trades2' }],
    };
    expect((await admin('PUT', '/v1/connector-secrets/SOURCE_URL', { value: source.url })).status).toBe(200);
    expect((await admin('POST', '/v1/connectors', spec)).status).toBe(201);
    const streaming = (s: { details?: { phase?: string } }) => s.details?.phase === 'streaming';
    const status = () => admin('GET', '/v1/connectors/dropped').then((r) => r.body);
    const running = await waitFor(status, streaming, 'streaming', 15_000);
    // A stream cannot be run now: its status says so, and the trigger route refuses with a typed error.
    expect((running as { triggerable?: boolean }).triggerable).toBe(false);
    const trigger = await admin('POST', '/v1/connectors/dropped/trigger', {});
    expect(trigger.status).toBe(400);
    expect(trigger.body.error).toEqual({
      code: 'BAD_REQUEST',
      message: 'connector dropped (pg-cdc) streams continuously and cannot be triggered',
    });
    await source.client.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`,
      [spec.slot],
    );
    await eventually(async () => {
      try {
        await source.client.query('SELECT pg_drop_replication_slot($1)', [spec.slot]);
        return true;
      } catch {
        return undefined;
      }
    });
    const failed = await waitFor(
      status,
      (s) => typeof s.lastError === 'string' && s.lastError.includes('disappeared'),
      'the connector reporting its lost slot',
      15_000,
    );
    expect(failed.state).toBe('backing_off');
    expect((await source.slots()).map((s) => s.slot_name)).not.toContain(spec.slot);
    expect((await admin('PUT', '/v1/connectors/dropped', spec)).status).toBe(200);
    await waitFor(status, streaming, 'streaming again', 15_000);
    expect((await source.slots()).map((s) => s.slot_name)).toContain(spec.slot);
    expect((await admin('DELETE', '/v1/connectors/dropped')).status).toBe(204);
  }, 60_000);

  it('copies the existing rows of a table added to the mapping later, each row change once', async () => {
    const admin = adminRest(srv.url, srv.adminKey, 'bank');
    const token = await srv.token('bank', 'reader');
    await source.client.query('CREATE TABLE positions (id integer PRIMARY KEY, qty integer NOT NULL)');
    await source.client.query(`ALTER PUBLICATION ${source.publication} ADD TABLE positions`);
    await source.tx([['INSERT INTO positions (id, qty) VALUES (1, 10), (2, 20)']]);
    expect((await admin('PUT', '/v1/connector-secrets/SOURCE_URL', { value: source.url })).status).toBe(200);
    const spec = {
      name: 'grows',
      kind: 'pg-cdc',
      connection: '{{secrets.SOURCE_URL}}',
      publication: source.publication,
      slot: `sb3_${source.name}`,
      tables: [{ table: 'trades', collection: 'trades3' }],
    };
    expect((await admin('POST', '/v1/connectors', spec)).status).toBe(201);
    const status = () => admin('GET', '/v1/connectors/grows').then((r) => r.body);
    await waitFor(status, (s) => s.details?.phase === 'streaming', 'streaming', 15_000);
    // Streamed while positions is not mapped: nothing of it is written.
    await source.tx([['UPDATE positions SET qty = 11 WHERE id = 1']]);
    // Stopped, its slot kept: the changes made meanwhile wait in the slot, unacknowledged.
    expect((await admin('PUT', '/v1/connectors/grows', { ...spec, enabled: false })).status).toBe(200);
    await source.tx([
      ['UPDATE positions SET qty = 12 WHERE id = 1'],
      ['INSERT INTO positions VALUES (3, 30)'],
    ]);
    await source.tx([['DELETE FROM positions WHERE id = 2']]);
    await source.tx([["INSERT INTO trades (id, symbol, qty) VALUES (100, 'IBM', 1)"]]);
    // positions mapped now: its rows are copied, then the stream resends what waited.
    const grown = { ...spec, tables: [...spec.tables, { table: 'positions', collection: 'positions3' }] };
    expect((await admin('PUT', '/v1/connectors/grows', grown)).status).toBe(200);
    const copied = await waitFor(
      status,
      (s) => s.details?.phase === 'streaming' && s.details?.snapshot?.length === 1,
      'the added table copied',
      30_000,
    );
    expect(copied.details.snapshot).toEqual([{ table: 'public.positions', rows: 2, total: 2 }]);
    await source.tx([['UPDATE positions SET qty = 31 WHERE id = 3']]);
    const log = await waitFor(
      async () => (await readLog(srv.url, token)).events,
      (all) =>
        recordEvents(all, 'positions3').length >= 3 &&
        recordEvents(all, 'trades3').some((e) => e.id === '100'),
      'the copy, the resent trade and the later change',
      30_000,
    );
    const positions = recordEvents(log, 'positions3').map(
      (e) => `${e.op}:${e.id}:${(e.data as { qty?: number })?.qty}`,
    );
    // The copy (as of its point, in table order), then only what came after it: no change twice.
    expect(positions.slice(0, 2).sort()).toEqual(['put:1:12', 'put:3:30']);
    expect(positions.slice(2)).toEqual(['put:3:31']);
    // The trade made while stopped arrives once (the rows before it came with the first snapshot).
    expect(recordEvents(log, 'trades3').filter((e) => e.id === '100')).toHaveLength(1);
    expect((await admin('GET', '/v1/records/positions3/2')).status).toBe(404);
    expect((await admin('DELETE', '/v1/connectors/grows')).status).toBe(204);
  }, 90_000);

  it('refuses a definition that maps nothing or names a bad identifier', async () => {
    const admin = adminRest(srv.url, srv.adminKey, 'bank');
    const bad = await admin('POST', '/v1/connectors', {
      name: 'bad',
      kind: 'pg-cdc',
      connection: 'postgres://127.0.0.1/x',
      publication: 'p; DROP TABLE x',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BAD_REQUEST');
    const none = await admin('POST', '/v1/connectors', {
      name: 'none',
      kind: 'pg-cdc',
      connection: 'postgres://127.0.0.1/x',
      publication: 'p',
    });
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toContain('map at least one table or an outbox');
  });
});
