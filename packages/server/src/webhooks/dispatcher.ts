/**
 * The delivery worker. It runs in steps (`cycle`): each step records, in one store transaction, every
 * attempt that finished since the last step and leases the next due deliveries of every endpoint that
 * has room, then starts those POSTs. So the store sees one transaction per step, however many
 * deliveries are in flight.
 *
 * Per endpoint: at most `maxConcurrency` deliveries in flight (one for an `ordered` endpoint, which sends
 * its lowest-seq pending delivery and nothing else until that one succeeds or is dead-lettered), at most
 * `rateLimit` starts per second. Nothing is shared between endpoints but the step, and a step never waits
 * for an HTTP request, so a slow or dead endpoint delays only itself.
 *
 * A commit's own deliveries need no claim (leased.ts): while their endpoint (parallel, active, without a
 * rate limit) has room and nothing older waits, `reserve` (inside the commit's transaction) has them
 * written already leased to this node, and `notify` sends them from memory once the commit is durable;
 * `abandon` frees the room of those whose commit did not happen. Leased deliveries not started yet
 * (shutdown, endpoint paused meanwhile) are given back with their attempt. A crash then is a crash
 * with leased deliveries, below.
 *
 * An endpoint is looked at when it may have work: after a commit queued deliveries for it, when a send
 * to it finished, when one of its retries falls due, and on the periodic poll (which also finds work
 * other nodes left, or leases that ran out). A crash loses nothing: deliveries are rows, and a leased
 * delivery whose sender died is sent again when the lease ends, or at once when its node restarts.
 * When an endpoint is looked at is the scheduler's (endpoint-scheduler.ts); what an answer means is
 * `classifyAttempt`'s (attempt.ts).
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { type BucketSpec, TokenBucket } from '../core/token-bucket.ts';
import { classifyAttempt } from './attempt.ts';
import { EndpointScheduler, type EndpointState } from './endpoint-scheduler.ts';
import {
  abandonLeases,
  type Holder,
  held,
  holdCommitted,
  holdRow,
  leaseCap,
  pumpReady,
  reserveLeases,
} from './leased.ts';
import type { WebhookLedger } from './ledger.ts';
import type { WebhookRegistry } from './registry.ts';
import type { WebhookSender } from './sender.ts';
import { signatureHeaders } from './signing.ts';
import type {
  AttemptResult,
  ClaimRequest,
  CycleOutput,
  DeliveryRow,
  NewDelivery,
  WebhookEndpoint,
} from './types.ts';

export interface DispatcherOptions {
  /** The deliveries' state: each step is one ledger cycle. */
  ledger: WebhookLedger;
  registry: WebhookRegistry;
  sender: WebhookSender;
  logger: Logger;
  node: string;
  /** Waits before each retry (ms). */
  schedule: readonly number[];
  timeoutMs: number;
  /** Consecutive failed attempts that disable an endpoint (0: never). */
  disableAfter: number;
  pollMs: number;
  /** How long a lease holds a delivery for its sender. */
  leaseMs: number;
  /** Called after an endpoint's status changed here (to refresh views). */
  onStatusChange?: (endpoint: WebhookEndpoint) => void;
  /** Called once per attempt this node made, when its answer (or failure) is known (metrics). */
  onAttempt?: (attempt: AttemptObservation) => void;
}

/** One attempt as metrics see it. */
export interface AttemptObservation {
  success: boolean;
  /** The endpoint's HTTP status, or null when it gave none (timeout, refused, blocked address). */
  statusCode: number | null;
  durationMs: number;
  /** The platform the endpoint delivers to (null: none named). */
  platform: string | null;
  /** Milliseconds from the event's commit to this attempt's end. */
  sinceCommitMs: number;
  /** This was the delivery's last try: it is now a dead letter. */
  deadLetter: boolean;
}

const key = (tenant: string, id: string) => `${tenant}\u0000${id}`;

/** A step that only records waits up to STEP_WAIT_MS for this many finished attempts while sends run. */
const STEP_RESULTS = 32;
const STEP_WAIT_MS = 5;

