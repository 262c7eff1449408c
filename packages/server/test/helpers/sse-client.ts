/**
 * A small server-sent-events client for tests: opens `GET /v1/stream` with fetch, parses the stream with
 * eventsource-parser, records every SSE event (id, event name, parsed data) and lets a test wait for the
 * one it expects (with a timeout, so a missing event fails fast). It also notes when each chunk of the
 * body arrived and its size, for tests of a paced stream's rate.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: Record<string, unknown> & { type?: string; seq?: number; channel?: string; code?: number };
}

export class TestSseClient {
  readonly events: SseEvent[] = [];
  /** The last `id:` seen (what an EventSource would send as Last-Event-ID). */
  lastEventId: string | undefined;
  /** Comment lines received (the server's heartbeats). */
  comments = 0;
  /** Each chunk of the body as it arrived: when (performance.now()) and how many bytes. */
  readonly chunks: { at: number; bytes: number }[] = [];
  readonly ended: Promise<void>;
  private waiters: Array<{ test: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];

  private constructor(
    readonly status: number,
    private readonly controller: AbortController,
    body: ReadableStream<Uint8Array> | null,
  ) {
    const parser = createParser({
      onComment: () => {
        this.comments += 1;
      },
      onEvent: (message: EventSourceMessage) => {
        const event: SseEvent = { id: message.id, event: message.event, data: JSON.parse(message.data) };
        if (message.id !== undefined) this.lastEventId = message.id;
        this.events.push(event);
        this.waiters = this.waiters.filter((w) => {
          if (!w.test(event)) return true;
          w.resolve(event);
          return false;
        });
      },
    });
    this.ended = (async () => {
      if (!body) return;
      const decoder = new TextDecoder();
      try {
        for await (const chunk of body) {
          this.chunks.push({ at: performance.now(), bytes: chunk.length });
          parser.feed(decoder.decode(chunk, { stream: true }));
        }
      } catch {
        // aborted or dropped
      }
    })();
  }

  /** Opens a stream; `query` is appended to /v1/stream?, `headers` sent as given. */
  static async open(
    baseUrl: string,
    query: string,
    headers: Record<string, string> = {},
  ): Promise<TestSseClient> {
    const controller = new AbortController();
    const res = await fetch(`${baseUrl}/v1/stream?${query}`, { headers, signal: controller.signal });
    return new TestSseClient(res.status, controller, res.ok ? res.body : null);
  }

  /** Log events (the `event` messages) received so far, optionally of one channel. */
  logEvents(channel?: string): SseEvent[] {
    return this.events.filter(
      (e) => e.data.type === 'event' && (channel === undefined || e.data.channel === channel),
    );
  }

  waitFor(test: (e: SseEvent) => boolean, timeoutMs = 15_000, what = 'an SSE event'): Promise<SseEvent> {
    const found = this.events.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** The most bytes received in any window of `ms` milliseconds that starts at a chunk. */
  maxBytesInWindow(ms: number): number {
    let max = 0;
    let sum = 0;
    let end = 0;
    for (let start = 0; start < this.chunks.length; start++) {
      while (end < this.chunks.length && this.chunks[end]!.at < this.chunks[start]!.at + ms) {
        sum += this.chunks[end]!.bytes;
        end += 1;
      }
      max = Math.max(max, sum);
      sum -= this.chunks[start]!.bytes;
    }
    return max;
  }

  close(): void {
    this.controller.abort();
  }
}
