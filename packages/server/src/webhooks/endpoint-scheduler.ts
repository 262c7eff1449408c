/**
 * When each webhook endpoint should be looked at: an endpoint is "hot" when it may have work (a commit
 * queued deliveries for it, a send to it finished, a retry fell due), and a retry due within two polls
 * arms a timer (to within 50 ms) that makes it hot then. Each endpoint also keeps its in-flight count and
 * its start-rate bucket. It must never hold a timer for a retry further away than two polls: a long
 * backlog of retries is left to the poll and costs no timers.
 */
import type { TokenBucket } from '../core/token-bucket.ts';
import type { DeliveryRow } from './types.ts';

export interface EndpointState {
  readonly tenant: string;
  readonly id: string;
  /** Sends running. */
  inFlight: number;
  /** Leased to this node and not sent yet, lowest seq first: each starts when a send ends. */
  ready: DeliveryRow[];
  /** Deliveries of commits still in progress that will be written leased to this node. */
  reserved: number;
  /** Something may be due: look at it in the next step. */
  hot: boolean;
  /**
   * Deliveries older than a new commit's may be waiting unclaimed (or a retry, a trigger, a poll found
   * work): a new delivery is then not leased by its commit, so that it does not pass them.
   */
  backlog: boolean;
  /** Bumped whenever `hot` is set, so a step that started earlier does not clear a newer signal. */
  generation: number;
  /** Future times at which a retry falls due (sorted), and the timer for the first one. */
  dueTimes: number[];
  timer: NodeJS.Timeout | null;
  /** Starts per second (null until the endpoint's first rate-limited claim). */
  bucket: TokenBucket | null;
}

const key = (tenant: string, id: string) => `${tenant}\u0000${id}`;

export class EndpointScheduler {
  private readonly states = new Map<string, EndpointState>();
  private closed = false;

  constructor(
    private readonly pollMs: number,
    /** Called when a timer made an endpoint hot. */
    private readonly wake: () => void,
  ) {}

  state(tenant: string, id: string): EndpointState {
    const k = key(tenant, id);
    let s = this.states.get(k);
    if (!s) {
      s = {
        tenant,
        id,
        inFlight: 0,
        ready: [],
        reserved: 0,
        hot: false,
        backlog: false,
        generation: 0,
        dueTimes: [],
        timer: null,
        bucket: null,
      };
      this.states.set(k, s);
    }
    return s;
  }

  /** Every endpoint the scheduler knows of. */
  all(): IterableIterator<EndpointState> {
    return this.states.values();
  }

  /** Something may be due; `room` only: a send ended, so a waiting delivery may be claimed now. */
  markHot(tenant: string, id: string, room = false): void {
    const s = this.state(tenant, id);
    s.hot = true;
    if (!room) s.backlog = true;
    s.generation += 1;
  }

  /** Forgets a deleted endpoint. */
  forget(s: EndpointState): void {
    if (s.timer) clearTimeout(s.timer);
    this.states.delete(key(s.tenant, s.id));
  }

  /**
   * Wakes the endpoint at `at` (a retry falls due then), to within 50 ms. Times further away than two
   * polls are left to the poll, so a long backlog of retries costs no timers.
   */
  dueAt(tenant: string, id: string, at: number): void {
    if (at - Date.now() > this.pollMs * 2) return;
    const bucket = Math.ceil(at / 50) * 50;
    const s = this.state(tenant, id);
    if (s.dueTimes.includes(bucket)) return;
    s.dueTimes.push(bucket);
    s.dueTimes.sort((a, b) => a - b);
    this.arm(s);
  }

  private arm(s: EndpointState): void {
    if (this.closed) return;
    const first = s.dueTimes[0];
    if (first === undefined) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(
      () => {
        s.timer = null;
        const now = Date.now();
        while (s.dueTimes.length > 0 && s.dueTimes[0]! <= now + 5) s.dueTimes.shift();
        this.markHot(s.tenant, s.id);
        this.wake();
        this.arm(s);
      },
      Math.max(0, first - Date.now()),
    );
    s.timer.unref();
  }

  /** Clears every timer; no more are armed. */
  close(): void {
    this.closed = true;
    for (const s of this.states.values()) if (s.timer) clearTimeout(s.timer);
  }
}
