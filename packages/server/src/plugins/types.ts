/**
 * The plugin API: middleware around the write path and projections over the log, registered in code
 * when the server starts (`startServer(config, { middleware, projections, resolvers })`).
 *
 * @example
 * ```ts
 * const noNegativeStock: Middleware = {
 *   beforeMutation({ mutation, current }) {
 *     const qty = mutation.op === 'increment' ? ((current?.data.qty as number) ?? 0) + Number(mutation.data?.qty ?? 0) : undefined;
 *     if (qty !== undefined && qty < 0) throw new SyncError('BAD_REQUEST', 'stock cannot go below zero');
 *   },
 * };
 * ```
 */
import type { LogEvent, Mutation, SyncRecord } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';

export interface BeforeMutationContext {
  principal: Principal;
  mutation: Mutation;
  /** The record as it is before this mutation (null when it does not exist). */
  current: SyncRecord | null;
}

export interface Middleware {
  /**
   * Runs inside the write transaction, before the mutation is applied. Throw a SyncError to reject
   * the mutation (its result is `rejected` with that code); return a mutation to apply it instead.
   * Synchronous on purpose: it must not hold the tenant's write lock while waiting on I/O.
   */
  beforeMutation?(context: BeforeMutationContext): Mutation | undefined;
  /** Runs after a commit, with the tenant's new events in seq order. Errors are logged, never retried. */
  afterCommit?(tenant: string, events: LogEvent[]): void | Promise<void>;
}

/**
 * A projection: a reducer over a tenant's log that maintains a derived view in seq order (for example
 * stock totals per product across locations). Its state is rebuilt from the log when first read after
 * a start, then kept current as events commit.
 */
export interface Projection<State = unknown> {
  name: string;
  initial(): State;
  apply(state: State, event: LogEvent): State;
  /**
   * A projection folds every event of the tenant, whatever the access rules. While a collection of the
   * tenant has a read rule that applies to the caller, only tenant admins may read its state, unless it
   * says here that its state shows nothing those rules protect (docs/access-rules.md).
   */
  public?: boolean;
}
