/**
 * LogWriter: the one write path into a tenant's log. Mutations and domain events from every connection
 * and REST call queue here and are committed in groups: everything that arrives while a transaction is
 * in flight goes into the next one, so one fsync (SQLite) or one round trip series (PostgreSQL) serves
 * many writers. A caller's promise resolves only after its transaction has committed (durable before
 * acknowledged), and listeners hear about committed events in seq order.
 *
 * It must never acknowledge a write whose transaction failed, and a failure caused by one request
 * must not fail the others that shared its batch (the batch is retried one request at a time).
 */
import { randomUUID } from 'node:crypto';
import type { LogEvent, Mutation, MutationResult, NewDomainEvent, SyncRecord } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import { SyncError } from '../core/errors.ts';
import type { HybridClock } from '../core/hlc.ts';
import { applyMutation } from '../core/mutations.ts';
import { type RecordKey, recordKey, type Store, type WriteTx } from './types.ts';

export type CommitListener = (tenant: string, events: LogEvent[]) => void;

export interface PublishResult {
  seq: number;
  eventId: string;
  duplicate?: boolean;
}

type PendingWrite =
  | {
      kind: 'mutations';
      principal: Principal;
      mutations: Mutation[];
      resolve: (results: MutationResult[]) => void;
      reject: (err: unknown) => void;
    }
  | {
      kind: 'event';
      principal: Principal;
      event: NewDomainEvent;
      resolve: (result: PublishResult) => void;
      reject: (err: unknown) => void;
    };

export interface LogWriterOptions {
  store: Store;
  collections: CollectionRegistry;
  clock: HybridClock;
  logger: Logger;
  /** Most mutations (or events) committed in one transaction. */
  maxBatch?: number;
}

const EVENT_KEY_PREFIX = 'evt:';

/**
 * The idempotency key of a mutation: its mid, except that a mid which itself starts with `evt:` or
 * `mid:` is stored as `mid:<mid>`, so no client-chosen mid can collide with an event's key.
 */
function mutationKey(mid: string): string {
  return mid.startsWith(EVENT_KEY_PREFIX) || mid.startsWith('mid:') ? `mid:${mid}` : mid;
}

export class LogWriter {
  private queue: PendingWrite[] = [];
  private flushing = false;
  private scheduled = false;
  private idle: Array<() => void> = [];
  private readonly listeners: CommitListener[] = [];
  private readonly maxBatch: number;

  constructor(private readonly options: LogWriterOptions) {
    this.maxBatch = options.maxBatch ?? 2000;
  }

