/**
 * The PostgreSQL bus's own parts: the split of messages past NOTIFY's 8000-byte limit (never inside
 * a character), and its reconnect after the server cut its connection (as a failover or an
 * administrator's pg_terminate_backend does).
 */

import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresBus, splitForNotify } from '../../src/bus/postgres-bus.ts';
import type { EventsMessage } from '../../src/bus/types.ts';
import { POSTGRES_URL, storeKinds } from '../helpers/server.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

describe('splitForNotify', () => {
  it('keeps a small message whole and cuts a large one into parts under the limit', () => {
    expect(splitForNotify('{"a":1}', 'n1')).toEqual(['{"a":1}']);
    const wire = JSON.stringify({ text: 'aé€𝄞'.repeat(5_000) });
    const parts = splitForNotify(wire, 'n1', 1000);
    expect(parts.length).toBeGreaterThan(40);
    for (const part of parts) {
      expect(Buffer.byteLength(part)).toBeLessThanOrEqual(1000);
      expect(part).not.toContain('\uFFFD');
    }
    const bodies = parts.map((p) => p.split(' ').slice(4).join(' '));
    expect(bodies.join('')).toBe(wire);
  });
});

describe.skipIf(!hasPostgres)('PostgreSQL bus', () => {
  const buses: PostgresBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  it('reconnects after its connection is terminated, tells its listeners, and carries messages again', async () => {
    const channel = `sb_reconnect_${Math.random().toString(36).slice(2, 10)}`;
    const logger = pino({ level: 'silent' });
    const a = await PostgresBus.connect(POSTGRES_URL, 'a', logger, channel);
    const b = await PostgresBus.connect(POSTGRES_URL, 'b', logger, channel);
    buses.push(a, b);
    let reconnects = 0;
    b.onReconnect(() => reconnects++);
    const got: number[] = [];
    b.subscribe((m) => m.type === 'events' && got.push((m as EventsMessage).upTo));

    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [`syncbridge-bus ${channel}`],
      );
      expect(rowCount).toBe(2);
    } finally {
      await admin.end();
    }
    const deadline = Date.now() + 10_000;
    while (reconnects === 0 || !(await a.ping())) {
      if (Date.now() > deadline) throw new Error('the bus did not reconnect');
      await new Promise((r) => setTimeout(r, 50));
    }
    a.publish({ type: 'events', node: 'a', tenant: 't', events: [], upTo: 7 });
    while (got.length === 0) {
      if (Date.now() > deadline) throw new Error('nothing arrived after the reconnect');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(got).toEqual([7]);
    expect(reconnects).toBe(1);
  });
});
