/**
 * The client's hybrid logical clock, in the server's format (`<wall ms, 15 digits>-<counter, 4 hex>-<node>`),
 * so that last-writer-wins orders an offline write by when it was made, not by when it reached the
 * server. It folds in every timestamp it sees from the server, so a write made after seeing a change
 * is always later than that change even when this device's clock runs behind.
 */

const PATTERN = /^(\d{15})-([0-9a-f]{4})-/;

export class ClientClock {
  private wallMs = 0;
  private counter = 0;
  private readonly node: string;

  constructor(
    node: string,
    private readonly now: () => number = Date.now,
  ) {
    const clean = node.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, 40);
    this.node = clean.length > 0 ? clean : 'client';
  }

  tick(): string {
    const physical = this.now();
    if (physical > this.wallMs) {
      this.wallMs = physical;
      this.counter = 0;
    } else if (++this.counter > 0xffff) {
      this.wallMs += 1;
      this.counter = 0;
    }
    return `${String(this.wallMs).padStart(15, '0')}-${this.counter.toString(16).padStart(4, '0')}-${this.node}`;
  }

  /** Folds in a timestamp seen on the wire; ignores text that is not an HLC. */
  observe(text: string | undefined): void {
    const m = text ? PATTERN.exec(text) : null;
    if (!m) return;
    const wallMs = Number(m[1]);
    const counter = Number.parseInt(m[2]!, 16);
    if (wallMs > this.wallMs || (wallMs === this.wallMs && counter > this.counter)) {
      this.wallMs = wallMs;
      this.counter = counter;
    }
  }
}
