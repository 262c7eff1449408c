/**
 * One tenant's share of a group commit: runs inside the write transaction after the tenant's lock is
 * taken, turns each queued request into results, log events, record versions and conflicts, and writes
 * them with one `writeBatch`. Request-level failures (unknown conflict, bad resolution, a result that
 * cannot be stored, even an exception thrown while applying one mutation) settle that request only;
 * only store failures throw, so that only they make the log writer re-run a batch.
 */
import { randomUUID } from 'node:crypto';
import type {
  Conflict,
  LogEvent,
  Mutation,
  MutationResult,
  NewDomainEvent,
  SyncRecord,
} from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../auth/principal.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import { assertResolvable, conflictIsStale, previousOf, resolveConflict } from '../core/conflicts.ts';
import { SyncError } from '../core/errors.ts';
import type { HybridClock } from '../core/hlc.ts';
import { DEFAULT_JSON_LIMITS, type JsonLimits, jsonProblem, storableJsonError } from '../core/json-limits.ts';
import { applyMutation } from '../core/mutations.ts';
import { needsBase } from '../core/strategies.ts';
import type { Middleware } from '../plugins/types.ts';
import { visibleConflict } from '../rules/conflicts.ts';
import { replayedResult } from '../rules/reads.ts';
import { hiddenFromWriter, refusedHiddenWrite, refusedWrite, visibleRecord } from '../rules/writes.ts';
import { type RecordKey, recordKey, type VersionKey, versionKey, type WriteTx } from '../store/types.ts';
import type { Outbox } from './outbox.ts';
import type { GroupResult, PendingWrite, WriteGroup } from './pending-writes.ts';
import { reusedMidRefusal } from './reused-mid.ts';
import {
  EVENT_KEY_PREFIX,
  GROUP_KEY_PREFIX,
  mutationKey,
  recordEvent,
  type StaleWrite,
  type TenantCommit,
} from './tenant-commit.ts';

export { CONFLICT_RESOLVED_EVENT } from '../core/conflicts.ts';
export type { StaleWrite, TenantCommit } from './tenant-commit.ts';

export class TenantWriter {
  private head = 0;
  private readonly events: LogEvent[] = [];
  private readonly changed = new Map<string, SyncRecord>();
  private readonly conflicts = new Map<string, Conflict>();
  private readonly newResults: { key: string; result: MutationResult }[] = [];
  private readonly settle: Array<() => void> = [];
  private readonly statuses: MutationResult['status'][] = [];
  private readonly stale: StaleWrite[] = [];
  private prior = new Map<string, MutationResult>();
  private records = new Map<string, SyncRecord>();
  private bases = new Map<string, Record<string, unknown>>();
  /** Some mutation of this batch names a baseVersion: only then are base versions remembered. */
  private tracksBases = false;
  private readonly now = new Date().toISOString();
  private readonly serverHlc = () => this.clock.tick();
  private readonly peekCollection = (name: string) => this.collections.peek(this.tenant, name);

  constructor(
    private readonly tx: WriteTx,
    private readonly tenant: string,
    private readonly collections: CollectionRegistry,
    private readonly clock: HybridClock,
    private readonly middleware: readonly Middleware[] = [],
    private readonly outbox?: Outbox,
    private readonly limits: JsonLimits = DEFAULT_JSON_LIMITS,
  ) {}

  async run(writes: PendingWrite[]): Promise<TenantCommit> {
    const { tx, tenant } = this;
    const lock = await tx.lockTenant(tenant);
    this.head = lock.head;
    await this.collections.sync(tenant, lock.collectionsVersion);
    await this.outbox?.sync(tenant, lock.hooksVersion);
    await this.load(writes);
    for (const w of writes) {
      if (w.kind === 'event') this.publish(w);
      else if (w.kind === 'groups') {
        const results = w.groups.map((g) => this.group(w.principal, g));
        this.settle.push(() => w.resolve(results));
      } else if (w.kind === 'mutations') {
        const results = w.mutations.map((m) => this.mutate(w.principal, m));
        this.settle.push(() => w.resolve(results));
      } else {
        try {
          const result = await this.resolveConflict(w);
          this.settle.push(() => w.resolve(result));
        } catch (err) {
          if (!(err instanceof SyncError)) throw err;
          this.settle.push(() => w.reject(err));
        }
      }
    }
    // The outbox: webhook deliveries of these events commit with them, or not at all.
    const deliveries = this.outbox && this.events.length > 0 ? this.outbox.plan(tenant, this.events) : [];
    if (this.events.length > 0 || this.newResults.length > 0 || this.conflicts.size > 0) {
      await tx.writeBatch(tenant, {
        records: [...this.changed.values()],
        events: this.events,
        results: this.newResults,
        conflicts: [...this.conflicts.values()],
        head: this.head,
        ...(deliveries.length > 0 ? { deliveries } : {}),
      });
    }
    return {
      tenant,
      deliveries,
      statuses: this.statuses,
      stale: this.stale,
      events: this.events,
      conflicts: [...this.conflicts.values()],
      settle: this.settle,
    };
  }

