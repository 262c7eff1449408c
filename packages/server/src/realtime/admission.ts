/** Per-user connection caps: counts authenticated connections per tenant and user on this node. */
export class ConnectionAdmission {
  private readonly counts = new Map<string, number>();

  constructor(private readonly maxPerUser: number) {}

  admit(tenant: string, user: string): boolean {
    const key = `${tenant}\u0000${user}`;
    const count = this.counts.get(key) ?? 0;
    if (count >= this.maxPerUser) return false;
    this.counts.set(key, count + 1);
    return true;
  }

  release(tenant: string, user: string): void {
    const key = `${tenant}\u0000${user}`;
    const count = (this.counts.get(key) ?? 1) - 1;
    if (count <= 0) this.counts.delete(key);
    else this.counts.set(key, count);
  }
}
