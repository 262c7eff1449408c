/**
 * The server's hybrid logical clock, in the protocol's timestamp format (`formatHlc`, shared with the
 * SDK). A client's clock that runs ahead of ours by more than `maxDriftMs` is clamped to our time plus
 * that drift, so a wrong device clock cannot win every last-writer-wins forever.
 */
import { formatHlc, hlcAfter, nextHlc, parseHlc } from '@syncbridge/protocol';

export { formatHlc, type HlcTimestamp, parseHlc } from '@syncbridge/protocol';

export class HybridClock {
  private state = { wallMs: 0, counter: 0 };

  constructor(
    private readonly node: string,
    private readonly maxDriftMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A timestamp for a local event, later than every timestamp issued or received before. */
  tick(): string {
    this.state = nextHlc(this.state, this.now());
    return formatHlc({ ...this.state, node: this.node });
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
