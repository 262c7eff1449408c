/**
 * The mutation engine: given a record's current state and one mutation, decides the outcome
 * (a new record version and its log entry, or a rejection). Pure: no I/O, no clock of its own;
 * the write path supplies the current state, the HLC and the time, and persists what comes out.
 */
import type { LogEvent, Mutation, MutationResult, SyncRecord } from '@syncbridge/protocol';
import { applyMergePatch } from './merge-patch.ts';
import type { ConflictStrategy } from './strategies.ts';

export interface MutationContext {
  current: SyncRecord | null;
  strategy: ConflictStrategy;
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
  | { status: 'applied'; record: SyncRecord; event: Omit<LogEvent, 'seq'> }
  | { status: 'rejected'; result: MutationResult };

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
    next[field] = value + delta;
  }
  return next;
}

export function applyMutation(mutation: Mutation, ctx: MutationContext): MutationOutcome {
  const { current } = ctx;
  const live = current && !current.deleted ? current : null;
  if (mutation.op !== 'delete' && mutation.data === undefined) {
    return reject(mutation, 'BAD_REQUEST', `${mutation.op} needs data`);
  }
  if (mutation.op === 'delete' && !live) return reject(mutation, 'NOT_FOUND', 'record does not exist');

  const currentVersion = current?.version ?? 0;
  if (
    mutation.baseVersion !== undefined &&
    mutation.baseVersion !== currentVersion &&
    mutation.op !== 'increment'
  ) {
    if (current) {
      const decision = ctx.strategy.decide({ current, mutation, incomingHlc: ctx.hlc });
      if (!decision.apply) return reject(mutation, 'CONFLICT', decision.reason, current);
    }
  }

  const baseData = live?.data ?? {};
  let data: Record<string, unknown>;
  switch (mutation.op) {
    case 'put':
      data = mutation.data!;
      break;
    case 'patch':
      data = applyMergePatch(baseData, mutation.data) as Record<string, unknown>;
      break;
    case 'increment': {
      const next = incrementData(baseData, mutation.data!);
      if (typeof next === 'string') return reject(mutation, 'BAD_REQUEST', next);
      data = next;
      break;
    }
    case 'delete':
      data = baseData;
      break;
  }
  if (mutation.op !== 'delete' && ctx.validate) {
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
    deleted: mutation.op === 'delete',
  };
  return {
    status: 'applied',
    record,
    event: {
      eventId: ctx.eventId,
      kind: 'record',
      collection: record.collection,
      id: record.id,
      op: mutation.op,
      version: record.version,
      data,
      hlc,
      actor: ctx.actor,
      ts: ctx.now,
    },
  };
}
