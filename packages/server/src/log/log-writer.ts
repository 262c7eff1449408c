/**
 * LogWriter: the one write path into a tenant's log. Mutations and domain events from every connection
 * and REST call queue here and are committed in groups: everything that arrives while a transaction is
 * in flight goes into the next one, so one fsync (SQLite) or one round trip series (PostgreSQL) serves
 * many writers. A caller's promise resolves only after its transaction has committed (durable before
 * acknowledged), and listeners hear about committed events in seq order. On a store that commits
 * tenants independently (PostgreSQL) each tenant has its own queue and commits of different tenants
 * are in flight at once (commit-pipelines.ts); on SQLite one group commit at a time serves every tenant
 * (on its commit thread, each tenant's part computed ahead and all of them durable in one transaction;
 * the event loop serves clients meanwhile, and what arrives joins the next group).
 *
 * It must never acknowledge a write whose transaction failed, and a failure caused by one request
 * must not fail the others that shared its batch (the batch is retried one request at a time). Input
 * that cannot be stored (core/json-limits.ts) is refused here, before it joins a batch: a hostile write
 * must cost the writers it would have shared a transaction with nothing.
 */
import type { Conflict, LogEvent, Mutation, MutationResult, NewDomainEvent } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import { SyncError } from '../core/errors.ts';
import type { HybridClock } from '../core/hlc.ts';
import {
  assertStorableJson,
  DEFAULT_JSON_LIMITS,
  type JsonLimits,
  jsonProblem,
  storableJsonError,
  unreachableName,
} from '../core/json-limits.ts';
import { assertNoNul } from '../core/nul.ts';
import type { Middleware } from '../plugins/types.ts';
import type { CommitPipeline, WriteTx } from '../store/types.ts';
import { CommitPipelines } from './commit-pipelines.ts';
import { type Outbox, plannedBy } from './outbox.ts';
import {
  type GroupResult,
  type PendingWrite,
  type PublishResult,
  type ResolveRequest,
  type WriteGroup,
  writeSize,
} from './pending-writes.ts';
import type { LogStore, LogWrites, PublishOptions } from './ports.ts';
import { type StaleWrite, type TenantCommit, TenantWriter } from './tenant-writer.ts';

export type { GroupResult, PublishResult, ResolveRequest, WriteGroup } from './pending-writes.ts';

export type CommitListener = (tenant: string, events: LogEvent[]) => void;
export type ConflictListener = (tenant: string, conflicts: Conflict[]) => void;

export interface WriteObserver {
  /** A group committed: how many writes it held, how long the transaction took, what each mutation became. */
  committed(
    writes: number,
    seconds: number,
    statuses: MutationResult['status'][],
    stale: readonly StaleWrite[],
  ): void;
  /** A write was acknowledged: seconds from its arrival here to its commit being settled. */
  acknowledged?(kind: PendingWrite['kind'], seconds: number): void;
}

export interface LogWriterOptions {
  store: LogStore;
  collections: CollectionRegistry;
  clock: HybridClock;
  logger: Logger;
  middleware?: readonly Middleware[];
  /** Hears each committed group and each acknowledged write (metrics). */
  observer?: WriteObserver;
  /** Most mutations (or events) committed in one transaction. */
  maxBatch?: number;
  /** Webhook deliveries to write with each commit's events (the outbox), and to hear about after it. */
  outbox?: Outbox;
  /** What stored JSON may hold (depth, size); writes past it are refused with BAD_REQUEST. */
  jsonLimits?: JsonLimits;
  /**
   * Commits of different tenants in flight at once, on a store that commits tenants independently
   * (`Store.commitTenant`, PostgreSQL). Default 6. A store without it has one writer: one group commit
   * at a time, across tenants.
   */
  maxTenantCommits?: number;
}

/** Why a mutation cannot be stored, before it is applied to anything; null when it can be tried. */
function mutationProblem(m: Mutation, limits: JsonLimits): SyncError | null {
  if (unreachableName(m.collection) || unreachableName(m.id)) {
    return new SyncError('BAD_REQUEST', 'a collection or record id cannot be "." or ".."');
  }
  if (m.data === undefined) return null;
  const problem = jsonProblem(m.data, limits);
  return problem ? storableJsonError(problem, 'data') : null;
}

