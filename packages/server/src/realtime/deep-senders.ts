/**
 * The users of this node who sent data nested past the depth limit in the last ten minutes: their
 * frames are scanned for depth before being parsed (see Connection.handleFrame). Bounded: past 10,000
 * users the oldest are forgotten. It never refuses anything itself.
 */
import type { Principal } from '../auth/principal.ts';

const MAX_USERS = 10_000;
const REMEMBER_MS = 10 * 60_000;

export class DeepSenders {
  private readonly until = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  add(principal: Principal): void {
    const key = `${principal.tenant}\u0000${principal.user}`;
    this.until.delete(key);
    if (this.until.size >= MAX_USERS) this.until.delete(this.until.keys().next().value!);
    this.until.set(key, this.now() + REMEMBER_MS);
  }

  has(principal: Principal): boolean {
    if (this.until.size === 0) return false;
    const key = `${principal.tenant}\u0000${principal.user}`;
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(key);
    return false;
  }
}
