/**
 * Replays pending local operations over a record's server state, with the server's own rules
 * (put replaces, patch is an RFC 7396 merge patch, increment adds deltas, delete removes), so that what
 * the application sees while offline is what the server will hold once the queue is through.
 */
import { applyMergePatch, type MutationOp } from '@syncbridge/protocol';

export type JsonObject = Record<string, unknown>;

export interface PendingOp {
  mid: string;
  id: string;
  op: MutationOp;
  data?: JsonObject;
  /** True once it may have reached the server (sent, or restored from storage): its result is awaited. */
  sent: boolean;
}

function increment(base: JsonObject, deltas: JsonObject): JsonObject {
  const next = { ...base };
  for (const [field, delta] of Object.entries(deltas)) {
    const value = next[field] ?? 0;
    // The server rejects a non-numeric delta or field; locally such an op changes nothing.
    if (typeof delta === 'number' && typeof value === 'number') next[field] = value + delta;
  }
  return next;
}

/** The data after applying `ops` in order to `base` (null: no record). */
export function rebase(base: JsonObject | null, ops: readonly PendingOp[]): JsonObject | null {
  let data = base;
  for (const op of ops) {
    switch (op.op) {
      case 'put':
        data = op.data ?? {};
        break;
      case 'patch':
        data = applyMergePatch(data ?? {}, op.data ?? {}) as JsonObject;
        break;
      case 'increment':
        data = increment(data ?? {}, op.data ?? {});
        break;
      case 'delete':
        data = null;
        break;
    }
  }
  return data;
}
