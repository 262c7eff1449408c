/**
 * Request/reply over the socket: each request gets a fresh `rid`, and its promise settles with the
 * server's reply carrying that rid (or rejects with the server's `error`). When the connection is lost
 * every request still waiting is rejected with `DISCONNECTED`: the caller decides whether to retry
 * (the offline queue does; a publish does not, because it cannot know whether the event was written).
 */
import type { ClientMessage, ServerMessage } from '@syncbridge/protocol';
import { SyncClientError } from './errors.ts';

type Pending = {
  resolve: (reply: ServerMessage) => void;
  reject: (err: SyncClientError) => void;
  timer: ReturnType<typeof setTimeout> | null;
};

/** A client message without its rid, which the tracker assigns. */
export type RequestMessage = ClientMessage extends infer M
  ? M extends ClientMessage
    ? Omit<M, 'rid'>
    : never
  : never;

export class RequestTracker {
  private nextRid = 1;
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly send: (message: ClientMessage) => boolean) {}

  /** Sends `message` and resolves with the reply; rejects with DISCONNECTED when it cannot be sent. */
  request(message: RequestMessage, timeoutMs?: number): Promise<ServerMessage> {
    const rid = `r${this.nextRid++}`;
    return new Promise((resolve, reject) => {
      const entry: Pending = { resolve, reject, timer: null };
      this.pending.set(rid, entry);
      if (!this.send({ ...message, rid } as ClientMessage)) {
        this.pending.delete(rid);
        reject(new SyncClientError('DISCONNECTED', 'not connected to the server'));
        return;
      }
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.pending.delete(rid);
          reject(new SyncClientError('TIMEOUT', `no answer to ${message.type} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Settles the request a reply belongs to; returns false when the message answers no request of ours. */
  handleReply(message: ServerMessage): boolean {
    const rid = 'rid' in message ? message.rid : undefined;
    if (rid === undefined) return false;
    const entry = this.pending.get(String(rid));
    if (!entry) return false;
    this.pending.delete(String(rid));
    if (entry.timer) clearTimeout(entry.timer);
    if (message.type === 'error')
      entry.reject(new SyncClientError(message.code, message.message, message.details));
    else entry.resolve(message);
    return true;
  }

  /** Rejects every request still waiting (the connection is gone). */
  failAll(code: 'DISCONNECTED' | 'CLOSED', message: string): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.reject(new SyncClientError(code, message));
    }
  }
}
