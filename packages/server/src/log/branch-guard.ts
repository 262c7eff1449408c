/**
 * Writes to a branch (`<collection>@<branch>`, core/branches.ts) need the branch: a mutation of record `id`
 * on branch `b` is refused with NOT_FOUND unless `b` was forked from that record, and with CONFLICT once it
 * was merged (but for a delete, which deleting the branch writes). Wraps the LogWriter's requests, so REST, WebSocket `mutate` and `POST /v1/mutations` all pass
 * the same check; the fork itself writes the branch's first version through the unguarded writer.
 */
import type { Mutation, MutationResult } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { branchOf, mainCollection } from '../core/branches.ts';
import type { LogWrites } from './ports.ts';

/** Looks a branch up: null when there is none. */
export type BranchLookup = (
  tenant: string,
  collection: string,
  recordId: string,
  name: string,
) => Promise<{ mergedAt: string | null } | null>;

export function guardBranchWrites(inner: LogWrites, lookup: BranchLookup): LogWrites {
  async function refusal(principal: Principal, m: Mutation): Promise<MutationResult | null> {
    const branch = branchOf(m.collection);
    if (branch === null) return null;
    const found = await lookup(principal.tenant, mainCollection(m.collection), m.id, branch);
    const error = !found
      ? { code: 'NOT_FOUND', message: `record ${m.id} has no branch "${branch}"` }
      : found.mergedAt && m.op !== 'delete'
        ? { code: 'CONFLICT', message: `branch "${branch}" was merged at ${found.mergedAt}` }
        : null;
    return error ? { mid: m.mid, status: 'rejected', error } : null;
  }

  return {
    async mutate(principal, mutations) {
      const refused = new Map<number, MutationResult>();
      for (const [i, m] of mutations.entries()) {
        const r = await refusal(principal, m);
        if (r) refused.set(i, r);
      }
      if (refused.size === 0) return inner.mutate(principal, mutations);
      const accepted = mutations.filter((_, i) => !refused.has(i));
      const results = accepted.length > 0 ? await inner.mutate(principal, accepted) : [];
      let next = 0;
      return mutations.map((_, i) => refused.get(i) ?? results[next++]!);
    },
    publish: (principal, event, options) => inner.publish(principal, event, options),
    resolve: (principal, request) => inner.resolve(principal, request),
    assertStorable: (value, what) => inner.assertStorable(value, what),
  };
}
