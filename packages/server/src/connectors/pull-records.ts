/**
 * The pure pieces of a pull run: a provider item as a record (its id, version and data), the tally of
 * a `mutate` call's results, and the run report. Nothing here fetches, writes or keeps state.
 */
import { createHash } from 'node:crypto';
import type { Mutation, MutationResult } from '@syncbridge/protocol';
import type { PullConnection, PullResource } from './config.ts';
import { canonicalJson, getPath } from './json-path.ts';

export type RunKind = 'delta' | 'reconcile';

export interface RunReport extends Record<string, unknown> {
  connection: string;
  kind: RunKind;
  status: 'ok' | 'failed' | 'skipped';
  reason: string;
  startedAt: string;
  durationMs: number;
  pages?: number;
  applied?: number;
  duplicates?: number;
  deleted?: number;
  rejected?: number;
  error?: string;
  cursor?: string | null;
  missing?: number;
  changed?: number;
  extra?: number;
  repaired?: number;
  differences?: { missing: string[]; changed: string[]; extra: string[] };
}

export function hash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 40);
}

/** A provider id as a record id (no whitespace, `/`, `?` or `#`). */
export function safeId(id: string): string {
  return id.replace(/[\s/?#]/g, '_');
}

/** A provider item as a record of `connection`, or null when it has no id. */
export function recordOf(
  connection: PullConnection,
  resource: PullResource,
  item: unknown,
  connectionField: string,
): { id: string; version: string; data: Record<string, unknown> } | null {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return null;
  const providerId = getPath(item, resource.id ?? 'id');
  if (providerId === undefined || providerId === null || providerId === '') return null;
  const data = { ...(item as Record<string, unknown>), [connectionField]: connection.id };
  const v = resource.version ? getPath(item, resource.version) : undefined;
  const version = v === undefined || v === null ? `h${hash(canonicalJson(item))}` : String(v);
  return { id: safeId(`${connection.id}:${String(providerId)}`), version, data };
}

/** Tallies the results of `mutations` (in the same order) by what happened to each. */
export function countResults(
  mutations: Mutation[],
  results: MutationResult[],
): { applied: number; deleted: number; duplicates: number; rejected: number; error?: string } {
  const out = { applied: 0, deleted: 0, duplicates: 0, rejected: 0 } as {
    applied: number;
    deleted: number;
    duplicates: number;
    rejected: number;
    error?: string;
  };
  results.forEach((r, i) => {
    if (r.status === 'duplicate') out.duplicates += 1;
    else if (r.status === 'rejected' || r.status === 'conflict') {
      out.rejected += 1;
      out.error ??= r.error?.message ?? r.status;
    } else if (mutations[i]?.op === 'delete') out.deleted += 1;
    else out.applied += 1;
  });
  return out;
}

/** A run report of `connection`, its duration measured up to now. */
export function runReport(
  connection: PullConnection,
  kind: RunKind,
  reason: string,
  started: number,
  status: RunReport['status'],
  extra: Partial<RunReport> = {},
): RunReport {
  return {
    connection: connection.id,
    kind,
    status,
    reason,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ...extra,
  };
}