  /** Hears every committed batch of a tenant's events, in seq order. */
  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  mutate(principal: Principal, mutations: Mutation[]): Promise<MutationResult[]> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'mutations', principal, mutations, resolve, reject });
    });
  }

  publish(principal: Principal, event: NewDomainEvent): Promise<PublishResult> {
    if (principal.platform && event.source && event.source !== principal.platform) {
      return Promise.reject(
        new SyncError(
          'FORBIDDEN',
          `this token speaks for platform "${principal.platform}", not "${event.source}"`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'event', principal, event, resolve, reject });
    });
  }

  /** Resolves once every write queued so far has committed or failed. */
  drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private enqueue(write: PendingWrite): void {
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
      const w = this.queue[n]!;
      size += w.kind === 'mutations' ? w.mutations.length : 1;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        await this.commitBatch(batch);
      }
    } finally {
      this.flushing = false;
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    try {
      await this.preloadCollections(batch);
      await this.commitAndSettle(batch);
    } catch (err) {
      if (batch.length > 1) {
        // One request may have caused the failure: retry each alone so the others still commit.
        for (const write of batch) await this.commitBatch([write]);
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

  private async preloadCollections(batch: PendingWrite[]): Promise<void> {
    for (const write of batch) {
      if (write.kind !== 'mutations') continue;
      for (const m of write.mutations) {
        if (!this.options.collections.peek(write.principal.tenant, m.collection)) {
          await this.options.collections.get(write.principal.tenant, m.collection);
        }
      }
    }
  }

  private async commitAndSettle(batch: PendingWrite[]): Promise<void> {
    const byTenant = new Map<string, PendingWrite[]>();
    for (const write of batch) {
      const list = byTenant.get(write.principal.tenant);
      if (list) list.push(write);
      else byTenant.set(write.principal.tenant, [write]);
    }
    const settled = await this.options.store.transaction(async (tx) => {
      const out: { tenant: string; events: LogEvent[]; settle: Array<() => void> }[] = [];
      for (const [tenant, writes] of byTenant) out.push(await this.writeTenant(tx, tenant, writes));
      return out;
    });
    for (const { tenant, events } of settled) {
      if (events.length === 0) continue;
      for (const listener of this.listeners) {
        try {
          listener(tenant, events);
        } catch (err) {
          this.options.logger.error({ err }, 'commit listener failed');
        }
      }
    }
    for (const { settle } of settled) for (const fn of settle) fn();
  }

  private async writeTenant(
    tx: WriteTx,
    tenant: string,
    writes: PendingWrite[],
  ): Promise<{ tenant: string; events: LogEvent[]; settle: Array<() => void> }> {
    const { clock, collections } = this.options;
    let head = await tx.lockTenant(tenant);
    const resultKeys = new Set<string>();
    const recordKeys = new Map<string, RecordKey>();
    for (const w of writes) {
      if (w.kind === 'mutations') {
        for (const m of w.mutations) {
          resultKeys.add(mutationKey(m.mid));
          recordKeys.set(recordKey(m.collection, m.id), { collection: m.collection, id: m.id });
        }
      } else if (w.event.idempotencyKey) resultKeys.add(EVENT_KEY_PREFIX + w.event.idempotencyKey);
    }
    const prior = resultKeys.size ? await tx.getResults(tenant, [...resultKeys]) : new Map();
    const records: Map<string, SyncRecord> = recordKeys.size
      ? await tx.getRecords(tenant, [...recordKeys.values()])
      : new Map();
    const changed = new Map<string, SyncRecord>();
    const events: LogEvent[] = [];
    const newResults: { key: string; result: MutationResult }[] = [];
    const settle: Array<() => void> = [];
    const now = new Date().toISOString();

    for (const w of writes) {
      if (w.kind === 'event') {
        const key = w.event.idempotencyKey ? EVENT_KEY_PREFIX + w.event.idempotencyKey : null;
        const first = key ? prior.get(key) : undefined;
        if (first) {
          settle.push(() => w.resolve({ seq: first.seq!, eventId: first.eventId!, duplicate: true }));
          continue;
        }
        const event: LogEvent = {
          seq: ++head,
          eventId: randomUUID(),
          kind: 'event',
          type: w.event.type,
          actor: w.principal.user,
          ts: now,
          hlc: clock.tick(),
        };
        if (w.event.payload !== undefined) event.payload = w.event.payload;
        const source = w.principal.platform ?? w.event.source;
        if (source) event.source = source;
        if (w.event.target) event.target = w.event.target;
        if (w.event.priority !== undefined) event.priority = w.event.priority;
        events.push(event);
        if (key) {
          const result: MutationResult = {
            mid: key,
            status: 'applied',
            seq: event.seq,
            eventId: event.eventId,
          };
          prior.set(key, result);
          newResults.push({ key, result });
        }
        settle.push(() => w.resolve({ seq: event.seq, eventId: event.eventId }));
        continue;
      }
      const results: MutationResult[] = [];
      for (const m of w.mutations) {
        const first = prior.get(mutationKey(m.mid));
        if (first) {
          results.push({
            ...first,
            status: 'duplicate',
            originalStatus: first.originalStatus ?? first.status,
          });
          continue;
        }
        let result: MutationResult;
        const hlc = m.hlc === undefined ? clock.tick() : clock.receive(m.hlc);
        if (hlc === null) {
          result = {
            mid: m.mid,
            status: 'rejected',
            error: { code: 'BAD_REQUEST', message: 'hlc is not a hybrid logical clock timestamp' },
          };
        } else {
          const key = recordKey(m.collection, m.id);
          const collection = collections.peek(tenant, m.collection)!;
          const outcome = applyMutation(m, {
            current: records.get(key) ?? null,
            strategy: collection.strategy,
            settings: collection.settings,
            base: null,
            validate: collection.validate,
            actor: w.principal.user,
            hlc,
            serverHlc: () => clock.tick(),
            now,
            eventId: randomUUID(),
          });
          if (outcome.status === 'rejected') result = outcome.result;
          else if (outcome.status === 'conflict') {
            result = {
              mid: m.mid,
              status: 'rejected',
              version: outcome.current.version,
              record: outcome.current,
              error: { code: 'CONFLICT', message: outcome.reason },
            };
          } else {
            const event: LogEvent = { seq: ++head, ...outcome.event };
            events.push(event);
            records.set(key, outcome.record);
            changed.set(key, outcome.record);
            result = {
              mid: m.mid,
              status: outcome.status,
              version: outcome.record.version,
              seq: event.seq,
              eventId: event.eventId,
              record: outcome.record,
            };
          }
        }
        prior.set(mutationKey(m.mid), result);
        newResults.push({ key: mutationKey(m.mid), result });
        results.push(result);
      }
      settle.push(() => w.resolve(results));
    }
    if (events.length > 0 || newResults.length > 0) {
      await tx.writeBatch(tenant, { records: [...changed.values()], events, results: newResults, head });
    }
    return { tenant, events, settle };
  }
}
