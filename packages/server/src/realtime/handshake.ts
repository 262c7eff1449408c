/**
 * The handshake of one connection: a `hello` (or the upgrade's token) checked against the connection's
 * identity, the device registered or seen, the user admitted under the per-user cap, then the `welcome`
 * with the device's cursor and what waits for it. It must never let a connection change its tenant or
 * user, and never admit a user past the connection cap.
 */
import { type DeviceInfo, PROTOCOL_VERSION, type Rid, type ServerMessage } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { SyncError } from '../core/errors.ts';
import { DeviceRegistry, PENDING_COUNT_LIMIT } from '../devices/registry.ts';
import { type PendingSources, readablePending } from '../rules/pending.ts';
import type { ChannelSession } from './channel-session.ts';
import type { RealtimeContext } from './context.ts';
import type { PaceSettings } from './pacer.ts';
import type { SessionSink } from './session-sink.ts';

/** The key of a device's cursor: tenant, user and device. */
export function cursorKey(tenant: string, user: string, device: string): string {
  return `${tenant}\u0000${user}\u0000${device}`;
}

/** What a `hello` may add to the token: the device's registration and the wire features it speaks. */
export interface HelloExtras {
  device?: DeviceInfo;
  capabilities?: string[];
}

/** The state of a connection the handshake sets. */
export interface HandshakeTarget {
  readonly id: string;
  principal: Principal | null;
  deviceId: string | undefined;
  expiresAt: number | null;
  ackedSeq: number;
  /** Counted against the user's connection cap (released on dispose). */
  admitted: boolean;
  readonly writer: SessionSink;
  readonly channels: ChannelSession;
  send(message: ServerMessage): void;
  /** Applies the device's paced-sync settings (a transport without pacing leaves it out). */
  pace?(settings: PaceSettings | null): void;
}

export interface HandshakeRequest {
  principal: Principal;
  expiresAt: number | null;
  deviceId?: string;
  rid?: Rid;
  extras?: HelloExtras;
}

/**
 * Authenticates `conn` as `req.principal` and sends the welcome (and `pending`, for a device).
 * `pendingCursorSave` is the save of this device's cursor still in flight from an earlier connection.
 */
export async function handshake(
  conn: HandshakeTarget,
  ctx: Pick<RealtimeContext, 'store' | 'config' | 'admission' | 'collections'>,
  req: HandshakeRequest,
  pendingCursorSave: (key: string) => Promise<void> | undefined,
): Promise<void> {
  const { principal, expiresAt, deviceId, rid, extras = {} } = req;
  if (
    conn.principal &&
    (conn.principal.tenant !== principal.tenant || conn.principal.user !== principal.user)
  ) {
    throw new SyncError('FORBIDDEN', 'a connection cannot change its tenant or user; open a new one');
  }
  if (extras.device && !(deviceId ?? conn.deviceId)) {
    throw new SyncError('BAD_REQUEST', 'a device registration needs a deviceId');
  }
  if (deviceId) conn.deviceId = deviceId;
  if (extras.capabilities) conn.writer.batch = extras.capabilities.includes('batch');
  const devices = new DeviceRegistry(ctx.store, ctx.config.retention.maxDevicesPerUser);
  if (conn.deviceId) {
    // A registered device (or one registering now) syncs its categories only.
    const device = extras.device
      ? await devices.register(principal.tenant, principal.user, conn.deviceId, extras.device, {
          seen: true,
        })
      : await devices.seen(principal.tenant, principal.user, conn.deviceId);
    conn.channels.setCategories(device?.categories ?? null);
    conn.pace?.(device);
  }
  if (!conn.principal) {
    if (!ctx.admission.admit(principal.tenant, principal.user)) {
      throw new SyncError('RATE_LIMITED', 'too many connections for this user; reconnect later');
    }
    conn.admitted = true;
  }
  conn.principal = conn.deviceId ? { ...principal, deviceId: conn.deviceId } : principal;
  conn.expiresAt = expiresAt;
  const welcome: ServerMessage = {
    type: 'welcome',
    connectionId: conn.id,
    tenant: principal.tenant,
    user: principal.user,
    roles: principal.roles,
    serverTime: new Date().toISOString(),
    heartbeatMs: ctx.config.heartbeatMs,
    protocol: PROTOCOL_VERSION,
  };
  if (rid !== undefined) welcome.rid = rid;
  if (conn.deviceId) {
    await pendingCursorSave(cursorKey(principal.tenant, principal.user, conn.deviceId));
    const cursor = await ctx.store.getCursor(principal.tenant, principal.user, conn.deviceId);
    if (cursor !== null) {
      welcome.cursor = cursor;
      conn.ackedSeq = Math.max(conn.ackedSeq, cursor);
    }
  }
  // What waits for the device is read before the welcome, so the two frames leave together.
  const counted = conn.deviceId
    ? await devices.pending(
        principal.tenant,
        principal.user,
        conn.deviceId,
        conn.channels.categories,
        conn.ackedSeq,
      )
    : null;
  // Counted as the caller would receive them: changes the access rules hide from it are left out.
  const pending =
    counted && (await readablePending(principal, counted, pendingSources(ctx, principal.tenant)));
  conn.send(welcome);
  if (pending && conn.deviceId) conn.send({ type: 'pending', deviceId: conn.deviceId, ...pending });
}

/** Where the access rules read a tenant's settings and changes to count a device's pending changes. */
export function pendingSources(
  ctx: Pick<RealtimeContext, 'store' | 'collections'>,
  tenant: string,
): PendingSources {
  return {
    collectionOf: (name) => ctx.collections.get(tenant, name),
    readEvents: (query) => ctx.store.readEvents(tenant, { ...query, kind: 'record' }),
    limit: PENDING_COUNT_LIMIT,
  };
}