/**
 * A write holding U+0000 anywhere, refused before it joins a batch: PostgreSQL would fail the whole
 * group commit on it, SQLite would store it (core/nul.ts). Covers writers that are not REST or
 * WebSocket clients (connectors, inbound webhooks).
 */
function refuseNul(value: unknown, what: string): Promise<never> | null {
  try {
    assertNoNul(value, what);
    return null;
  } catch (err) {
    return Promise.reject(err);
  }
}

export class LogWriter implements LogWrites {
  private queue: PendingWrite[] = [];
  private flushing = false;
  private scheduled = false;
  private idle: Array<() => void> = [];
  private readonly listeners: CommitListener[] = [];
  private readonly conflictListeners: ConflictListener[] = [];
  private readonly maxBatch: number;
  private readonly limits: JsonLimits;

  /** Per-tenant pipelines, when the store commits tenants independently; else the one queue above. */
  private readonly pipelines: CommitPipelines | null;

  constructor(private readonly options: LogWriterOptions) {
    this.maxBatch = options.maxBatch ?? 2000;
    this.limits = options.jsonLimits ?? DEFAULT_JSON_LIMITS;
    this.pipelines =
      options.store.commitTenant && !options.store.singleWriter
        ? new CommitPipelines(
            (_tenant, batch, pipeline) => this.commitBatch(batch, pipeline),
            this.maxBatch,
            Math.max(1, options.maxTenantCommits ?? 6),
          )
        : null;
  }

  /** Throws BAD_REQUEST when `value` cannot be stored within this writer's limits (any stored JSON). */
  assertStorable(value: unknown, what: string): void {
    assertStorableJson(value, this.limits, what);
  }

  /** Hears every committed batch of a tenant's events, in seq order. */
  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  /** Hears conflicts stored or resolved by each commit, after it committed. */
  onConflicts(listener: ConflictListener): void {
    this.conflictListeners.push(listener);
  }

