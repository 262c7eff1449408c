/**
 * The commit feed: one ordered stream of committed log events, this node's own (from the log writer,
 * after each commit) and other nodes' (as the bus brings them). Everything that reacts to a commit
 * subscribes here once, in the composition root: the sequencer (and through it the fan-out hub),
 * projections, connectors, `afterCommit` middleware, the relay to the bus and the metrics. Webhook
 * deliveries are not a subscriber: they are planned inside the commit's transaction (log/outbox.ts).
 *
 * Subscribers run synchronously in the order they subscribed, each isolated from the others' failures;
 * a subscriber that does slow work must queue it. The feed must never write to the log or reorder a
 * tenant's commits, and it must never import a transport: the bus hands it messages, not the reverse.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Logger } from 'pino';

/** Where a commit was made: on this node, or on another node and heard over the bus. */
export type CommitOrigin = 'local' | 'bus';

export interface Commit {
  tenant: string;
  /** Consecutive events of the tenant's log, in seq order (never empty). */
  events: LogEvent[];
  origin: CommitOrigin;
  /** When this node heard of the commit (performance.now()), for fan-out latency. */
  heardAt: number;
}

export type CommitSubscriber = (commit: Commit) => void;

export interface SubscribeOptions {
  /** Only commits of these origins (default: both). */
  origins?: readonly CommitOrigin[];
}

interface Subscription {
  name: string;
  fn: CommitSubscriber;
  origins: readonly CommitOrigin[];
}

/** The log writer's side of the feed (LogWriter implements it). */
export interface CommitSource {
  onCommit(listener: (tenant: string, events: LogEvent[]) => void): void;
}

export class CommitFeed {
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly logger: Logger) {}

  /** Feeds this node's commits from the writer into the stream. */
  connect(source: CommitSource): void {
    source.onCommit((tenant, events) =>
      this.publish({ tenant, events, origin: 'local', heardAt: performance.now() }),
    );
  }

  /** Feeds another node's commit, heard over the bus, into the stream. */
  heard(tenant: string, events: LogEvent[]): void {
    if (events.length === 0) return;
    this.publish({ tenant, events, origin: 'bus', heardAt: performance.now() });
  }

  /** Hears every later commit of the given origins, after the subscribers before it. `name` is for logs. */
  subscribe(name: string, fn: CommitSubscriber, options: SubscribeOptions = {}): void {
    this.subscriptions.push({ name, fn, origins: options.origins ?? ['local', 'bus'] });
  }

  private publish(commit: Commit): void {
    for (const s of this.subscriptions) {
      if (!s.origins.includes(commit.origin)) continue;
      try {
        s.fn(commit);
      } catch (err) {
        this.logger.error({ err, subscriber: s.name, origin: commit.origin }, 'commit subscriber failed');
      }
    }
  }
}