  /** Reads, in a few queries, everything the requests need: earlier results, records, base versions. */
  private async load(writes: PendingWrite[]): Promise<void> {
    const { tx, tenant } = this;
    const resultKeys = new Set<string>();
    const recordKeys = new Map<string, RecordKey>();
    // A middleware may give a mutation a baseVersion of its own.
    this.tracksBases = this.middleware.some((mw) => mw.beforeMutation);
    for (const w of writes) {
      if (w.kind === 'groups') for (const g of w.groups) resultKeys.add(GROUP_KEY_PREFIX + g.marker);
      if (w.kind === 'mutations' || w.kind === 'groups') {
        for (const m of w.kind === 'groups' ? w.groups.flatMap((g) => g.mutations) : w.mutations) {
          resultKeys.add(mutationKey(m.mid));
          recordKeys.set(recordKey(m.collection, m.id), { collection: m.collection, id: m.id });
          if (m.baseVersion !== undefined) this.tracksBases = true;
        }
      } else if (w.kind === 'event' && w.event.idempotencyKey) {
        resultKeys.add(EVENT_KEY_PREFIX + w.event.idempotencyKey);
      }
    }
    if (resultKeys.size > 0) this.prior = await tx.getResults(tenant, [...resultKeys]);
    if (recordKeys.size > 0) this.records = await tx.getRecords(tenant, [...recordKeys.values()]);
    // Without a baseVersion in the batch no base is ever looked up (applyOne), so none is remembered.
    if (!this.tracksBases) return;
    // A mutation based on a record's current version becomes stale when an earlier one of this batch
    // changes the record: its base is the version loaded here.
    for (const r of this.records.values()) this.bases.set(versionKey(r.collection, r.id, r.version), r.data);
    const versions: VersionKey[] = [];
    for (const w of writes) {
      if (w.kind !== 'mutations' && w.kind !== 'groups') continue;
      for (const m of w.kind === 'groups' ? w.groups.flatMap((g) => g.mutations) : w.mutations) {
        if (m.baseVersion === undefined || m.baseVersion === 0) continue;
        const current = this.records.get(recordKey(m.collection, m.id));
        const settings = this.collections.peek(tenant, m.collection)?.settings;
        if (current && current.version !== m.baseVersion && needsBase(settings?.strategy)) {
          versions.push({ collection: m.collection, id: m.id, version: m.baseVersion });
        }
      }
    }
    if (versions.length > 0) {
      for (const [key, data] of await tx.getVersionData(tenant, versions)) this.bases.set(key, data);
    }
  }

  private append(event: Omit<LogEvent, 'seq'>): LogEvent {
    const logged = { seq: ++this.head, ...event } as LogEvent;
    this.events.push(logged);
    return logged;
  }

  private remember(key: string, result: MutationResult): void {
    this.prior.set(key, result);
    this.newResults.push({ key, result });
  }

  private writeRecord(record: SyncRecord, key = recordKey(record.collection, record.id)): void {
    this.records.set(key, record);
    this.changed.set(key, record);
    // A later mutation of this batch may be based on this version.
    if (this.tracksBases)
      this.bases.set(versionKey(record.collection, record.id, record.version), record.data);
  }

  /** A write group: once per marker, its mutations then its events, with consecutive seqs. */
  private group(principal: Principal, group: WriteGroup): GroupResult {
    const key = GROUP_KEY_PREFIX + group.marker;
    const first = this.prior.get(key);
    if (first) return { duplicate: true, seq: first.seq ?? 0, results: [] };
    const before = this.head;
    const results = group.mutations.map((m) => this.mutate(principal, m));
    for (const event of group.events) this.publishEvent(principal, event);
    const seq = this.head > before ? this.head : 0;
    this.remember(key, { mid: key, status: 'applied', seq });
    return { duplicate: false, seq, results };
  }

  private publish(w: Extract<PendingWrite, { kind: 'event' }>): void {
    const key = w.event.idempotencyKey ? EVENT_KEY_PREFIX + w.event.idempotencyKey : null;
    const first = key ? this.prior.get(key) : undefined;
    if (first) {
      this.settle.push(() => w.resolve({ seq: first.seq!, eventId: first.eventId!, duplicate: true }));
      return;
    }
    const event = this.publishEvent(w.principal, w.event);
    if (key) this.remember(key, { mid: key, status: 'applied', seq: event.seq, eventId: event.eventId });
    this.settle.push(() => w.resolve({ seq: event.seq, eventId: event.eventId }));
  }