/** An endpoint's start rate as a bucket: `rate` starts per second, at most `rate` at once. */
const rateSpec = (rate: number): BucketSpec => ({ ratePerSec: rate, burst: rate });

export class WebhookDispatcher {
  private readonly scheduler: EndpointScheduler;
  private results: AttemptResult[] = [];
  private running = false;
  private again = false;
  private closed = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly sends = new Set<Promise<void>>();
  /** Deliveries this node is sending, whose leases it renews. */
  private readonly leased = new Set<string>();
  private renewTimer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];
  private readonly holder: Holder;

  constructor(private readonly o: DispatcherOptions) {
    // Every send listens on the one shutdown signal.
    setMaxListeners(0, this.abort.signal);
    this.scheduler = new EndpointScheduler(o.pollMs, () => this.wake());
    this.holder = {
      closed: () => this.closed,
      launch: (row) => this.launch(row),
      leased: this.leased,
      scheduler: this.scheduler,
      dispatcher: o,
    };
  }

  async start(): Promise<void> {
    // Whatever this node was sending when it stopped is not in flight any more.
    const released = await this.o.ledger.releaseLeases(this.o.node);
    if (released > 0)
      this.o.logger.info({ released }, 'webhook deliveries left in flight by the last run are due again');
    await this.poll();
    this.pollTimer = setInterval(() => void this.poll(), this.o.pollMs);
    this.pollTimer.unref();
    this.renewTimer = setInterval(() => void this.renew(), Math.max(200, Math.floor(this.o.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /** Inside a commit's transaction: leases to this node those it can start at once (leased.ts). */
  reserve(deliveries: readonly NewDelivery[]): void {
    if (!this.closed) reserveLeases(this.holder, deliveries, Date.now() + this.o.leaseMs);
  }

  /** Reserved deliveries whose commit did not happen: their room is free again. */
  abandon(deliveries: readonly NewDelivery[]): void {
    if (abandonLeases(this.holder, deliveries)) this.wake();
  }

  /** Deliveries were committed: the leased ones are sent now, the others' endpoints have work. */
  notify(deliveries: readonly NewDelivery[]): void {
    holdCommitted(this.holder, deliveries);
    this.wake();
  }

  /** An API call made deliveries of these endpoints due (trigger, retry, replay, resume). */
  touch(endpoints: Iterable<{ tenant: string; id: string }>): void {
    for (const e of endpoints) this.scheduler.markHot(e.tenant, e.id);
    this.wake();
  }

  /** Deliveries currently being sent by this node. */
  get inFlight(): number {
    return this.sends.size;
  }

  /** A lease is a heartbeat: while a send runs, its lease keeps being extended. */
  private async renew(): Promise<void> {
    if (this.closed || this.leased.size === 0) return;
    try {
      await this.o.ledger.renewLeases(this.o.node, [...this.leased], Date.now() + this.o.leaseMs);
    } catch (err) {
      this.o.logger.warn({ err }, 'could not renew webhook leases');
    }
  }

  private async poll(): Promise<void> {
    if (this.closed) return;
    try {
      await this.o.registry.load();
      const now = Date.now();
      for (const p of await this.o.ledger.pendingEndpoints()) {
        if (p.nextAttemptAt <= now) this.scheduler.markHot(p.tenant, p.webhookId);
        else if (p.nextAttemptAt - now < this.o.pollMs * 2)
          this.scheduler.dueAt(p.tenant, p.webhookId, p.nextAttemptAt);
      }
      this.wake();
    } catch (err) {
      this.o.logger.warn({ err }, 'webhook poll failed; retrying at the next poll');
    }
  }

  private wake(): void {
    if (this.closed && this.results.length === 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    // While other sends are still running, wait a moment so that the step records several of them
    // in one transaction instead of one transaction each; longer when the step only records (a
    // commit's own deliveries start without one), shorter when it also claims what waits.
    const claims = this.anyReady();
    const [results, wait] = claims ? [8, 2] : [STEP_RESULTS, STEP_WAIT_MS];
    if (this.sends.size > 0 && this.results.length < results) setTimeout(() => void this.loop(), wait);
    else setImmediate(() => void this.loop());
  }

  /** Takes up to `wanted` starts from the endpoint's bucket; with none left, wakes it when one is back. */
  private takeTokens(e: WebhookEndpoint, s: EndpointState, wanted: number, now: number): number {
    if (e.rateLimit === null) return wanted;
    const spec = rateSpec(e.rateLimit);
    if (!s.bucket) s.bucket = new TokenBucket(spec, now);
    else s.bucket.refill(spec, now);
    const n = s.bucket.take(wanted);
    if (n === 0) this.scheduler.dueAt(e.tenant, e.id, now + Math.ceil(s.bucket.msUntilToken(spec)));
    return n;
  }

  private claims(now: number): { requests: ClaimRequest[]; generations: Map<string, number> } {
    const requests: ClaimRequest[] = [];
    const generations = new Map<string, number>();
    if (this.closed) return { requests, generations };
    for (const s of this.scheduler.all()) {
      if (!s.hot) continue;
      const { tenant, id } = s;
      const e = this.o.registry.get(tenant, id);
      if (e?.status !== 'active') {
        s.hot = false;
        // Deleted: forget it.
        if (!e && held(s) === 0) this.scheduler.forget(s);
        continue;
      }
      // Nothing waits unclaimed (a send ended, that is all): nothing to claim.
      if (!s.backlog) {
        s.hot = false;
        continue;
      }
      const ordered = e.delivery === 'ordered';
      const room = leaseCap(e) - held(s);
      if (room <= 0) continue; // it stays hot: a finishing send makes room
      const limit = this.takeTokens(e, s, room, now);
      if (limit <= 0) continue;
      requests.push({ tenant, webhookId: id, ordered, limit });
      generations.set(key(tenant, id), s.generation);
    }
    return { requests, generations };
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        const now = Date.now();
        const results = this.results;
        this.results = [];
        const { requests, generations } = this.claims(now);
        if (results.length === 0 && requests.length === 0) break;
        let out: CycleOutput;
        try {
          out = await this.o.ledger.cycle({
            results,
            claims: requests,
            now,
            leaseUntil: now + this.o.leaseMs,
            node: this.o.node,
            disableAfter: this.o.disableAfter,
          });
        } catch (err) {
          if (this.closed) {
            // Shutting down with the store gone: these deliveries stay leased and are sent again later.
            this.o.logger.warn(
              { err, results: results.length },
              'could not record webhook attempts at shutdown',
            );
            break;
          }
          // The store is unreachable: keep the results, give the unused tokens back, try again shortly.
          this.o.logger.warn({ err }, 'webhook step failed; retrying');
          this.results = [...results, ...this.results];
          for (const r of requests) {
            const s = this.scheduler.state(r.tenant, r.webhookId);
            s.bucket?.giveBack(r.limit);
          }
          if (!this.retryTimer) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = null;
              this.wake();
            }, 500);
            this.retryTimer.unref();
          }
          break;
        }
        for (const d of out.disabled) {
          const e = this.o.registry.get(d.tenant, d.id);
          if (e) {
            const changed = { ...e, status: 'disabled' as const, statusReason: d.reason, updatedAt: now };
            this.o.registry.put(changed);
            this.o.onStatusChange?.(changed);
          }
          this.o.logger.warn(
            { tenant: d.tenant, webhook: d.id, reason: d.reason },
            'webhook endpoint disabled',
          );
        }
        const claimed = new Map<string, number>();
        const touched = new Set<EndpointState>();
        for (const row of out.claimed) {
          const k = key(row.tenant, row.webhookId);
          claimed.set(k, (claimed.get(k) ?? 0) + 1);
          const s = this.scheduler.state(row.tenant, row.webhookId);
          holdRow(this.holder, s, row);
          touched.add(s);
        }
        for (const s of touched) this.pump(s);
        for (const r of requests) {
          const k = key(r.tenant, r.webhookId);
          const s = this.scheduler.state(r.tenant, r.webhookId);
          const got = claimed.get(k) ?? 0;
          s.bucket?.giveBack(r.limit - got);
          // Fewer than asked for: nothing more is due. Unless something new came in meanwhile.
          if (got < r.limit && s.generation === generations.get(k)) {
            s.hot = false;
            s.backlog = false;
          }
        }
        if (!this.again && this.results.length === 0 && !this.anyReady()) break;
      }
    } finally {
      this.running = false;
      const failedStep = this.retryTimer !== null;
      if (!failedStep && (this.results.length > 0 || (this.again && !this.closed))) this.wake();
      else if (this.closed) {
        const waiting = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiting) w();
      }
    }
  }

  /** Some hot endpoint has room (it would be claimed in another step). */
  private anyReady(): boolean {
    if (this.closed) return false;
    for (const s of this.scheduler.all()) {
      if (!s.hot || !s.backlog) continue;
      const e = this.o.registry.get(s.tenant, s.id);
      if (e?.status !== 'active') continue;
      if (leaseCap(e) - held(s) <= 0) continue;
      if (e.rateLimit !== null && s.bucket && s.bucket.tokens < 1) continue;
      return true;
    }
    return false;
  }

  /** Starts ready deliveries while the endpoint has room (leased.ts). */
  private pump(s: EndpointState): void {
    pumpReady(this.holder, s);
  }

  private launch(row: DeliveryRow): void {
    const s = this.scheduler.state(row.tenant, row.webhookId);
    s.inFlight += 1;
    this.leased.add(row.id);
    const send = this.send(row)
      .catch((err: unknown) => this.o.logger.error({ err, delivery: row.id }, 'webhook send failed'))
      .finally(() => {
        s.inFlight -= 1;
        this.leased.delete(row.id);
        this.sends.delete(send);
        this.scheduler.markHot(row.tenant, row.webhookId, true);
        this.pump(s);
        this.wake();
      });
    this.sends.add(send);
  }

  private async send(row: DeliveryRow): Promise<void> {
    const endpoint = this.o.registry.get(row.tenant, row.webhookId);
    if (!endpoint) return; // deleted, with its deliveries
    const startedAt = Date.now();
    const secrets = endpoint.secrets
      .filter((s) => s.expiresAt === undefined || s.expiresAt > startedAt)
      .map((s) => s.secret);
    const headers: Record<string, string> = {
      ...endpoint.headers,
      'content-type': 'application/json',
      'user-agent': 'syncbridge-webhooks/1',
      ...signatureHeaders(secrets, row.eventId, row.body, startedAt),
    };
    const outcome = await this.o.sender.post(endpoint.url, headers, row.body, this.abort.signal);
    if (this.abort.signal.aborted && outcome.status === null) return; // shutting down: the lease is released
    const now = Date.now();
    const result = classifyAttempt(row, outcome, { schedule: this.o.schedule, startedAt, now });
    if (result.next.status === 'pending') this.scheduler.dueAt(row.tenant, row.webhookId, result.next.at);
    this.o.onAttempt?.({
      success: result.success,
      statusCode: outcome.status,
      durationMs: outcome.durationMs,
      platform: row.platform,
      sinceCommitMs: now - row.createdAt,
      deadLetter: result.next.status === 'failed',
    });
    this.results.push(result);
  }

  /** Stops claiming, lets in-flight sends finish for up to `graceMs`, records them, releases the rest. */
  async close(graceMs = 2_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.scheduler.close();
    // Deliveries held ready were never sent: give them back with their attempt, first.
    const unsent: string[] = [];
    for (const s of this.scheduler.all()) for (const r of s.ready.splice(0)) unsent.push(r.id);
    for (const id of unsent) this.leased.delete(id);
    try {
      await this.o.ledger.unclaim(this.o.node, unsent);
    } catch (err) {
      this.o.logger.warn({ err }, 'could not give back unsent webhook deliveries at shutdown');
    }
    if (this.sends.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.sends]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      this.abort.abort();
      await Promise.allSettled([...this.sends]);
    }
    // Record what finished; then free what did not, for the next run or another node.
    await new Promise<void>((resolve) => {
      if (!this.running && this.results.length === 0) resolve();
      else {
        this.idleWaiters.push(resolve);
        this.wake();
      }
    });
    try {
      await this.o.ledger.releaseLeases(this.o.node);
    } catch (err) {
      this.o.logger.warn({ err }, 'could not release webhook leases at shutdown');
    }
  }
}
