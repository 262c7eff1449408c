/**
 * The client's hybrid logical clock, in the protocol's format (`<wall ms, 15 digits>-<counter, 4 hex>-<node>`),
 * so that last-writer-wins orders an offline write by when it was made, not by when it reached the
 * server. It folds in every timestamp it sees from the server, so a write made after seeing a change
 * is always later than that change even when this device's clock runs behind.
 */
import { formatHlc, hlcAfter, nextHlc, parseHlc } from '@syncbridge/protocol';

export class ClientClock {
  private state = { wallMs: 0, counter: 0 };
  private readonly node: string;

  constructor(
    node: string,
    private readonly now: () => number = Date.now,
  ) {
    const clean = node.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, 40);
    this.node = clean.length > 0 ? clean : 'client';
  }

  tick(): string {
    this.state = nextHlc(this.state, this.now());
    return formatHlc({ ...this.state, node: this.node });
  }

  /** Folds in a timestamp seen on the wire; ignores text that is not an HLC. */
  observe(text: string | undefined): void {
    const seen = text ? parseHlc(text) : null;
    if (seen && hlcAfter(seen, this.state)) this.state = { wallMs: seen.wallMs, counter: seen.counter };
  }
}
