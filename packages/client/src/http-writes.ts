/**
 * The client's requests over REST, for a link without a socket to send them on (server-sent events):
 * `mutate` → POST /v1/mutations, `publish` → POST /v1/events, `resolve` → POST /v1/conflicts/{id}/resolve,
 * `ack` → POST /v1/devices/{id}/ack. Each answer comes back as the server message the WebSocket would
 * have sent (`results`, `ok`, `error` with the request's `rid`), so the rest of the client cannot tell.
 * The same `mid`s go to the server, so a write retried after a lost answer is a `duplicate`, never twice.
 * A request that never got an answer (the network failed) is reported as lost, as a dropped socket is.
 * `registerDevice` is the `hello`'s `device` over REST (POST /v1/devices), before a stream opens.
 * Every request takes the link's abort signal, so none outlives `client.close()`.
 */
import type { ClientMessage, DeviceInfo, ErrorCode, ServerMessage } from '@syncbridge/protocol';

export interface HttpWriteTarget {
  base: string;
  token: string;
  deviceId?: string;
  fetch: typeof fetch;
  /** Aborts the request (the link closed). */
  signal?: AbortSignal;
}

/** The HTTP base of a realtime URL: ws→http, wss→https, without `/v1/realtime` or its query. */
export function streamBaseOf(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'ws:') parsed.protocol = 'http:';
  else if (parsed.protocol === 'wss:') parsed.protocol = 'https:';
  parsed.pathname = parsed.pathname.replace(/\/v1\/(realtime|stream)\/?$/, '') || '/';
  parsed.search = '';
  return parsed.toString().replace(/\/$/, '');
}

/** Waits for `promises` to settle, at most `ms`. */
export async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** A request's answer as a server message, or 'lost' when the network failed before one arrived. */
export type HttpAnswer = ServerMessage | null | 'lost';

async function call(
  target: HttpWriteTarget,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> } | 'lost'> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${target.token}`,
    'Content-Type': 'application/json',
  };
  if (target.deviceId) headers['X-Device-Id'] = target.deviceId;
  try {
    const res = await target.fetch(`${target.base}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      ...(target.signal ? { signal: target.signal } : {}),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // not JSON (a proxy's error page): judged by the status alone
    }
    return { status: res.status, json };
  } catch {
    return 'lost';
  }
}

function errorOf(rid: ClientMessage['rid'], status: number, json: Record<string, unknown>): ServerMessage {
  const error = (json.error ?? {}) as { code?: ErrorCode; message?: string; details?: unknown };
  const message: ServerMessage = {
    type: 'error',
    code: error.code ?? (status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST'),
    message: error.message ?? `HTTP ${status}`,
  };
  if (rid !== undefined) message.rid = rid;
  if (error.details !== undefined) message.details = error.details;
  return message;
}

/** Sends one client request over REST; its answer as the WebSocket would give it (null: none). */
export async function sendOverHttp(target: HttpWriteTarget, message: ClientMessage): Promise<HttpAnswer> {
  const rid = message.rid;
  switch (message.type) {
    case 'mutate': {
      const res = await call(target, '/v1/mutations', { mutations: message.mutations });
      if (res === 'lost') return res;
      if (res.status !== 200) return errorOf(rid, res.status, res.json);
      return { type: 'results', rid, results: res.json.results as never };
    }
    case 'publish': {
      const res = await call(target, '/v1/events', message.event);
      if (res === 'lost') return res;
      if (res.status !== 200 && res.status !== 201) return errorOf(rid, res.status, res.json);
      const { seq, eventId, duplicate } = res.json as { seq: number; eventId: string; duplicate?: boolean };
      return { type: 'ok', rid, seq, eventId, ...(duplicate ? { duplicate } : {}) };
    }
    case 'resolve': {
      const path = `/v1/conflicts/${encodeURIComponent(message.conflictId)}/resolve`;
      const body = {
        resolution: message.resolution,
        ...(message.data === undefined ? {} : { data: message.data }),
      };
      const res = await call(target, path, body);
      if (res === 'lost') return res;
      if (res.status !== 200) return errorOf(rid, res.status, res.json);
      return { type: 'results', rid, results: [res.json.result as never] };
    }
    case 'ack': {
      if (!target.deviceId) return null;
      // Acks have no answer; one that is lost is sent again with the next one.
      await call(target, `/v1/devices/${encodeURIComponent(target.deviceId)}/ack`, { seq: message.seq });
      return null;
    }
    case 'ping':
      return { type: 'pong', rid, serverTime: new Date().toISOString() };
    default:
      return null;
  }
}

/** What registering the device over REST came to: done, refused (401, with the server's message), or not. */
export type RegistrationAnswer = { ok: true } | { ok: false; status: number; message: string } | 'lost';

/**
 * Registers (or updates) the device as `hello`'s `device` does on a WebSocket: POST /v1/devices with
 * its id and fields, so the stream opened next is paced by the device's budget, priorities and conflation.
 */
export async function registerDevice(
  target: HttpWriteTarget & { deviceId: string },
  device: DeviceInfo,
): Promise<RegistrationAnswer> {
  const res = await call(target, '/v1/devices', { ...device, id: target.deviceId });
  if (res === 'lost') return res;
  if (res.status === 200 || res.status === 201) return { ok: true };
  const error = (res.json.error ?? {}) as { message?: string };
  return { ok: false, status: res.status, message: error.message ?? `HTTP ${res.status}` };
}
