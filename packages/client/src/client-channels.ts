/**
 * The client's channel plumbing: the subscription manager (tied to the link, the request tracker and
 * the replica's stored cursors), the `Collection`, `EventStream` and `TopicStream` handles made on it,
 * and the resume points the replica stores (a records channel's cursor held back below the updates its
 * cache has not applied yet).
 */
import { Branch, type BranchRest } from './branches.ts';
import type { ClientEvents } from './client-options.ts';
import type { WritePath } from './client-writes.ts';
import { Collection } from './collection.ts';
import type { TypedEventEmitter } from './emitter.ts';
import { EventStream, type EventStreamFilter, eventsChannel } from './events.ts';
import { type RecordFilter, recordsChannel } from './filters.ts';
import type { ClientLink } from './link.ts';
import type { LocalReplica } from './replica.ts';
import type { RequestTracker } from './requests.ts';
import { type ResumePoint, SubscriptionManager } from './subscriptions.ts';
import { type TopicOptions, TopicStream, topicChannel } from './topics.ts';

export interface ChannelHubOptions {
  link: ClientLink;
  requests: RequestTracker;
  writes: WritePath;
  replica: LocalReplica | null;
  emitter: TypedEventEmitter<ClientEvents>;
  /** Resolves (or rejects) once the storage is loaded; nothing is subscribed before it settles. */
  loading: Promise<void>;
  /** REST for branches' fork, diff, merge and delete. */
  rest: BranchRest;
}

export class ChannelHub {
  readonly subscriptions: SubscriptionManager;
  private readonly collections = new Map<string, Collection<object>>();

  constructor(private readonly options: ChannelHubOptions) {
    const { link, replica, emitter } = options;
    this.subscriptions = new SubscriptionManager({
      ready: options.loading.catch(() => undefined),
      storedCursor: (channel) => replica?.storedCursor(channel) ?? null,
      onCursor: () => replica?.cursorChanged(),
      onAcquire: (channel) => replica?.channelUsed(channel),
      onRelease: () => replica?.channelReleased(),
      requests: options.requests,
      send: (message) => link.send(message),
      isConnected: () => link.authenticated,
      onReset: (channel, reason) => emitter.emit('reset', { channel, reason }),
      onError: (error) => emitter.emit('error', error),
    });
  }

  collection(name: string): Collection<object> {
    let collection = this.collections.get(name);
    if (!collection) {
      const { writes } = this.options;
      collection = new Collection<object>(name, {
        cache: writes.cache(name),
        subscriptions: this.subscriptions,
        write: (request) => writes.write(request),
        stored: (filter) => this.storedView(name, filter),
        branch: (branch) => this.branch(name, branch),
      });
      this.collections.set(name, collection);
    }
    return collection;
  }

  /** The branch `branch` of collection `name`: a collection named `<name>@<branch>` (branches.ts). */
  private branch(name: string, branch: string): Branch<object> {
    const ref = `${name}@${branch}`;
    let found = this.collections.get(ref);
    if (!found) {
      const { writes } = this.options;
      found = new Branch<object>(
        name,
        branch,
        {
          cache: writes.cache(ref),
          subscriptions: this.subscriptions,
          write: (request) => writes.write(request),
          stored: (filter) => this.storedView(ref, filter),
        },
        this.options.rest,
      );
      this.collections.set(ref, found);
    }
    return found as Branch<object>;
  }

  events<P>(type: string, filter?: EventStreamFilter): EventStream<P> {
    return new EventStream<P>(eventsChannel(type, filter), this.subscriptions);
  }

  topic(name: string, options?: TopicOptions): TopicStream {
    return new TopicStream(topicChannel(name, options), this.subscriptions);
  }

  /** The channels to store cursors for; a records channel's stops below updates its cache holds back. */
  resumePoints(): ResumePoint[] {
    return this.subscriptions.resumePoints().map((point) => {
      if (point.kind !== 'records') return point;
      const collection = point.channel.slice('records:'.length).split('?')[0]!;
      const held = this.options.writes.caches.get(collection)?.heldMinSeq() ?? null;
      return held === null ? point : { ...point, lastSeq: Math.min(point.lastSeq, held - 1) };
    });
  }

  /**
   * Once loaded: does the replica hold this channel (so its records are shown from storage at once)?
   * Resolves false when it does not, or the storage could not be read.
   */
  private async storedView(collection: string, filter: RecordFilter | undefined): Promise<boolean> {
    try {
      await this.options.loading;
    } catch {
      return false;
    }
    const { replica } = this.options;
    if (!replica) return false;
    return replica.storedCursor(recordsChannel(collection, filter)) !== null;
  }
}
