/**
 * A reconciliation of one pull connection: the provider's full snapshot against the records; missing,
 * changed and extra records are reported (`syncbridge.connector_reconciled`) and repaired in one
 * `mutate` call. It must never delete a record changed since it was read (deletes carry its version).
 */
import { randomUUID } from 'node:crypto';
import type { Mutation, SyncRecord } from '@syncbridge/protocol';
import type { PullConnection } from './config.ts';
import { canonicalJson, getPath } from './json-path.ts';
import type { PullRun } from './pull-delta.ts';
import { countResults, hash, type RunReport, recordOf, runReport } from './pull-records.ts';

const REPORT_IDS = 100;

export async function reconcile(
  run: PullRun,
  connection: PullConnection,
  reason: string,
  started: number,
): Promise<RunReport> {
  const ctx = run.ctx;
  const snapshot = run.source.snapshot?.bind(run.source);
  if (!snapshot) throw new Error(`provider of ${run.name} offers no snapshot to reconcile against`);
  const body = await run.fetch((signal) => snapshot(connection, signal));
  const runId = randomUUID();
  const mutations: Mutation[] = [];
  const diff = { missing: [] as string[], changed: [] as string[], extra: [] as string[] };
  for (const resource of run.resources) {
    const wanted = new Map<string, Record<string, unknown>>();
    const items = getPath(body, resource.path);
    for (const item of Array.isArray(items) ? items : []) {
      const rec = recordOf(connection, resource, item, run.connectionField);
      if (rec) wanted.set(rec.id, rec.data);
    }
    const existing = new Map<string, SyncRecord>();
    for (const r of await ctx.records.list(resource.collection, {
      [run.connectionField]: connection.id,
    })) {
      existing.set(r.id, r);
    }
    for (const [id, data] of wanted) {
      const current = existing.get(id);
      const label = `${resource.collection}/${id}`;
      if (!current) diff.missing.push(label);
      else if (canonicalJson(current.data) !== canonicalJson(data)) diff.changed.push(label);
      else continue;
      mutations.push({
        mid: `reconcile:${hash(runId, resource.collection, id)}`,
        collection: resource.collection,
        id,
        op: 'put',
        data,
      });
    }
    for (const [id, current] of existing) {
      if (wanted.has(id)) continue;
      diff.extra.push(`${resource.collection}/${id}`);
      mutations.push({
        mid: `reconcile:${hash(runId, resource.collection, id, 'delete')}`,
        collection: resource.collection,
        id,
        op: 'delete',
        baseVersion: current.version,
      });
    }
  }
  let repaired = 0;
  let error: string | undefined;
  if (mutations.length > 0) {
    const counted = countResults(mutations, await ctx.mutate(mutations));
    repaired = counted.applied + counted.deleted;
    if (counted.error) error = `${counted.rejected} repair(s) refused: ${counted.error}`;
  }
  run.counts.reconciliations += 1;
  run.counts.repaired += repaired;
  const report = runReport(connection, 'reconcile', reason, started, 'ok', {
    missing: diff.missing.length,
    changed: diff.changed.length,
    extra: diff.extra.length,
    repaired,
    differences: {
      missing: diff.missing.slice(0, REPORT_IDS),
      changed: diff.changed.slice(0, REPORT_IDS),
      extra: diff.extra.slice(0, REPORT_IDS),
    },
    ...(error ? { error } : {}),
  });
  if (mutations.length > 0) {
    await ctx
      .publish(
        {
          type: 'syncbridge.connector_reconciled',
          source: run.provider,
          payload: { connector: run.name, ...report },
        },
        { system: true },
      )
      .catch((err: unknown) => ctx.logger.warn({ err }, 'could not publish a reconciliation report'));
  }
  return report;
}
