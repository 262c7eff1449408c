/**
 * The client's life on the link: routes every server message (conflicts, the device's `pending`
 * report, channel frames, request replies, errors), reacts to status changes (failing requests on a
 * lost connection, stopping the queue on a refused token), and on each `welcome` resumes the channels
 * and the queue before telling the link it is in sync (`open`).
 */
import { CLOSE_CODES, type ServerMessage } from '@syncbridge/protocol';
import type { ConflictDesk } from './client-conflicts.ts';
import type { ClientEvents, ConflatedCatchUp, ServerPending } from './client-options.ts';
import type { WritePath } from './client-writes.ts';
import type { StatusChange } from './codes.ts';
import type { TypedEventEmitter } from './emitter.ts';
import { SyncClientError } from './errors.ts';
import type { ClientClock } from './hlc.ts';
import type { ClientLink } from './link.ts';
import type { RequestTracker } from './requests.ts';
import type { SubscriptionManager } from './subscriptions.ts';

export interface SessionOptions {
  link: ClientLink;
  requests: RequestTracker;
  subscriptions: SubscriptionManager;
  writes: WritePath;
  conflicts: ConflictDesk;
  clock: ClientClock;
  emitter: TypedEventEmitter<ClientEvents>;
  deviceId: string | undefined;
  /** Resolves once the storage is loaded: nothing resumes before. */
  loading: Promise<void>;
}

export class Session {
  /** The server's last `pending` report for this device. */
  pendingReport: ServerPending | null = null;
  private pendingThisConnection = false;
  /** The conflated catch-up windows of this connection (paced sync). */
  conflated: ConflatedCatchUp[] = [];

  constructor(private readonly options: SessionOptions) {
    const { link } = options;
    link.events.on('status', (change) => this.statusChanged(change));
    link.events.on('welcome', () => {
      this.conflated = [];
      void this.resume(link.connectionEpoch);
    });
    link.events.on('message', (message) => this.receive(message));
  }

  /** Resolves when the link is `open`; rejects on `closed` or after `timeoutMs`. */
  whenOpen(timeoutMs?: number): Promise<void> {
    const { link, emitter } = this.options;
    if (link.state === 'open') return Promise.resolve();
    if (link.state === 'closed') return Promise.reject(new SyncClientError('CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? null
          : setTimeout(() => {
              off();
              reject(new SyncClientError('TIMEOUT', `not open within ${timeoutMs} ms (state ${link.state})`));
            }, timeoutMs);
      const off = emitter.on('status', ({ newState }) => {
        if (newState !== 'open' && newState !== 'closed') return;
        off();
        if (timer) clearTimeout(timer);
        if (newState === 'open') resolve();
        else reject(new SyncClientError('CLOSED', 'the client is closed'));
      });
    });
  }

  private async resume(epoch: number): Promise<void> {
    const { link, subscriptions, writes } = this.options;
    this.pendingThisConnection = false;
    await this.options.loading.catch(() => undefined);
    if (epoch !== link.connectionEpoch) return;
    await Promise.all([subscriptions.resumeAll(), writes.queue.replay(), this.pendingReported()]);
    link.markSynced(epoch);
  }

  /**
   * With a device id, the server follows `welcome` with `pending`: `open` waits for it, so `serverPending`
   * is current once the client is open (at most 2 s, for servers that do not send it).
   */
  private pendingReported(): Promise<void> {
    if (!this.options.deviceId || this.pendingThisConnection) return Promise.resolve();
    const { emitter } = this.options;
    return new Promise((resolve) => {
      const timer = setTimeout(done, 2000);
      const off = emitter.on('pending', done);
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  private receive(message: ServerMessage): void {
    const { emitter } = this.options;
    if (message.type === 'event') this.options.clock.observe(message.hlc);
    if (message.type === 'conflict') {
      this.options.conflicts.tracker.observe(message.conflict);
      return;
    }
    if (message.type === 'conflated') {
      const { type: _type, ...report } = message;
      this.conflated.push(report);
      emitter.emit('conflated', report);
      return;
    }
    if (message.type === 'pending') {
      const { type: _type, ...report } = message;
      this.pendingReport = report;
      this.pendingThisConnection = true;
      emitter.emit('pending', report);
      return;
    }
    if (this.options.subscriptions.handle(message)) return;
    if (this.options.requests.handleReply(message)) return;
    if (message.type === 'error') {
      emitter.emit('error', new SyncClientError(message.code, message.message, message.details));
    }
  }

  private statusChanged(change: StatusChange): void {
    const { queue } = this.options.writes;
    if (change.closeCode === CLOSE_CODES.TOO_BIG) queue.sendInFlightAlone();
    if (change.newState === 'offline' || change.newState === 'closed') {
      this.options.requests.failAll('DISCONNECTED', `connection lost (${change.reason})`);
    }
    if (change.newState === 'closed' && change.reason !== 'client_closed') {
      const error = new SyncClientError('UNAUTHORIZED', change.message ?? 'the server refused the token');
      queue.close(new SyncClientError('CLOSED', `the client stopped: ${error.message}`));
      this.options.emitter.emit('error', error);
    }
    this.options.emitter.emit('status', change);
  }
}
