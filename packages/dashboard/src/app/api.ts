/**
 * The REST calls the dashboard makes, with the operator's key or token. Every call is an ordinary
 * authenticated /v1 call: the dashboard has no privileges of its own.
 */
import type {
  Conflict,
  ConnectorHealth,
  ConnectorStatus,
  Delivery,
  DeliveryStatus,
  Device,
  DevicePending,
  LogEvent,
  PlatformHealth,
  Webhook,
} from '@syncbridge/protocol';
import type { Session } from './session.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type { ConnectorHealth, ConnectorStatus } from '@syncbridge/protocol';

export interface ConnectionInfo {
  connectionId: string;
  user: string;
  deviceId?: string;
  connectedAt: string;
  channels: string[];
  remoteAddress?: string;
  node?: string;
}

export interface PendingEvent {
  eventId: string;
  eventType: string;
  seq: number;
  platform: string | null;
  webhookId: string;
  deliveryId: string;
  priority: number | null;
  attempts: number;
  createdAt: string;
  nextAttemptAt: string;
}

export interface SyncStats {
  completedEvents: number;
  failedEvents: number;
  pendingEvents: number;
  avgSyncTimeMs: number | null;
  maxSyncTimeMs: number | null;
  successRate: string | null;
}

export interface EventFilter {
  after: number;
  limit: number;
  type?: string;
  kind?: string;
  collection?: string;
  actor?: string;
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class Api {
  constructor(
    private readonly session: Session,
    /** Called when the server no longer accepts the credential (401), e.g. an expired token. */
    private readonly onUnauthorized: (message: string) => void = () => undefined,
  ) {}

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    if (json) h['content-type'] = 'application/json';
    if (this.session.kind === 'token') h['authorization'] = `Bearer ${this.session.secret}`;
    else {
      h['x-api-key'] = this.session.secret;
      h['x-tenant'] = this.session.tenant;
    }
    return h;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      if (res.status === 401) this.onUnauthorized(err?.message ?? 'unauthorized');
      throw new ApiError(res.status, err?.code ?? 'INTERNAL', err?.message ?? `HTTP ${res.status}`);
    }
    return parsed as T;
  }

  /** A user token for the WebSocket, minted with the operator's API key (admin role, for this tenant). */
  async mintToken(ttlSeconds: number): Promise<{ token: string; expiresAt: string }> {
    const res = await fetch('/v1/auth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': this.session.secret },
      body: JSON.stringify({ tenant: this.session.tenant, user: 'dashboard', roles: ['admin'], ttlSeconds }),
    });
    const body = (await res.json()) as {
      token?: string;
      expiresAt?: string;
      error?: { code: string; message: string };
    };
    if (!res.ok || !body.token) {
      throw new ApiError(res.status, body.error?.code ?? 'INTERNAL', body.error?.message ?? 'no token');
    }
    return { token: body.token, expiresAt: body.expiresAt ?? '' };
  }

  health = () =>
    this.call<{ health: PlatformHealth[]; connectors: ConnectorHealth[] }>('GET', '/v1/sync/health');
  pending = (platform?: string) =>
    this.call<{ count: number; events: PendingEvent[] }>(
      'GET',
      `/v1/sync/pending${query({ platform, limit: 200 })}`,
    );
  trigger = (target: { platform?: string; webhookId?: string }) =>
    this.call<{ triggered: number; message: string }>('POST', '/v1/sync/trigger', target);
  stats = (days: number) =>
    this.call<{ days: number; stats: SyncStats; platforms: { platform: string | null; stats: SyncStats }[] }>(
      'GET',
      `/v1/stats${query({ days })}`,
    );
  events = (f: EventFilter) =>
    this.call<{ events: LogEvent[]; head: number }>('GET', `/v1/events${query({ ...f })}`);
  collections = () => this.call<{ collections: { name: string }[] }>('GET', '/v1/collections');
  connections = () => this.call<{ connections: ConnectionInfo[] }>('GET', '/v1/connections');
  devices = () => this.call<{ devices: Device[] }>('GET', '/v1/devices');
  device = (user: string, id: string) =>
    this.call<Device & { pending: DevicePending }>(
      'GET',
      `/v1/devices/${encodeURIComponent(id)}${query({ user })}`,
    );
  conflicts = (status: 'open' | 'resolved') =>
    this.call<{ conflicts: Conflict[] }>('GET', `/v1/conflicts${query({ status, limit: 500 })}`);
  resolve = (id: string, resolution: 'accept_local' | 'accept_server' | 'merge', data?: unknown) =>
    this.call<{ conflict: Conflict }>('POST', `/v1/conflicts/${encodeURIComponent(id)}/resolve`, {
      resolution,
      ...(data === undefined ? {} : { data }),
    });
  webhooks = () => this.call<{ webhooks: Webhook[] }>('GET', '/v1/webhooks');
  setWebhookStatus = (id: string, status: 'active' | 'paused' | 'disabled') =>
    this.call<Webhook>('PUT', `/v1/webhooks/${encodeURIComponent(id)}/status`, { status });
  deliveries = (id: string, status?: DeliveryStatus, limit = 100) =>
    this.call<{ deliveries: Delivery[] }>(
      'GET',
      `/v1/webhooks/${encodeURIComponent(id)}/deliveries${query({ status, limit, attempts: true })}`,
    );
  retryDelivery = (id: string, deliveryId: string) =>
    this.call<Delivery>(
      'POST',
      `/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/retry`,
    );
  replay = (id: string, since: string, onlyFailed: boolean) =>
    this.call<{ queued: number }>('POST', `/v1/webhooks/${encodeURIComponent(id)}/replay`, {
      since,
      onlyFailed,
    });
  connectors = () => this.call<{ connectors: ConnectorStatus[] }>('GET', '/v1/connectors');
  triggerConnector = (name: string) =>
    this.call<unknown>('POST', `/v1/connectors/${encodeURIComponent(name)}/trigger`, {
      wait: false,
      reason: 'trigger from the dashboard',
    });
}
