/**
 * `collection.branch(name)`: a branch of the collection's records (server: `<collection>@<branch>`),
 * with the same API as a collection (cache, subscriptions on `records:<collection>@<branch>`, optimistic
 * writes through the offline queue) plus the branch's lifecycle over REST: fork a record into it, compare
 * it with the main line, merge it back, delete it.
 */
import type {
  BranchDiffResponse,
  BranchInfo,
  BranchMergeResponse,
  BranchResponse,
  ErrorCode,
} from '@syncbridge/protocol';
import { Collection, type CollectionDeps } from './collection.ts';
import { SyncClientError } from './errors.ts';
import type { JsonObject } from './rebase.ts';

/** How a branch reaches the server's REST routes: its HTTP base and the current token. */
export interface BranchRest {
  httpUrl: string;
  token: () => string | null;
}

async function call<R>(rest: BranchRest, method: string, path: string, body?: unknown): Promise<R> {
  const token = rest.token();
  const res = await fetch(`${rest.httpUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as R;
  const parsed = (await res.json().catch(() => null)) as
    | (R & { error?: { code: ErrorCode; message: string; details?: unknown } })
    | null;
  if (!res.ok || !parsed) {
    const error = parsed?.error;
    throw new SyncClientError(
      error?.code ?? 'INTERNAL',
      error?.message ?? `HTTP ${res.status}`,
      error?.details,
    );
  }
  return parsed;
}

export class Branch<T extends object = JsonObject> extends Collection<T> {
  constructor(
    /** The main line's collection. */
    readonly collection: string,
    /** The branch's name. */
    readonly branchName: string,
    deps: CollectionDeps,
    private readonly rest: BranchRest,
  ) {
    super(`${collection}@${branchName}`, deps);
  }

  private path(id: string, tail = ''): string {
    const c = encodeURIComponent(this.collection);
    return `/v1/records/${c}/${encodeURIComponent(id)}/branches${tail}`;
  }

  /**
   * Forks record `id` of the main line (at `fromVersion`, default its current version) into this branch.
   * @example const review = docs.branch('review'); await review.fork('plan');
   */
  fork(id: string, options: { fromVersion?: number } = {}): Promise<BranchResponse> {
    return call(this.rest, 'POST', this.path(id), { name: this.branchName, ...options });
  }

  /** The branch of record `id` (fork point, merge state) and its current version. */
  info(id: string): Promise<BranchInfo> {
    return call<BranchResponse>(
      this.rest,
      'GET',
      this.path(id, `/${encodeURIComponent(this.branchName)}`),
    ).then((r) => r.branch);
  }

  /** What this branch and the main line each changed since the fork, by field path. */
  diff(id: string): Promise<BranchDiffResponse> {
    return call(this.rest, 'GET', this.path(id, `/${encodeURIComponent(this.branchName)}/diff`));
  }

  /**
   * Merges the branch of record `id` back into the main line with the collection's three-way merge;
   * `status: 'conflict'` when both sides changed a field and the collection settles that by hand.
   */
  merge(id: string): Promise<BranchMergeResponse> {
    return call(this.rest, 'POST', this.path(id, `/${encodeURIComponent(this.branchName)}/merge`));
  }

  /** Deletes the branch of record `id` (its record on the branch becomes a tombstone). */
  async deleteBranch(id: string): Promise<void> {
    await call(this.rest, 'DELETE', this.path(id, `/${encodeURIComponent(this.branchName)}`));
  }
}
