/** Events per second over the last few whole seconds (ticks/s in a connector's status). */
export class RateMeter {
  private readonly buckets: number[];
  private second = 0;

  constructor(private readonly seconds = 5) {
    this.buckets = new Array(seconds + 1).fill(0);
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.second) return;
    const gap = Math.min(second - this.second, this.buckets.length);
    for (let i = 1; i <= gap; i++) this.buckets[(this.second + i) % this.buckets.length] = 0;
    this.second = second;
  }

  add(n = 1, now = Date.now()): void {
    this.roll(now);
    this.buckets[this.second % this.buckets.length]! += n;
  }

  /** The mean rate over the last `seconds` whole seconds (the current, partial one left out). */
  perSecond(now = Date.now()): number {
    this.roll(now);
    let sum = 0;
    for (let i = 1; i <= this.seconds; i++) {
      sum += this.buckets[(this.second - i + this.buckets.length * 2) % this.buckets.length]!;
    }
    return sum / this.seconds;
  }
}
