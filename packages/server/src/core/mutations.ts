/**
 * The mutation engine: given a record's current state and one mutation, decides the outcome
 * (a new record version and its log entry, or a rejection). Pure: no I/O, no clock of its own;
 * the write path supplies the current state, the HLC and the time, and persists what comes out.
 */
import type {
  CollectionSettings,
  LogEvent,
  Mutation,
  MutationResult,
  SyncRecord,
} from '@syncbridge/protocol';
import { applyMergePatch } from '@syncbridge/protocol';
import type { ConflictStrategy } from './strategies.ts';

export interface MutationContext {
  current: SyncRecord | null;
  strategy: ConflictStrategy;
  settings: CollectionSettings;
  /** The record's data at `mutation.baseVersion` when it differs from the current one (null: not kept). */
  base: Record<string, unknown> | null;
  /** Validates the record's new data against the collection's schema; returns error details or null. */
  validate: ((data: Record<string, unknown>) => unknown[] | null) | null;
  actor: string;
  /** The HLC to record for this change (the client's, clamped, or a fresh server tick). */
  hlc: string;
  /** A fresh server tick, used when the client's HLC would move the record's clock backwards. */
  serverHlc: () => string;
  now: string;
  eventId: string;
}

export type MutationOutcome =
  | { status: 'applied' | 'merged'; record: SyncRecord; event: Omit<LogEvent, 'seq'> }
  | { status: 'rejected'; result: MutationResult }
  /** A conflict for the manual queue: the record stays as it is. */
  | {
      status: 'conflict';
      reason: string;
      current: SyncRecord;
      base: Record<string, unknown> | null;
      proposed: Record<string, unknown> | null;
    };

function reject(
  mutation: Mutation,
  code: string,
  message: string,
  record?: SyncRecord | null,
  details?: unknown,
): MutationOutcome {
  const result: MutationResult = { mid: mutation.mid, status: 'rejected', error: { code, message } };
  if (details !== undefined) result.error!.details = details;
  if (record) {
    result.record = record;
    result.version = record.version;
  }
  return { status: 'rejected', result };
}

function incrementData(
  base: Record<string, unknown>,
  deltas: Record<string, unknown>,
): Record<string, unknown> | string {
  const next = { ...base };
  for (const [field, delta] of Object.entries(deltas)) {
    if (typeof delta !== 'number' || !Number.isFinite(delta))
      return `delta for "${field}" is not a finite number`;
    const value = next[field] ?? 0;
    if (typeof value !== 'number') return `field "${field}" is not a number`;
    const sum = value + delta;
    // Past this a double no longer holds every integer, and past the largest double JSON has no number.
    if (Math.abs(sum) > Number.MAX_SAFE_INTEGER) {
      return `incrementing "${field}" would pass ±9007199254740991, beyond what is stored exactly`;
    }
    next[field] = sum;
  }
  return next;
}

/** The data a mutation produces from `base` (its own op applied); a message when it cannot apply. */
function nextData(mutation: Mutation, base: Record<string, unknown>): Record<string, unknown> | string {
  switch (mutation.op) {
    case 'put':
      return mutation.data!;
    case 'patch':
      return applyMergePatch(base, mutation.data) as Record<string, unknown>;
    case 'increment':
      return incrementData(base, mutation.data!);
    case 'delete':
      return base;
  }
}

/** What the client meant to end with, from the version it started from (null for a delete). */
function proposedData(
  mutation: Mutation,
  base: Record<string, unknown> | null,
): Record<string, unknown> | null | string {
  if (mutation.op === 'delete') return null;
  if (mutation.op === 'put') return mutation.data!;
  return nextData(mutation, base ?? {});
}

export function applyMutation(mutation: Mutation, ctx: MutationContext): MutationOutcome {
  const { current } = ctx;
  const live = current && !current.deleted ? current : null;
  if (mutation.op !== 'delete' && mutation.data === undefined) {
    return reject(mutation, 'BAD_REQUEST', `${mutation.op} needs data`);
  }
  if (mutation.op === 'delete' && !live) return reject(mutation, 'NOT_FOUND', 'record does not exist');

  const currentVersion = current?.version ?? 0;
  let merged: Record<string, unknown> | null = null;
  if (
    mutation.baseVersion !== undefined &&
    mutation.baseVersion !== currentVersion &&
    mutation.op !== 'increment'
  ) {
    if (current) {
      const proposed = proposedData(mutation, ctx.base);
      if (typeof proposed === 'string') return reject(mutation, 'BAD_REQUEST', proposed);
      const decision = ctx.strategy.decide({
        current,
        base: ctx.base,
        proposed,
        mutation,
        incomingHlc: ctx.hlc,
        settings: ctx.settings,
      });
      if (decision.kind === 'reject') return reject(mutation, 'CONFLICT', decision.reason, current);
      if (decision.kind === 'manual') {
        return { status: 'conflict', reason: decision.reason, current, base: ctx.base, proposed };
      }
      if (decision.kind === 'merged') merged = decision.data;
    }
  }

  const baseData = live?.data ?? {};
  let data: Record<string, unknown>;
  if (merged) data = merged;
  else {
    const next = nextData(mutation, baseData);
    if (typeof next === 'string') return reject(mutation, 'BAD_REQUEST', next);
    data = next;
  }
  if ((merged || mutation.op !== 'delete') && ctx.validate) {
    const errors = ctx.validate(data);
    if (errors)
      return reject(mutation, 'BAD_REQUEST', 'data does not match the collection schema', null, errors);
  }

  const hlc = current && ctx.hlc <= current.hlc ? ctx.serverHlc() : ctx.hlc;
  const record: SyncRecord = {
    collection: mutation.collection,
    id: mutation.id,
    data,
    version: currentVersion + 1,
    hlc,
    updatedAt: ctx.now,
    updatedBy: ctx.actor,
    deleted: mutation.op === 'delete' && !merged,
  };
  return {
    status: merged ? 'merged' : 'applied',
    record,
    event: {
      eventId: ctx.eventId,
      kind: 'record',
      collection: record.collection,
      id: record.id,
      op: merged ? 'put' : mutation.op,
      version: record.version,
      data,
      hlc,
      actor: ctx.actor,
      ts: ctx.now,
    },
  };
}
