/**
 * Hybrid logical clock. A timestamp is `<wall ms, 15 digits>-<counter, 4 hex>-<node>` so that plain
 * string comparison orders timestamps. A client's clock that runs ahead of ours by more than `maxDriftMs`
 * is clamped to our time plus that drift, so a wrong device clock cannot win every last-writer-wins forever.
 */

export interface HlcTimestamp {
  wallMs: number;
  counter: number;
  node: string;
}

const PATTERN = /^(\d{15})-([0-9a-f]{4})-([A-Za-z0-9_.:-]{1,40})$/;

export function formatHlc(ts: HlcTimestamp): string {
  return `${String(ts.wallMs).padStart(15, '0')}-${ts.counter.toString(16).padStart(4, '0')}-${ts.node}`;
}

export function parseHlc(text: string): HlcTimestamp | null {
  const m = PATTERN.exec(text);
  if (!m) return null;
  return { wallMs: Number(m[1]), counter: Number.parseInt(m[2]!, 16), node: m[3]! };
}

export class HybridClock {
  private wallMs = 0;
  private counter = 0;

  constructor(
    private readonly node: string,
    private readonly maxDriftMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A timestamp for a local event, later than every timestamp issued or received before. */
  tick(): string {
    const physical = this.now();
    if (physical > this.wallMs) {
      this.wallMs = physical;
      this.counter = 0;
    } else {
      this.counter += 1;
      if (this.counter > 0xffff) {
        this.wallMs += 1;
        this.counter = 0;
      }
    }
    return formatHlc({ wallMs: this.wallMs, counter: this.counter, node: this.node });
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
    if (clamped.wallMs > this.wallMs || (clamped.wallMs === this.wallMs && clamped.counter > this.counter)) {
      this.wallMs = clamped.wallMs;
      this.counter = clamped.counter;
    }
    return formatHlc(clamped);
  }
}
