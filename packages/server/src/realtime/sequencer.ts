/**
 * The log sequencer: stands between the bus and the fan-out hub and makes sure the hub sees each
 * watched tenant's events exactly once and in seq order, whatever the bus does. The bus only carries
 * notifications; when one arrives past a gap (a message was dropped, reordered, or lost while the bus
 * or a node restarted), the missing events are read from the store before anything later is passed on.
 * A periodic check against the store's head closes gaps that no later message would reveal.
 *
 * Only tenants with live subscriptions on this node are watched; a tenant's position starts at the
 * store's head when its first subscription arrives (that subscription reads everything before it).
 *
 * An event may be a barrier (SequencerBarrier: an access rule change, whose new settings must be read
 * before anything after it is delivered): the tenant's later events wait for its work.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { RecordReader } from '../log/ports.ts';

interface TenantPosition {
  /** Highest seq passed to the hub; null until the starting head is read. */
  last: number | null;
  /** Resolves once the starting head is read. */
  ready: Promise<void>;
  /** Serializes work on this tenant: gap fills and deliveries happen one after another. */
  chain: Promise<void>;
  /** Events that arrived while the starting head was being read. */
  early: LogEvent[];
}

const FILL_PAGE = 1000;

/** When this node learned of a commit, carried to the hub for the fan-out latency metric. */
export interface CommitMark {
  /** `local`: committed by this node's writer; `bus`: announced by another node. */
  origin: 'local' | 'bus';
  /** `performance.now()` when the commit was heard of. */
  at: number;
}

/** Events after which a tenant's later events wait for some work (see the header). */
export interface SequencerBarrier {
  /** Whether the event is a barrier (cheap: asked of every event). */
  is(event: LogEvent): boolean;
  /** The work to finish after delivering the barrier event and before any later event of the tenant. */
  after(tenant: string, event: LogEvent): Promise<void>;
}

const NO_BARRIER: SequencerBarrier = { is: () => false, after: async () => undefined };

export class LogSequencer {
  private readonly tenants = new Map<string, TenantPosition>();
  /** The settled promise a tenant's chain holds when nothing is pending (enables the fast path). */
  private readonly idle: Promise<void> = Promise.resolve();
  gapsFilled = 0;

  constructor(
    private readonly store: RecordReader,
    private readonly deliver: (tenant: string, events: LogEvent[], mark?: CommitMark) => void,
    private readonly logger: Logger,
    private readonly barrier: SequencerBarrier = NO_BARRIER,
  ) {}

  /** Delivers events in order, waiting after each barrier event for its work. */
  private async deliverOrdered(tenant: string, events: LogEvent[], mark?: CommitMark): Promise<void> {
    let from = 0;
    for (let i = 0; i < events.length; i++) {
      if (!this.barrier.is(events[i]!)) continue;
      this.deliver(tenant, events.slice(from, i + 1), mark);
      from = i + 1;
      await this.barrier
        .after(tenant, events[i]!)
        .catch((err: unknown) =>
          this.logger.error({ err, tenant }, 'could not apply a change of access rules'),
        );
    }
    if (from < events.length) this.deliver(tenant, from === 0 ? events : events.slice(from), mark);
  }

  /** Starts following a tenant (its first subscription on this node). */
  watch(tenant: string): void {
    if (this.tenants.has(tenant)) return;
    let started!: () => void;
    const position: TenantPosition = {
      last: null,
      ready: new Promise((resolve) => {
        started = resolve;
      }),
      chain: this.idle,
      early: [],
    };
    this.tenants.set(tenant, position);
    this.run(tenant, position, async () => {
      try {
        const head = await this.store.headSeq(tenant);
        position.last = head;
        const early = position.early.filter((e) => e.seq > head);
        position.early = [];
        if (early.length > 0) await this.accept(tenant, position, early);
      } finally {
        started();
      }
    });
  }