  private publishEvent(principal: Principal, input: NewDomainEvent): LogEvent {
    const w = { principal, event: input };
    const draft: Omit<LogEvent, 'seq'> = {
      eventId: randomUUID(),
      kind: 'event',
      type: w.event.type,
      actor: w.principal.user,
      ts: this.now,
      hlc: this.clock.tick(),
    };
    if (w.event.payload !== undefined) draft.payload = w.event.payload;
    const source = w.principal.platform ?? w.event.source;
    if (source) draft.source = source;
    if (w.event.target) draft.target = w.event.target;
    if (w.event.priority !== undefined) draft.priority = w.event.priority;
    if (w.principal.deviceId) draft.device = w.principal.deviceId;
    return this.append(draft);
  }

  private mutate(principal: Principal, m: Mutation): MutationResult {
    const key = mutationKey(m.mid);
    const first = this.prior.get(key);
    if (first) {
      const refusal = reusedMidRefusal(first, m);
      this.statuses.push(refusal ? 'rejected' : 'duplicate');
      if (refusal) return refusal;
      return replayedResult(principal, this.peekCollection, first);
    }
    // As core/mutations sees it: a base that is not the current version of an existing record.
    const recKey = recordKey(m.collection, m.id);
    const current = this.records.get(recKey);
    const stale = m.baseVersion !== undefined && m.op !== 'increment' && current?.version !== m.baseVersion;
    let result: MutationResult;
    try {
      result = this.applyOne(principal, m, recKey);
    } catch (err) {
      // Applying is pure computation (no I/O): whatever it throws belongs to this mutation alone, and is
      // not stored, so a replay of the mid meets the same answer rather than a remembered one.
      if (err instanceof SyncError) throw err;
      this.statuses.push('rejected');
      return {
        mid: m.mid,
        status: 'rejected',
        error: { code: 'BAD_REQUEST', message: 'the mutation could not be applied to this record' },
      };
    }
    this.remember(key, result);
    this.statuses.push(result.status);
    if (stale && current) {
      const strategy = this.collections.peek(this.tenant, m.collection)?.strategy.name ?? 'unknown';
      this.stale.push({ strategy, status: result.status });
    }
    return result;
  }

  /** Applies one mutation to the record at `recKey` (its collection and id: middleware keeps them). */
  private applyOne(principal: Principal, original: Mutation, recKey: string): MutationResult {
    const actor = principal.user;
    let m = original;
    for (const mw of this.middleware) {
      if (!mw.beforeMutation) continue;
      try {
        const current = this.records.get(recKey) ?? null;
        // A middleware may change what a mutation does, never which record or idempotency key it has.
        const { mid, collection, id } = original;
        m = { ...(mw.beforeMutation({ principal, mutation: m, current }) ?? m), mid, collection, id };
      } catch (err) {
        if (!(err instanceof SyncError)) throw err;
        const error: NonNullable<MutationResult['error']> = { code: err.code, message: err.message };
        if (err.details !== undefined) error.details = err.details;
        return { mid: original.mid, status: 'rejected', error };
      }
    }
    const hlc = m.hlc === undefined ? this.clock.tick() : this.clock.receive(m.hlc);
    if (hlc === null) {
      return {
        mid: m.mid,
        status: 'rejected',
        error: { code: 'BAD_REQUEST', message: 'hlc is not a hybrid logical clock timestamp' },
      };
    }
    const collection = this.collections.peek(this.tenant, m.collection)!;
    const stored = this.records.get(recKey) ?? null;
    // A record the read rule hides from this writer is written to as if missing (rules/writes.ts).
    const hidden = hiddenFromWriter(principal, collection, stored);
    const current = hidden ? null : stored;
    const base =
      hidden || m.baseVersion === undefined
        ? null
        : (this.bases.get(versionKey(m.collection, m.id, m.baseVersion)) ?? null);
    let outcome: ReturnType<typeof applyMutation>;
    try {
      outcome = applyMutation(m, {
        current,
        strategy: collection.strategy,
        settings: collection.settings,
        base,
        validate: collection.validate,
        actor,
        hlc,
        serverHlc: this.serverHlc,
        now: this.now,
        eventId: randomUUID(),
      });
    } catch (err) {
      // A custom resolver refusing with a SyncError refuses this mutation only, as middleware does.
      if (!(err instanceof SyncError)) throw err;
      const error: NonNullable<MutationResult['error']> = { code: err.code, message: err.message };
      if (err.details !== undefined) error.details = err.details;
      return { mid: m.mid, status: 'rejected', error };
    }
    if (outcome.status === 'rejected') return outcome.result;
    if (hidden) return refusedHiddenWrite(m);
    // Access rules see the stored record and what the write would make of it; a conflict is only stored
    // for a writer who may make the change it proposes.
    const next =
      outcome.status === 'conflict' ? outcome.proposed : outcome.record.deleted ? null : outcome.record.data;
    const refused = refusedWrite(principal, collection, m, current, next);
    if (refused) return refused;
    if (outcome.status !== 'conflict' && m.op === 'patch') {
      // A patch is checked on what it produces: small patches can grow a record past the limits.
      const problem = jsonProblem(outcome.record.data, this.limits);
      if (problem) {
        const err = storableJsonError(problem, 'the patched data');
        return { mid: m.mid, status: 'rejected', error: { code: err.code, message: err.message } };
      }
    }
    if (outcome.status === 'conflict') {
      const conflict: Conflict = {
        id: randomUUID(),
        collection: m.collection,
        recordId: m.id,
        status: 'open',
        strategy: collection.strategy.name,
        reason: outcome.reason,
        mid: m.mid,
        op: m.op,
        baseVersion: m.baseVersion ?? 0,
        base: outcome.base,
        serverVersion: outcome.current.version,
        server: outcome.current.data,
        client: outcome.proposed,
        actor,
        ...(principal.deviceId ? { deviceId: principal.deviceId } : {}),
        createdAt: this.now,
      };
      this.conflicts.set(conflict.id, conflict);
      return {
        mid: m.mid,
        status: 'conflict',
        conflictId: conflict.id,
        version: outcome.current.version,
        record: visibleRecord(principal, collection, outcome.current),
        error: { code: 'CONFLICT', message: outcome.reason },
      };
    }
    const previous = previousOf(outcome.event, current && !current.deleted ? current.data : null);
    const event = recordEvent(++this.head, outcome.event, previous, principal.deviceId);
    this.events.push(event);
    this.writeRecord(outcome.record, recKey);
    return {
      mid: m.mid,
      status: outcome.status,
      version: outcome.record.version,
      seq: event.seq,
      eventId: event.eventId,
      record: visibleRecord(principal, collection, outcome.record),
    };
  }

