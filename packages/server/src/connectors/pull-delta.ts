/**
 * A delta sync of one pull connection: the changes since its stored cursor, page by page; each page's
 * items and deletions go to the log in ONE `mutate` call (one transaction), and the cursor is stored after
 * it commits. Every mutation's `mid` derives from the connector, the record and the provider's version of
 * the item, so a re-pull of the same page is acknowledged as `duplicate` and changes nothing. It must
 * never store a cursor before the page it ends has committed.
 */
import type { Mutation } from '@syncbridge/protocol';
import type { PullConnection, PullOptions, PullResource } from './config.ts';
import { getPath } from './json-path.ts';
import type { PullProvider } from './pull-http.ts';
import { countResults, hash, type RunReport, recordOf, runReport, safeId } from './pull-records.ts';
import type { ConnectorContext } from './types.ts';

/** Totals a pull connector keeps across its runs (its metrics). */
export interface PullCounts {
  runs: number;
  failed: number;
  skipped: number;
  applied: number;
  duplicates: number;
  deleted: number;
  rejected: number;
  reconciliations: number;
  repaired: number;
  alerts: number;
}

/** What a run of a pull connector works with. */
export interface PullRun {
  readonly name: string;
  readonly provider: string;
  readonly options: PullOptions;
  readonly resources: PullResource[];
  readonly connectionField: string;
  readonly ctx: ConnectorContext;
  readonly source: PullProvider;
  readonly counts: PullCounts;
  /** Calls the provider; a failure of any kind becomes a ProviderError (it counts against the circuit). */
  fetch<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T>;
  stopped(): boolean;
}

export async function delta(
  run: PullRun,
  connection: PullConnection,
  s: { cursor: string | null },
  reason: string,
  started: number,
): Promise<RunReport> {
  const ctx = run.ctx;
  const cursorPath = run.options.http.cursorPath ?? 'cursor';
  const hasMorePath = run.options.http.hasMorePath ?? 'hasMore';
  const totals = { pages: 0, applied: 0, duplicates: 0, deleted: 0, rejected: 0 };
  let lastRejection: string | undefined;
  let more = true;
  while (more && totals.pages < (run.options.maxPages ?? 100) && !run.stopped()) {
    const since = s.cursor;
    const body = await run.fetch((signal) => run.source.changes(connection, since, signal));
    const mutations: Mutation[] = [];
    for (const resource of run.resources) {
      const items = getPath(body, resource.path);
      for (const item of Array.isArray(items) ? items : []) {
        const rec = recordOf(connection, resource, item, run.connectionField);
        if (!rec) continue;
        mutations.push({
          mid: `pull:${hash(run.name, resource.collection, rec.id, rec.version)}`,
          collection: resource.collection,
          id: rec.id,
          op: 'put',
          data: rec.data,
        });
      }
      const removed = resource.deletedPath ? getPath(body, resource.deletedPath) : undefined;
      for (const raw of Array.isArray(removed) ? removed : []) {
        if (typeof raw !== 'string' && typeof raw !== 'number') continue;
        const id = safeId(`${connection.id}:${String(raw)}`);
        const existing = await ctx.records.get(resource.collection, id);
        if (!existing || existing.deleted) continue;
        mutations.push({
          mid: `pull-del:${hash(run.name, resource.collection, id, since ?? '', String(existing.version))}`,
          collection: resource.collection,
          id,
          op: 'delete',
        });
      }
    }
    if (mutations.length > 0) {
      const counted = countResults(mutations, await ctx.mutate(mutations));
      totals.applied += counted.applied;
      totals.deleted += counted.deleted;
      totals.duplicates += counted.duplicates;
      totals.rejected += counted.rejected;
      if (counted.error) lastRejection = counted.error;
    }
    const next = getPath(body, cursorPath);
    if (next !== undefined && next !== null && String(next) !== since) {
      s.cursor = String(next);
      await ctx.state.put(`cursor:${connection.id}`, s.cursor);
    }
    more = getPath(body, hasMorePath) === true && s.cursor !== since;
    totals.pages += 1;
  }
  run.counts.applied += totals.applied;
  run.counts.duplicates += totals.duplicates;
  run.counts.deleted += totals.deleted;
  run.counts.rejected += totals.rejected;
  return runReport(connection, 'delta', reason, started, 'ok', {
    ...totals,
    cursor: s.cursor,
    ...(lastRejection ? { error: `${totals.rejected} change(s) refused: ${lastRejection}` } : {}),
  });
}