  /** Resolves a stored conflict: `accept_local`, `accept_server` or `merge` with data. */
  resolve(principal: Principal, request: ResolveRequest): Promise<MutationResult> {
    const refused = refuseNul(request, 'the resolution');
    if (refused) return refused;
    try {
      if (request.data !== undefined) assertStorableJson(request.data, this.limits, 'data');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'resolve', principal, request, resolve, reject });
    });
  }

  /**
   * Applies mutations in order; the results come back in the same order. A mutation that cannot be
   * stored is `rejected` with BAD_REQUEST at once and never joins a batch; the others are committed.
   */
  mutate(principal: Principal, mutations: Mutation[]): Promise<MutationResult[]> {
    const withNul = refuseNul(mutations, 'the mutations');
    if (withNul) return withNul;
    const refused = new Map<number, MutationResult>();
    mutations.forEach((m, i) => {
      const err = mutationProblem(m, this.limits);
      if (err) {
        const error = { code: err.code, message: err.message, details: err.details };
        refused.set(i, { mid: m.mid, status: 'rejected', error });
      }
    });
    if (refused.size === mutations.length) return Promise.resolve(mutations.map((_, i) => refused.get(i)!));
    const accepted = refused.size === 0 ? mutations : mutations.filter((_, i) => !refused.has(i));
    const committed = new Promise<MutationResult[]>((resolve, reject) => {
      this.enqueue({ kind: 'mutations', principal, mutations: accepted, resolve, reject });
    });
    if (refused.size === 0) return committed;
    return committed.then((results) => {
      let next = 0;
      return mutations.map((_, i) => refused.get(i) ?? results[next++]!);
    });
  }

  publish(principal: Principal, event: NewDomainEvent, options: PublishOptions = {}): Promise<PublishResult> {
    const refused = refuseNul(event, 'the event') ?? (options.system ? null : refuseReservedType(event));
    if (refused) return refused;
    if (principal.platform && event.source && event.source !== principal.platform) {
      return Promise.reject(
        new SyncError(
          'FORBIDDEN',
          `this token speaks for platform "${principal.platform}", not "${event.source}"`,
        ),
      );
    }
    const problem = event.payload === undefined ? null : jsonProblem(event.payload, this.limits);
    if (problem) return Promise.reject(storableJsonError(problem, 'payload'));
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'event', principal, event, resolve, reject });
    });
  }

  /**
   * Commits groups of mutations and events, in order, all in one transaction or none; each group's
   * entries get consecutive seqs, once per marker (a group whose marker was committed before resolves
   * as a duplicate, writing nothing). Groups holding anything that cannot be stored are refused whole
   * with BAD_REQUEST before they join a batch.
   */
  groups(principal: Principal, groups: WriteGroup[]): Promise<GroupResult[]> {
    const refused = refuseNul(groups, 'the group');
    if (refused) return refused;
    for (const group of groups) {
      for (const m of group.mutations) {
        const err = mutationProblem(m, this.limits);
        if (err) return Promise.reject(err);
      }
      for (const event of group.events) {
        const reserved = refuseReservedType(event);
        if (reserved) return reserved;
        const problem = event.payload === undefined ? null : jsonProblem(event.payload, this.limits);
        if (problem) return Promise.reject(storableJsonError(problem, 'payload'));
      }
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'groups', principal, groups, resolve, reject });
    });
  }

  /** Resolves once every write queued so far has committed or failed. */
  drain(): Promise<void> {
    if (this.pipelines) return this.pipelines.drain();
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private enqueue(write: PendingWrite): void {
    const acknowledged = this.options.observer?.acknowledged;
    if (acknowledged) {
      const started = performance.now();
      const resolve = write.resolve as (value: unknown) => void;
      write.resolve = (value: unknown) => {
        acknowledged(write.kind, (performance.now() - started) / 1000);
        resolve(value);
      };
    }
    if (this.pipelines) {
      this.pipelines.push(write);
      return;
    }
    this.queue.push(write);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private takeBatch(): PendingWrite[] {
    let size = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || size < this.maxBatch)) {
      size += writeSize(this.queue[n]!);
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        if (this.options.store.commitTenant) {
          // A single writer committing tenants one call each (SQLite's commit thread): every tenant of
          // the batch at once, made durable together; each tenant's failure is its own.
          await Promise.all(byTenant(batch).map((writes) => this.commitBatch(writes)));
        } else await this.commitBatch(batch);
      }
    } finally {
      this.flushing = false;
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  /** With `pipeline` (one tenant's batch), settles only after the tenant's previous batch settled. */
  private async commitBatch(batch: PendingWrite[], pipeline?: CommitPipeline): Promise<void> {
    try {
      await this.preloadCollections(batch);
      await this.commitAndSettle(batch, pipeline);
    } catch (err) {
      if (err instanceof SyncError && err.code === 'UNAVAILABLE') {
        // The store itself is busy, full or unreachable (its translator says so): no request caused it,
        // so none is retried alone against it; every writer is told to retry with the same mid.
        this.logUnavailable(err);
        for (const write of batch) write.reject(err);
        return;
      }
      if (batch.length > 1) {
        // One request may have caused the failure: retry each alone so the others still commit.
        const alone = pipeline && { prepared: () => {}, after: pipeline.after };
        for (const write of batch) await this.commitBatch([write], alone);
        return;
      }
      const write = batch[0]!;
      if (err instanceof SyncError) write.reject(err);
      else {
        this.options.logger.error({ err }, 'write transaction failed');
        write.reject(
          new SyncError('UNAVAILABLE', 'the write could not be committed; retry with the same mid'),
        );
      }
    }
  }

  private lastUnavailableLog = 0;

  /** An unavailable store is logged with its driver's error, at most once a second. */
  private logUnavailable(err: SyncError): void {
    const now = Date.now();
    if (now - this.lastUnavailableLog < 1000) return;
    this.lastUnavailableLog = now;
    this.options.logger.warn({ err: err.cause ?? err }, `write transaction failed: ${err.message}`);
  }

  private async preloadCollections(batch: PendingWrite[]): Promise<void> {
    for (const write of batch) {
      if (write.kind !== 'mutations' && write.kind !== 'groups') continue;
      for (const m of write.kind === 'groups' ? write.groups.flatMap((g) => g.mutations) : write.mutations) {
        if (!this.options.collections.peek(write.principal.tenant, m.collection)) {
          await this.options.collections.get(write.principal.tenant, m.collection);
        }
      }
    }
  }

  private async commitAndSettle(batch: PendingWrite[], pipeline?: CommitPipeline): Promise<void> {
    const writes = new Map<string, PendingWrite[]>();
    for (const list of byTenant(batch)) writes.set(list[0]!.principal.tenant, list);
    // Tenants lock in sorted order, so two nodes committing the same tenants cannot deadlock.
    const tenants = [...writes.keys()].sort();
    const started = performance.now();
    const { store, collections, clock, middleware } = this.options;
    const outbox = this.options.outbox && plannedBy(this.options.outbox);
    const writer = (tx: WriteTx, tenant: string) =>
      new TenantWriter(tx, tenant, collections, clock, middleware, outbox?.port, this.limits);
    const only = tenants.length === 1 ? tenants[0]! : null;
    let settled: TenantCommit[] = [];
    try {
      settled =
        only !== null && store.commitTenant
          ? [await store.commitTenant(only, (tx) => writer(tx, only).run(writes.get(only)!), pipeline)]
          : await store.transaction(async (tx) => {
              const out: TenantCommit[] = [];
              for (const tenant of tenants) out.push(await writer(tx, tenant).run(writes.get(tenant)!));
              return out;
            });
    } finally {
      // Deliveries planned by a transaction that failed, or by a try computed again, were not written.
      outbox?.settle(settled);
    }
    await pipeline?.after;
    this.options.observer?.committed(
      batch.reduce((n, w) => n + writeSize(w), 0),
      (performance.now() - started) / 1000,
      settled.flatMap((s) => s.statuses),
      settled.flatMap((s) => s.stale),
    );
    const deliveries = settled.flatMap((s) => s.deliveries);
    if (deliveries.length > 0) {
      try {
        this.options.outbox?.committed(deliveries);
      } catch (err) {
        this.options.logger.error({ err }, 'outbox listener failed');
      }
    }
    for (const { tenant, events, conflicts } of settled) {
      if (events.length > 0) this.notify(this.listeners, tenant, events);
      if (conflicts.length > 0) this.notify(this.conflictListeners, tenant, conflicts);
    }
    for (const { settle } of settled) for (const fn of settle) fn();
  }

  private notify<T>(
    listeners: Array<(tenant: string, items: T[]) => void>,
    tenant: string,
    items: T[],
  ): void {
    for (const listener of listeners) {
      try {
        listener(tenant, items);
      } catch (err) {
        this.options.logger.error({ err }, 'commit listener failed');
      }
    }
  }
}

/** A batch's writes by tenant, each list in arrival order. */
function byTenant(batch: PendingWrite[]): PendingWrite[][] {
  const lists = new Map<string, PendingWrite[]>();
  for (const write of batch) {
    const list = lists.get(write.principal.tenant);
    if (list) list.push(write);
    else lists.set(write.principal.tenant, [write]);
  }
  return [...lists.values()];
}

/** The prefix of the server's own event types: nobody else may publish them (they would pass for audit). */
export const RESERVED_EVENT_PREFIX = 'syncbridge.';

function refuseReservedType(event: NewDomainEvent): Promise<never> | null {
  if (typeof event.type !== 'string' || !event.type.startsWith(RESERVED_EVENT_PREFIX)) return null;
  return Promise.reject(
    new SyncError(
      'FORBIDDEN',
      `event types starting with "${RESERVED_EVENT_PREFIX}" are reserved for the server`,
    ),
  );
}
