/**
 * Conflict strategies: what happens when a mutation's `baseVersion` is not the record's current version.
 * A strategy is a pure decision over the two sides; the mutation engine applies it. New strategies
 * (merge, manual, custom resolvers) plug in here by name without touching the write path.
 */
import type { Mutation, Strategy, SyncRecord } from '@syncbridge/protocol';

export interface ConflictInput {
  current: SyncRecord;
  mutation: Mutation;
  /** The HLC the incoming change carries (clamped), or the server's own when the client sent none. */
  incomingHlc: string;
}

export type ConflictDecision = { apply: true } | { apply: false; reason: string };

export interface ConflictStrategy {
  readonly name: string;
  decide(input: ConflictInput): ConflictDecision;
}

const lww: ConflictStrategy = {
  name: 'lww',
  decide: ({ current, incomingHlc }) =>
    incomingHlc > current.hlc
      ? { apply: true }
      : { apply: false, reason: `a later change (hlc ${current.hlc}) already won` },
};

const serverWins: ConflictStrategy = {
  name: 'server_wins',
  decide: ({ current }) => ({
    apply: false,
    reason: `record is at version ${current.version}; the server's version stands`,
  }),
};

export const BUILTIN_STRATEGIES: Record<Strategy, ConflictStrategy> = {
  lww,
  server_wins: serverWins,
};
