/**
 * Registered devices and selective sync. A device is one installation of a client of one user, keyed by
 * (tenant, user, device id): the id the client sends as `deviceId`, under which the server also keeps
 * the device's acknowledged cursor. It is registered over REST or in `hello`; a registration changes
 * only the fields it names. A device's `categories` are the collections it syncs (null: every one):
 * its connections may subscribe to records channels of those collections only.
 */
import type { Device, DeviceInfo, DevicePending } from '@syncbridge/protocol';
import { mainCollection } from '../core/branches.ts';
import type { EventCount } from '../store/types.ts';

/**
 * The DeviceStore port: registered devices and their cursors, and the log counts a device's pending
 * summary needs. Defined here beside its one user; the stores implement it, with no driver type in it.
 */
export interface DeviceStore {
  /** Creates or replaces a registered device (keyed by tenant, `device.user` and `device.id`). */
  putDevice(tenant: string, device: Device): Promise<void>;
  getDevice(tenant: string, user: string, id: string): Promise<Device | null>;
  /** A user's devices, or (no user) every device of the tenant; by user, then id. */
  listDevices(tenant: string, user?: string): Promise<Device[]>;
  /** Forgets a device and its cursor; false when there was none. */
  deleteDevice(tenant: string, user: string, id: string): Promise<boolean>;
  saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void>;
  getCursor(tenant: string, user: string, device: string): Promise<number | null>;
  countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]>;
  headSeq(tenant: string): Promise<number>;
}

/** At most this many log entries after a device's cursor are counted on a connect. */
export const PENDING_COUNT_LIMIT = 100_000;

/**
 * Whether a device with these categories may sync `collection` (null or undefined: every collection).
 * A branch (`<collection>@<branch>`) is in its collection's category.
 */
export function categoryAllows(
  categories: readonly string[] | null | undefined,
  collection: string,
): boolean {
  return categories == null || categories.includes(mainCollection(collection));
}

/** A device after a registration: `info`'s fields replace the stored ones, the others stay. */
export function mergeDevice(
  existing: Device | null,
  user: string,
  id: string,
  info: DeviceInfo,
  now: string,
): Device {
  const device: Device = existing
    ? { ...existing, updatedAt: now }
    : { id, user, capabilities: [], categories: null, createdAt: now, updatedAt: now };
  if (info.type !== undefined) device.type = info.type;
  if (info.name !== undefined) device.name = info.name;
  if (info.platform !== undefined) device.platform = info.platform;
  if (info.appVersion !== undefined) device.appVersion = info.appVersion;
  if (info.capabilities !== undefined) device.capabilities = [...new Set(info.capabilities)];
  if (info.categories !== undefined)
    device.categories = info.categories === null ? null : [...new Set(info.categories)].sort();
  // Paced sync (realtime/pacer.ts): null clears a setting.
  if (info.bandwidth !== undefined) {
    if (info.bandwidth === null) delete device.bandwidth;
    else device.bandwidth = { bytesPerSecond: info.bandwidth.bytesPerSecond };
  }
  if (info.priorities !== undefined) {
    if (info.priorities === null) delete device.priorities;
    else device.priorities = { ...info.priorities };
  }
  if (info.conflate !== undefined) device.conflate = info.conflate;
  return device;
}

/** What waits after `cursor` for a device with these categories, from the log's counts. */
export function pendingFrom(
  counts: EventCount[],
  cursor: number,
  head: number,
  categories: readonly string[] | null,
  limit = PENDING_COUNT_LIMIT,
): DevicePending {
  const pending: DevicePending = { cursor, head, count: 0, events: 0, collections: {} };
  let counted = 0;
  for (const row of counts) {
    counted += row.count;
    if (row.kind === 'event') pending.events += row.count;
    else if (row.collection !== null && categoryAllows(categories, row.collection)) {
      pending.count += row.count;
      pending.collections[row.collection] = (pending.collections[row.collection] ?? 0) + row.count;
    }
  }
  if (counted >= limit && head - cursor > limit) pending.capped = true;
  return pending;
}

export class DeviceRegistry {
  /**
   * @param maxPerUser at most this many devices per user: registering one more forgets the user's least
   *   recently seen ones (a phone reinstalled many times must not leave a device row per install).
   */
  constructor(
    private readonly store: DeviceStore,
    private readonly maxPerUser = Number.POSITIVE_INFINITY,
  ) {}

  get(tenant: string, user: string, id: string): Promise<Device | null> {
    return this.store.getDevice(tenant, user, id);
  }

  list(tenant: string, user?: string): Promise<Device[]> {
    return this.store.listDevices(tenant, user);
  }

  /** Registers a device or updates the fields `info` names; `seen` also stamps `lastSeenAt`. */
  async register(
    tenant: string,
    user: string,
    id: string,
    info: DeviceInfo,
    options: { seen?: boolean } = {},
  ): Promise<Device> {
    const now = new Date().toISOString();
    const existing = await this.store.getDevice(tenant, user, id);
    const device = mergeDevice(existing, user, id, info, now);
    if (options.seen) device.lastSeenAt = now;
    if (!existing) await this.makeRoom(tenant, user);
    await this.store.putDevice(tenant, device);
    return device;
  }

  /** Forgets the user's least recently seen devices until one more fits under the cap. */
  private async makeRoom(tenant: string, user: string): Promise<void> {
    if (!Number.isFinite(this.maxPerUser)) return;
    const devices = await this.store.listDevices(tenant, user);
    const excess = devices.length - (this.maxPerUser - 1);
    if (excess <= 0) return;
    const lastSeen = (d: Device) => d.lastSeenAt ?? d.updatedAt;
    devices.sort((a, b) => (lastSeen(a) < lastSeen(b) ? -1 : lastSeen(a) > lastSeen(b) ? 1 : 0));
    for (const old of devices.slice(0, excess)) await this.store.deleteDevice(tenant, user, old.id);
  }

  /** Stamps `lastSeenAt` on a registered device; returns it, or null when the id is not registered. */
  async seen(tenant: string, user: string, id: string): Promise<Device | null> {
    const device = await this.store.getDevice(tenant, user, id);
    if (!device) return null;
    device.lastSeenAt = new Date().toISOString();
    await this.store.putDevice(tenant, device);
    return device;
  }

  remove(tenant: string, user: string, id: string): Promise<boolean> {
    return this.store.deleteDevice(tenant, user, id);
  }

  /** What waits for a device after its stored cursor (or after `cursor`, when that is further on). */
  async pending(
    tenant: string,
    user: string,
    id: string,
    categories: readonly string[] | null,
    cursor?: number,
  ): Promise<DevicePending> {
    const stored = (await this.store.getCursor(tenant, user, id)) ?? 0;
    const from = Math.max(stored, cursor ?? 0);
    const counts = await this.store.countEventsAfter(tenant, from, PENDING_COUNT_LIMIT);
    // Read after the counts, so the head is never below an event they include.
    const head = await this.store.headSeq(tenant);
    return pendingFrom(counts, from, head, categories);
  }
}
