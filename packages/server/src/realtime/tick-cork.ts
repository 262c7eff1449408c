/**
 * Corks a connection's socket until the current tick ends, shared by the WebSocket and SSE writers:
 * frames sent to one connection in one tick (a commit's events fanned out, a backlog page) leave in one
 * write instead of one syscall each. One nextTick uncorks every socket corked during the tick, and
 * corked bytes past CORK_FLUSH_BYTES are written at once.
 */
import type { Writable } from 'node:stream';

/**
 * Corked bytes past this are written at once rather than at the end of the tick: enough to batch
 * dozens of small events into one write, small enough that holding them back never moves a connection
 * nearer the slow-consumer limit (maxBufferedBytes is at least 64 KiB).
 */
export const CORK_FLUSH_BYTES = 16 * 1024;

/** Corks of this tick: one nextTick uncorks them all. */
const pending: TickCork[] = [];

function uncorkAll(): void {
  for (const cork of pending.splice(0)) cork.uncork();
}

/** One connection's cork; `cork` before a write, `flushIfFull` after it. */
export class TickCork {
  private socket: Writable | null = null;

  /** Corks `socket` until the tick ends; does nothing while already corked or without a socket. */
  cork(socket: Writable | null | undefined): void {
    if (this.socket || !socket) return;
    socket.cork();
    this.socket = socket;
    if (pending.push(this) === 1) process.nextTick(uncorkAll);
  }

  /** Writes what is corked at once when it has grown past CORK_FLUSH_BYTES. */
  flushIfFull(): void {
    if (this.socket && this.socket.writableLength >= CORK_FLUSH_BYTES) this.uncork();
  }

  uncork(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.uncork();
  }
}