  /** Carries out a person's decision on a stored conflict (core/conflicts.ts decides; this persists it). */
  private async resolveConflict(w: Extract<PendingWrite, { kind: 'resolve' }>): Promise<MutationResult> {
    const { conflictId, resolution, data } = w.request;
    const conflict = this.conflicts.get(conflictId) ?? (await this.tx.getConflict(this.tenant, conflictId));
    const by = {
      user: w.principal.user,
      admin: isTenantAdmin(w.principal),
      ...(w.principal.deviceId ? { deviceId: w.principal.deviceId } : {}),
    };
    const ruled = conflict ? await this.collections.get(this.tenant, conflict.collection) : undefined;
    // A conflict whose record the read rule hides from the caller is missing, before anything else is said.
    if (conflict && !visibleConflict(w.principal, ruled, conflict))
      throw new SyncError('NOT_FOUND', `no conflict ${conflictId}`);
    assertResolvable(conflictId, conflict, resolution, data, by);
    const key = recordKey(conflict.collection, conflict.recordId);
    if (!this.records.has(key)) {
      const found = await this.tx.getRecords(this.tenant, [
        { collection: conflict.collection, id: conflict.recordId },
      ]);
      const record = found.get(key);
      if (record) this.records.set(key, record);
    }
    const current = this.records.get(key) ?? null;
    const stale = conflictIsStale(conflict, current);
    const collection = stale ? null : ruled!;
    if (collection && resolution !== 'accept_server') {
      // Only a user the access rules let make this change may resolve the conflict with it.
      const chosen = resolution === 'merge' ? (data ?? null) : conflict.client;
      const op = chosen === null ? 'delete' : 'put';
      const refused = refusedWrite(
        w.principal,
        collection,
        { collection: conflict.collection, mid: conflictId, op, id: conflict.recordId },
        current,
        chosen,
      );
      if (refused) throw new SyncError('FORBIDDEN', refused.error!.message);
    }
    const outcome = resolveConflict({
      conflict,
      current,
      resolution,
      ...(data ? { data } : {}),
      by,
      validate: collection?.validate ?? null,
      head: this.head,
      now: this.now,
      tick: () => this.clock.tick(),
      newEventId: randomUUID,
    });
    for (const event of outcome.events) this.events.push(event);
    this.head += outcome.events.length;
    if (outcome.record) this.writeRecord(outcome.record);
    this.conflicts.set(conflictId, outcome.conflict);
    // The resolver sees the record as the access rules show it (hidden fields removed).
    const shown = outcome.result.record;
    return shown ? { ...outcome.result, record: visibleRecord(w.principal, ruled!, shown) } : outcome.result;
  }
}
