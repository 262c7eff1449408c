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
import type {
  AttemptResult,
  CounterDelta,
  CycleInput,
  CycleOutput,
  DeliveryRow,
  Lease,
  LedgerStore,
  LedgerTransaction,
} from '../store/webhook-types.ts';

export type { Lease, LedgerStore, LedgerTransaction } from '../store/webhook-types.ts';

type Awaitable<T> = T | Promise<T>;

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

  unclaim(node: string, deliveryIds: string[]): Promise<void> {
    return this.store.unclaim(node, deliveryIds);
  }

  renewLeases(node: string, deliveryIds: string[], until: number): Promise<void> {
    return this.store.renewLeases(node, deliveryIds, until);
  }

  pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]> {
    return this.store.pendingEndpoints();
  }
}

/** Folds attempt results (in the order they finished) into one counter change per endpoint. */
export function counterDeltas(results: AttemptResult[], now: number): CounterDelta[] {
  const byEndpoint = new Map<string, CounterDelta>();
  for (const r of results) {
    const key = `${r.tenant}\u0000${r.webhookId}`;
    let d = byEndpoint.get(key);
    if (!d) {
      d = {
        tenant: r.tenant,
        webhookId: r.webhookId,
        calls: 0,
        failed: 0,
        reset: false,
        consecutive: 0,
        succeededAt: null,
        failedAt: null,
        disable: null,
      };
      byEndpoint.set(key, d);
    }
    d.calls += 1;
    if (r.success) {
      d.reset = true;
      d.consecutive = 0;
      d.succeededAt = now;
    } else {
      d.failed += 1;
      d.failedAt = now;
      if (r.countsAsFailure) d.consecutive += 1;
    }
    if (r.disable) d.disable = r.disable;
  }
  return [...byEndpoint.values()];
}
