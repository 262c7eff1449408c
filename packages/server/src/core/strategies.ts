/**
 * Conflict strategies: what happens when a mutation's `baseVersion` is not the record's current version.
 * A strategy is a pure decision over the two sides (and the version both started from, when it is
 * still kept); the mutation engine carries it out. Custom resolvers registered in code plug in by name.
 */
import type { CollectionSettings, Mutation, Strategy, SyncRecord } from '@syncbridge/protocol';
import { mergeRecords } from './merge.ts';

export interface ConflictInput {
  /** The record as the server has it now. */
  current: SyncRecord;
  /** The record's data at the mutation's baseVersion, or null when that version is no longer kept. */
  base: Record<string, unknown> | null;
  /** The data the client meant to end with: its change applied to the base (null for a delete). */
  proposed: Record<string, unknown> | null;
  mutation: Mutation;
  /** The HLC the incoming change carries (clamped), or the server's own when the client sent none. */
  incomingHlc: string;
  settings: CollectionSettings;
}

export type ConflictDecision =
  /** Apply the mutation to the current record as if there were no conflict. */
  | { kind: 'apply' }
  /** Write this data as the next version (status `merged`). */
  | { kind: 'merged'; data: Record<string, unknown> }
  /** Refuse the mutation; the reply carries the current record. */
  | { kind: 'reject'; reason: string }
  /** Store a conflict for a person to resolve; the current record stays. */
  | { kind: 'manual'; reason: string };

export interface ConflictStrategy {
  readonly name: string;
  decide(input: ConflictInput): ConflictDecision;
}

/** A resolver registered in code for `strategy: custom` collections (`resolver: <name>`). */
export type ConflictResolver = (input: ConflictInput) => ConflictDecision;

const lww: ConflictStrategy = {
  name: 'lww',
  decide: ({ current, incomingHlc }) =>
    incomingHlc > current.hlc
      ? { kind: 'apply' }
      : { kind: 'reject', reason: `a later change (hlc ${current.hlc}) already won` },
};

const serverWins: ConflictStrategy = {
  name: 'server_wins',
  decide: ({ current }) => ({
    kind: 'reject',
    reason: `record is at version ${current.version}; the server's version stands`,
  }),
};

const clientWins: ConflictStrategy = { name: 'client_wins', decide: () => ({ kind: 'apply' }) };

const manual: ConflictStrategy = {
  name: 'manual',
  decide: ({ current, mutation }) => ({
    kind: 'manual',
    reason: `record is at version ${current.version}, the change was based on ${mutation.baseVersion}`,
  }),
};

const merge: ConflictStrategy = {
  name: 'merge',
  decide: (input) => {
    const { current, base, proposed, incomingHlc, settings } = input;
    const fallback = settings.mergeFallback ?? 'lww';
    const clientLater = incomingHlc > current.hlc;
    // Without the base version (compacted) or for a delete against a changed record, there is
    // nothing to merge field by field: settle the whole record by the fallback.
    if (base === null || proposed === null || current.deleted) {
      if (fallback === 'manual') return manual.decide(input);
      return clientLater ? { kind: 'apply' } : lww.decide(input);
    }
    const outcome = mergeRecords(base, current.data, proposed, {
      textFields: new Set(settings.textFields ?? []),
      clientWinsClash: clientLater,
      fallback,
    });
    if (outcome.clashes.length > 0) {
      return { kind: 'manual', reason: `both sides changed ${outcome.clashes.join(', ')}` };
    }
    return { kind: 'merged', data: outcome.data };
  },
};

export const BUILTIN_STRATEGIES: Record<Exclude<Strategy, 'custom'>, ConflictStrategy> = {
  lww,
  server_wins: serverWins,
  client_wins: clientWins,
  merge,
  manual,
};

/** Whether deciding (or storing a conflict) needs the record's data at the mutation's base version. */
export function needsBase(strategy: Strategy | undefined): boolean {
  return strategy === 'merge' || strategy === 'custom' || strategy === 'manual';
}
