/**
 * The server's hybrid logical clock, in the protocol's timestamp format (`formatHlc`, shared with the
 * SDK). A client's clock that runs ahead of ours by more than `maxDriftMs` is clamped to our time plus
 * that drift, so a wrong device clock cannot win every last-writer-wins forever.
 */
import { formatHlc, hlcAfter, nextHlc, parseHlc } from '@syncbridge/protocol';

export { formatHlc, type HlcTimestamp, parseHlc } from '@syncbridge/protocol';

/** Digits of the wall-clock part of formatHlc's text (before its `-`). */
const WALL_DIGITS = 15;

export class HybridClock {
  private state = { wallMs: 0, counter: 0 };
  /** The wall-clock millisecond of the last tick, and formatHlc's text of it up to the counter. */
  private wallMs = -1;
  private wallPrefix = '';

  constructor(
    private readonly node: string,
    private readonly maxDriftMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A timestamp for a local event, later than every timestamp issued or received before. */
  tick(): string {
    this.state = nextHlc(this.state, this.now());
    const { wallMs, counter } = this.state;
    // formatHlc's text, its wall-clock part formatted once per millisecond (many ticks share one).
    if (wallMs !== this.wallMs) {
      this.wallMs = wallMs;
      this.wallPrefix = formatHlc({ wallMs, counter: 0, node: '' }).slice(0, WALL_DIGITS + 1);
    }
    return `${this.wallPrefix}${counter.toString(16).padStart(4, '0')}-${this.node}`;
  }

  /**
   * Folds a remote timestamp in and returns the one to record for the remote change: the remote's own,
   * or clamped to now + maxDrift when it runs too far ahead. Returns null when the text is not an HLC.
   */
  receive(remoteText: string): string | null {
    const remote = parseHlc(remoteText);
    if (!remote) return null;
    const limit = this.now() + this.maxDriftMs;
    const clamped = remote.wallMs > limit ? { ...remote, wallMs: limit, counter: 0 } : remote;
    if (hlcAfter(clamped, this.state)) this.state = { wallMs: clamped.wallMs, counter: clamped.counter };
    return formatHlc(clamped);
  }
}