  /**
   * Resolves once the tenant's starting head is known. A subscription reads its backlog from the store
   * only after this, so everything up to that head is in its reads and everything after reaches it live.
   */
  ready(tenant: string): Promise<void> {
    return this.tenants.get(tenant)?.ready ?? Promise.resolve();
  }

  /** The highest seq of a watched tenant handed to the hub (null: not watched, or starting). */
  head(tenant: string): number | null {
    return this.tenants.get(tenant)?.last ?? null;
  }

  /** Stops following a tenant (its last subscription here ended). */
  unwatch(tenant: string): void {
    this.tenants.delete(tenant);
  }

  /**
   * Committed events of a tenant, from this node's writer or from the bus, in any order. `mark` says
   * when they were heard of (metrics); events read from the store to fill a gap carry none.
   */
  receive(tenant: string, events: LogEvent[], mark?: CommitMark): void {
    const position = this.tenants.get(tenant);
    if (!position || events.length === 0) return;
    if (position.last === null) {
      position.early.push(...events);
      return;
    }
    // Fast path: the next events in order, nothing pending: deliver synchronously.
    if (
      position.chain === this.idle &&
      events[0]!.seq === position.last + 1 &&
      isContiguous(events) &&
      !events.some((e) => this.barrier.is(e))
    ) {
      position.last = events[events.length - 1]!.seq;
      this.deliver(tenant, events, mark);
      return;
    }
    this.run(tenant, position, () => this.accept(tenant, position, events, mark));
  }

  /** A notification without events (they were too large to carry): read up to `upTo` from the store. */
  behind(tenant: string, upTo: number): void {
    const position = this.tenants.get(tenant);
    if (!position || position.last === null || upTo <= position.last) return;
    this.run(tenant, position, () => this.fill(tenant, position, upTo));
  }

  /** Reads every watched tenant's head and fills what the bus never announced. */
  async resync(): Promise<void> {
    for (const [tenant, position] of this.tenants) {
      if (position.last === null) continue;
      const head = await this.store.headSeq(tenant);
      if (head > (position.last ?? head)) this.run(tenant, position, () => this.fill(tenant, position, head));
    }
  }

  private run(tenant: string, position: TenantPosition, step: () => Promise<void>): void {
    const chain = position.chain === this.idle ? Promise.resolve() : position.chain;
    const next = chain
      .then(step)
      .catch((err: unknown) =>
        this.logger.error({ err, tenant }, 'could not fill a gap in the log; will retry'),
      )
      .finally(() => {
        if (position.chain === next) position.chain = this.idle;
      });
    position.chain = next;
  }

  private async accept(
    tenant: string,
    position: TenantPosition,
    events: LogEvent[],
    mark?: CommitMark,
  ): Promise<void> {
    const sorted = [...events].sort((a, b) => a.seq - b.seq);
    for (const event of sorted) {
      if (this.tenants.get(tenant) !== position) return;
      if (event.seq <= position.last!) continue;
      if (event.seq > position.last! + 1) await this.fill(tenant, position, event.seq - 1);
      if (event.seq !== position.last! + 1) continue;
      position.last = event.seq;
      await this.deliverOrdered(tenant, [event], mark);
    }
  }

  /** Reads and delivers the tenant's events after `last` up to `upTo` from the store. */
  private async fill(tenant: string, position: TenantPosition, upTo: number): Promise<void> {
    this.gapsFilled += 1;
    while (position.last! < upTo && this.tenants.get(tenant) === position) {
      const limit = Math.min(FILL_PAGE, upTo - position.last!);
      const page = await this.store.readEvents(tenant, { afterSeq: position.last!, limit });
      if (page.length === 0) return;
      position.last = page[page.length - 1]!.seq;
      await this.deliverOrdered(tenant, page);
    }
  }
}

function isContiguous(events: LogEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i]!.seq !== events[i - 1]!.seq + 1) return false;
  return true;
}
