/**
 * A feed symbol's ticks in a time range, from every place they may be: stored, still waiting to be
 * stored, and kept in memory (all of a feed that does not persist), without duplicates. Read only.
 */

import type { TopicHub } from '../realtime/topic-hub.ts';
import type { ConnectorStore, TickQuery } from './store.ts';
import type { TickWriter } from './tick-writer.ts';
import type { Tick } from './types.ts';

/**
 * A feed symbol's ticks in a time range: those stored, those still waiting to be, and those kept in
 * memory (all of a feed that does not persist), without duplicates.
 */
export async function tickHistory(
  deps: { store: ConnectorStore; ticks: TickWriter; topics: TopicHub },
  tenant: string,
  topic: string,
  symbol: string,
  query: TickQuery,
): Promise<Tick[]> {
  const bySeq = new Map<number, Tick>();
  for (const t of await deps.store.ticks(tenant, topic, symbol, query)) bySeq.set(t.seq, t);
  for (const t of deps.ticks.pending(tenant, topic, symbol)) bySeq.set(t.seq, t);
  for (const t of deps.topics.recent(tenant, topic, symbol)) bySeq.set(t.seq, t);
  const inRange = [...bySeq.values()].filter(
    (t) => (query.from === undefined || t.ts >= query.from) && (query.to === undefined || t.ts < query.to),
  );
  const dir = query.order === 'desc' ? -1 : 1;
  inRange.sort((a, b) => dir * (a.ts - b.ts || a.seq - b.seq));
  return inRange.slice(0, query.limit);
}
