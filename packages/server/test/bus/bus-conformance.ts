/**
 * One conformance suite for every Bus: what a node publishes reaches every other node's handlers and
 * never its own, in publish order, with events intact (also past a broker's frame limit); oversized
 * batches travel as notifications; malformed messages are dropped.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, EventsMessage } from '../../src/bus/types.ts';

function events(tenant: string, from: number, count: number, size = 10): LogEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: from + i,
    eventId: `${tenant}-${from + i}`,
    kind: 'event' as const,
    type: 'tick',
    payload: { pad: 'x'.repeat(size) },
    actor: 'bus-test',
    ts: new Date(0).toISOString(),
  }));
}

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function runBusConformance(name: string, createNodes: (ids: string[]) => Promise<Bus[]>): void {
  describe(`bus conformance: ${name}`, () => {
    let nodes: Bus[] = [];
    afterEach(async () => {
      await Promise.all(nodes.map((n) => n.close()));
      nodes = [];
    });

    it('delivers to every other node, not to the publisher, in order and intact', async () => {
      const tenant = `t-${Math.random().toString(36).slice(2)}`;
      nodes = await createNodes(['a', 'b', 'c']);
      const got = new Map<number, EventsMessage[]>([
        [0, []],
        [1, []],
        [2, []],
      ]);
      nodes.forEach((node, i) => {
        node.subscribe((m) => {
          if (m.type === 'events' && m.tenant === tenant) got.get(i)!.push(m);
        });
      });
      for (let i = 0; i < 50; i++) {
        const batch = events(tenant, i * 2 + 1, 2);
        nodes[0]!.publish({ type: 'events', node: 'a', tenant, events: batch, upTo: batch[1]!.seq });
      }
      await until(() => got.get(1)!.length === 50 && got.get(2)!.length === 50);
      await new Promise((r) => setTimeout(r, 100));
      expect(got.get(0)).toEqual([]);
      for (const i of [1, 2]) {
        const seqs = got.get(i)!.flatMap((m) => m.events.map((e) => e.seq));
        expect(seqs).toEqual(Array.from({ length: 100 }, (_, k) => k + 1));
        expect(got.get(i)![0]!.events[0]).toEqual(events(tenant, 1, 1)[0]);
      }
    });

    it('sends an oversized batch as a notification with upTo and no events', async () => {
      const tenant = `t-${Math.random().toString(36).slice(2)}`;
      nodes = await createNodes(['a', 'b']);
      const got: EventsMessage[] = [];
      nodes[1]!.subscribe((m) => m.type === 'events' && m.tenant === tenant && got.push(m));
      const big = events(tenant, 1, 40, 10_000);
      nodes[0]!.publish({ type: 'events', node: 'a', tenant, events: big, upTo: 40 });
      await until(() => got.length === 1);
      expect(got[0]).toMatchObject({ node: 'a', tenant, upTo: 40, events: [] });
    });

    it('carries a batch larger than one broker frame intact (100 KB, multi-byte text)', async () => {
      const tenant = `t-${Math.random().toString(36).slice(2)}`;
      nodes = await createNodes(['a', 'b']);
      const got: EventsMessage[] = [];
      nodes[1]!.subscribe((m) => m.type === 'events' && m.tenant === tenant && got.push(m));
      const batch = events(tenant, 1, 10, 3_000).map((e) => ({ ...e, payload: { text: 'é€𝄞'.repeat(800) } }));
      nodes[0]!.publish({ type: 'events', node: 'a', tenant, events: batch, upTo: 10 });
      nodes[0]!.publish({ type: 'events', node: 'a', tenant, events: events(tenant, 11, 1), upTo: 11 });
      await until(() => got.length === 2);
      expect(got[0]!.events).toEqual(batch);
      expect(got[1]!.upTo).toBe(11);
    });

    it('drops messages that do not match their schema', async () => {
      const tenant = `t-${Math.random().toString(36).slice(2)}`;
      nodes = await createNodes(['a', 'b']);
      const got: EventsMessage[] = [];
      nodes[1]!.subscribe((m) => m.type === 'events' && m.tenant === tenant && got.push(m));
      const bad = { type: 'events', node: 'a', tenant, events: [{ seq: 'one' }], upTo: 1 };
      nodes[0]!.publish(bad as unknown as EventsMessage);
      nodes[0]!.publish({ type: 'events', node: 'a', tenant, events: events(tenant, 2, 1), upTo: 2 });
      await until(() => got.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(got.map((m) => m.upTo)).toEqual([2]);
    });

    it('answers ping while connected', async () => {
      nodes = await createNodes(['a']);
      expect(await nodes[0]!.ping()).toBe(true);
    });
  });
}
