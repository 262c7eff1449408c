/**
 * Event batching for connections whose `hello` named the capability `batch`: events of one channel
 * that are ready at the same time (a commit's events fanned out in one tick, a backlog page) leave as
 * one `events {channel, events:[…]}` frame instead of one `event` frame each. A lone event still goes
 * as a plain `event` frame. Frames are spliced as bytes, never parsed again.
 */

/** At most this many events, or about this many bytes, per `events` frame. */
export const MAX_BATCH_EVENTS = 500;
export const MAX_BATCH_BYTES = 64 * 1024;

function eventPrefix(channel: string): Buffer {
  return Buffer.from(`{"type":"event","channel":${JSON.stringify(channel)},`);
}

/** An `events` frame from event JSON texts (as `eventJson` makes them). */
export function eventsFrameText(channel: string, eventJsons: readonly string[]): string {
  return `{"type":"events","channel":${JSON.stringify(channel)},"events":[${eventJsons.join(',')}]}`;
}

/**
 * Collects `event` frames per channel until `take` is called. Each frame must be an `event` frame of
 * its channel (as `eventFrameText` builds it): its body after the type and channel becomes one element.
 */
export class EventBatcher {
  private readonly byChannel = new Map<string, Buffer[]>();
  private bytes = 0;

  get size(): number {
    return this.byChannel.size;
  }

  /** True once what is collected should be sent before taking more. */
  get full(): boolean {
    return this.bytes >= MAX_BATCH_BYTES;
  }

  add(channel: string, frame: Buffer): void {
    let frames = this.byChannel.get(channel);
    if (!frames) {
      frames = [];
      this.byChannel.set(channel, frames);
    }
    frames.push(frame);
    this.bytes += frame.length;
  }

  /**
   * The frames to send for everything collected (one per channel and batch), each with its type (a lone
   * event stays a plain `event` frame), and forgets it.
   */
  take(): { frame: Buffer; type: 'event' | 'events' }[] {
    const out: { frame: Buffer; type: 'event' | 'events' }[] = [];
    for (const [channel, frames] of this.byChannel) {
      if (frames.length === 1) {
        out.push({ frame: frames[0]!, type: 'event' });
        continue;
      }
      const prefix = eventPrefix(channel);
      const head = Buffer.from(`{"type":"events","channel":${JSON.stringify(channel)},"events":[`);
      for (let i = 0; i < frames.length; i += MAX_BATCH_EVENTS) {
        const parts: Buffer[] = [head];
        for (const frame of frames.slice(i, i + MAX_BATCH_EVENTS)) {
          if (parts.length > 1) parts.push(COMMA);
          parts.push(OPEN, frame.subarray(prefix.length));
        }
        parts.push(CLOSE);
        out.push({ frame: Buffer.concat(parts), type: 'events' });
      }
    }
    this.byChannel.clear();
    this.bytes = 0;
    return out;
  }
}

const COMMA = Buffer.from(',');
const OPEN = Buffer.from('{');
const CLOSE = Buffer.from(']}');
