/** Shared steps of the webhook suites: admin REST calls, registering endpoints, publishing events. */
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { expect } from 'vitest';
import type { ServerConfig } from '../../src/config/config.ts';
import { type StoreKind, startTestServer, type TestServer } from '../helpers/server.ts';
import { type Json, restClient } from '../http/rest.ts';
import type { ReceivedRequest } from './receiver.ts';

/** Test servers may reach the local receivers; retries are quick unless a test asks otherwise. */
export function startWebhookServer(
  kind: StoreKind,
  overrides: Partial<ServerConfig> = {},
): Promise<TestServer> {
  return startTestServer(kind, {
    webhookAllowPrivate: ['127.0.0.1/32'],
    webhookRetrySchedule: '100ms,200ms,400ms',
    webhookPollMs: 200,
    ...overrides,
  });
}

export function adminClient(srv: { url: string; adminKey: string }, tenant: string) {
  return restClient(srv.url, { apiKey: srv.adminKey, tenant });
}

export type Admin = ReturnType<typeof adminClient>;

export async function register(api: Admin, body: Record<string, unknown>): Promise<Json> {
  const res = await api.post('/v1/webhooks', { json: { name: 'test endpoint', eventTypes: ['*'], ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export async function publish(
  api: Admin,
  type: string,
  payload: unknown,
  extra: Record<string, unknown> = {},
) {
  const res = await api.post('/v1/events', { json: { type, payload, ...extra } });
  expect(res.status, res.text).toBe(201);
  return res.body as { seq: number; eventId: string };
}

/** Asserts both signatures of a received delivery verify with `secret`; returns the parsed body. */
export function verifySignatures(req: ReceivedRequest, secret: string): Json {
  const headers = req.headers as Record<string, string>;
  const format = secret.startsWith('whsec_') ? undefined : ({ format: 'raw' } as const);
  const parsed = new Webhook(secret, format).verify(req.body, headers);
  const hex = createHmac('sha256', secret).update(req.body).digest('hex');
  expect(headers['x-webhook-signature']!.split(',')).toContain(hex);
  expect(headers['x-event-id']).toBe(headers['webhook-id']);
  return parsed;
}

export async function deliveries(api: Admin, webhookId: string, query = ''): Promise<Json[]> {
  const res = await api.get(`/v1/webhooks/${webhookId}/deliveries${query}`);
  expect(res.status, res.text).toBe(200);
  return res.body.deliveries;
}
