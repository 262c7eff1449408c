/**
 * The webhook ledger: the delivery state machine of one worker step, written once above the drivers.
 * A step, in ONE transaction: record every finished attempt (attempt log, delivery state), fold the
 * attempts into each endpoint's counters, disable an endpoint that answered 410 or failed too many times
 * in a row, then lease the due deliveries of the endpoints that asked (an ordered endpoint: its
 * lowest-seq pending delivery only, when it is due and free). A driver gives the primitives of that
 * transaction, in SQL only (store/sqlite, store/postgres); the order and the rules are here.
 * It must never decide anything a driver could decide differently: disable reasons, which endpoint is
 * disabled, and the order of claimed deliveries come from this module.
 */
import { type CounterDelta, counterDeltas } from './rows.ts';
import type { AttemptResult, ClaimRequest, CycleInput, CycleOutput, DeliveryRow } from './types.ts';

type Awaitable<T> = T | Promise<T>;

/** The lease a claim takes: held by `node` until `until`; rows are due and free at `now`. */
export interface Lease {
  node: string;
  until: number;
  now: number;
}

/**
 * The primitives of one step's transaction. A synchronous driver (SQLite) returns plain values; an
 * asynchronous one (PostgreSQL) promises.
 */
export interface LedgerTransaction {
  /** Logs the attempts and moves each still-pending delivery to its next state, unleased. */
  recordAttempts(results: readonly AttemptResult[], now: number): Awaitable<void>;
  /** Adds one endpoint's counter change (calls, failures, consecutive failures, last times). */
  addCounters(delta: CounterDelta, now: number): Awaitable<void>;
  /** Disables the endpoint unless it is disabled already; true if it changed. */
  disable(tenant: string, id: string, reason: string, now: number): Awaitable<boolean>;
  /** Disables the endpoint if it is active with at least `threshold` consecutive failures; true if it changed. */
  disableFailing(
    tenant: string,
    id: string,
    reason: string,
    now: number,
    threshold: number,
  ): Awaitable<boolean>;
  /** Leases the endpoint's lowest-seq pending delivery if it is due and free. */
  claimHead(claim: ClaimRequest, lease: Lease): Awaitable<DeliveryRow | null>;
  /** Leases up to `claim.limit` due and free pending deliveries of the endpoint, lowest seq first. */
  claimDue(claim: ClaimRequest, lease: Lease): Awaitable<DeliveryRow[]>;
}

/** What the ledger needs of a store: the step's transaction, and the lease bookkeeping outside it. */
export interface LedgerStore {
  /** true: `transact` runs its body synchronously, and the primitives return plain values. */
  readonly synchronousLedger: boolean;
  /** Runs `body` in one transaction. */
  transact<R>(body: (tx: LedgerTransaction) => R): Promise<Awaited<R>>;
  /** Drops the leases a node held (it restarted: whatever it was sending is not in flight any more). */
  releaseLeases(node: string): Promise<number>;
  /** Extends the leases this node still holds on these deliveries (they are still being sent). */
  renewLeases(node: string, deliveryIds: string[], until: number): Promise<void>;
  /** Endpoints with pending deliveries and the earliest `nextAttemptAt` among them. */
  pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]>;
}

/** One primitive call of a step, run by the driver's runner on the step's transaction. */
type Call = (tx: LedgerTransaction) => Awaitable<unknown>;
type Script<R> = Generator<Call, R, unknown>;

/** Asks the transaction for one thing and hands back its answer. */
function* ask<T>(call: (tx: LedgerTransaction) => Awaitable<T>): Generator<Call, T, unknown> {
  return (yield call) as T;
}

/** The disable reason of too many failures in a row (shown to operators and in the endpoint's status). */
export function failingReason(disableAfter: number): string {
  return `disabled after ${disableAfter} failed attempts in a row`;
}

function* cycleScript(input: CycleInput): Script<CycleOutput> {
  const { now, results } = input;
  if (results.length > 0) yield (tx) => tx.recordAttempts(results, now);
  const disabled: CycleOutput['disabled'] = [];
  for (const d of counterDeltas(results, now)) {
    yield (tx) => tx.addCounters(d, now);
    const reason = d.disable;
    if (reason) {
      if (yield* ask((tx) => tx.disable(d.tenant, d.webhookId, reason, now))) {
        disabled.push({ tenant: d.tenant, id: d.webhookId, reason });
      }
    } else if (d.consecutive > 0 && input.disableAfter > 0) {
      const failing = failingReason(input.disableAfter);
      if (yield* ask((tx) => tx.disableFailing(d.tenant, d.webhookId, failing, now, input.disableAfter))) {
        disabled.push({ tenant: d.tenant, id: d.webhookId, reason: failing });
      }
    }
  }
  const lease: Lease = { node: input.node, until: input.leaseUntil, now };
  const claimed: DeliveryRow[] = [];
  for (const c of input.claims) {
    if (c.ordered) {
      const head = yield* ask((tx) => tx.claimHead(c, lease));
      if (head) claimed.push(head);
    } else {
      const rows = yield* ask((tx) => tx.claimDue(c, lease));
      claimed.push(...[...rows].sort((a, b) => a.seq - b.seq));
    }
  }
  return { claimed, disabled };
}

function runSync<R>(script: Script<R>, tx: LedgerTransaction): R {
  let step = script.next();
  while (!step.done) {
    const answer = step.value(tx);
    if (answer instanceof Promise) throw new Error('a synchronous ledger driver returned a promise');
    step = script.next(answer);
  }
  return step.value;
}

async function runAsync<R>(script: Script<R>, tx: LedgerTransaction): Promise<R> {
  let step = script.next();
  while (!step.done) step = script.next(await step.value(tx));
  return step.value;
}

/** The port the dispatcher uses: a worker step, and the lease bookkeeping. */
export class WebhookLedger {
  constructor(private readonly store: LedgerStore) {}

  /**
   * One worker step in one transaction: records finished attempts (delivery state, attempt log,
   * endpoint counters), disables endpoints that must be, then leases due deliveries.
   */
  cycle(input: CycleInput): Promise<CycleOutput> {
    if (this.store.synchronousLedger) return this.store.transact((tx) => runSync(cycleScript(input), tx));
    return this.store.transact((tx) => runAsync(cycleScript(input), tx));
  }

  releaseLeases(node: string): Promise<number> {
    return this.store.releaseLeases(node);
  }

  renewLeases(node: string, deliveryIds: string[], until: number): Promise<void> {
    return this.store.renewLeases(node, deliveryIds, until);
  }

  pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]> {
    return this.store.pendingEndpoints();
  }
}
