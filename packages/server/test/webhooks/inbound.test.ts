/**
 * Inbound webhooks on every store: a configured platform posts its own webhooks to
 * /v1/inbound/{source}; the signature is checked (Standard Webhooks or hex HMAC), a duplicate by the
 * provider's event id is acknowledged without a second event, the payload becomes a domain event of
 * the source's tenant, and that event flows on to the other platforms' outbound webhooks.
 */
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, rest } from '../http/rest.ts';
import { Receiver } from './receiver.ts';
import { adminClient, register } from './support.ts';

const kinds = await storeKinds();
const POWENS_SECRET = `whsec_${Buffer.from('powens-inbound-secret-0123456789').toString('base64')}`;
const BFC_SECRET = 'bfc-inbound-secret-42';

function standardHeaders(id: string, body: string, at = new Date()): Record<string, string> {
  const signature = new Webhook(POWENS_SECRET).sign(id, at, body);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  };
}

describe.each(kinds)('inbound webhooks (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      {
        webhookAllowPrivate: ['127.0.0.1/32'],
        inbound: {
          powens: {
            tenant: 'bank',
            platform: 'powens',
            scheme: 'standard',
            secret: POWENS_SECRET,
            types: { 'connection.synced': 'account_synced' },
            payloadField: 'data',
          },
          bfc: {
            tenant: 'bank',
            platform: 'bfc',
            scheme: 'hmac',
            secret: BFC_SECRET,
            idField: 'eventId',
            typeField: 'eventType',
          },
          custom: { tenant: 'bank', platform: 'crm', scheme: 'hmac', secret: 'custom-secret-0001' },
        },
      },
      undefined,
      {
        inboundMappers: {
          custom: ({ body }) => {
            const b = body as { kind: string; customer: string };
            return b.kind === 'noise' ? null : { type: `crm_${b.kind}`, payload: { customer: b.customer } };
          },
        },
      },
    );
  });
  afterAll(async () => srv?.close());

  const post = (source: string, body: string, headers: Record<string, string>) =>
    rest(srv.url, 'POST', `/v1/inbound/${source}`, { raw: body, headers });
  const events = async (type: string) =>
    (await adminClient(srv, 'bank').get(`/v1/events?type=${type}`)).body.events as Array<
      Record<string, unknown>
    >;

  it('accepts a Standard Webhooks request once; the same webhook-id again is a duplicate', async () => {
    const body = JSON.stringify({ type: 'connection.synced', data: { connectionId: 7, accounts: 2 } });
    const first = await post('powens', body, standardHeaders('msg_powens_1', body));
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ received: true, duplicate: false });
    const again = await post('powens', body, standardHeaders('msg_powens_1', body));
    expect(again.body).toMatchObject({
      received: true,
      duplicate: true,
      seq: first.body.seq,
      eventId: first.body.eventId,
    });
    const logged = await events('account_synced');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      seq: first.body.seq,
      type: 'account_synced',
      source: 'powens',
      payload: { connectionId: 7, accounts: 2 },
    });
    const other = await post('powens', body, standardHeaders('msg_powens_2', body));
    expect(other.body.duplicate).toBe(false);
    expect(await events('account_synced')).toHaveLength(2);
  });

  it('refuses bad, missing and stale Standard Webhooks signatures', async () => {
    const body = JSON.stringify({ type: 'connection.synced', data: {} });
    const tampered = standardHeaders('msg_bad', body);
    expectError(await post('powens', `${body} `, tampered), 401, 'UNAUTHORIZED');
    expectError(await post('powens', body, { 'content-type': 'application/json' }), 401, 'UNAUTHORIZED');
    const stale = standardHeaders('msg_old', body, new Date(Date.now() - 10 * 60_000));
    const res = await post('powens', body, stale);
    expectError(res, 401, 'UNAUTHORIZED');
    expect(res.body.error.message).toMatch(/timestamp/);
    expect(await events('account_synced')).toHaveLength(2);
  });

  it('checks a hex HMAC of the raw body and de-duplicates by an id in the body', async () => {
    const body = JSON.stringify({
      eventId: 'bfc-991',
      eventType: 'balance_updated',
      accountId: 'A1',
      balance: 120,
    });
    const sig = createHmac('sha256', BFC_SECRET).update(body).digest('hex');
    const first = await post('bfc', body, { 'content-type': 'application/json', 'x-webhook-signature': sig });
    expect(first.status, first.text).toBe(200);
    expect(first.body.duplicate).toBe(false);
    const dup = await post('bfc', body, {
      'content-type': 'application/json',
      'x-webhook-signature': `sha256=${sig}`,
    });
    expect(dup.body).toMatchObject({ duplicate: true, seq: first.body.seq });
    const logged = await events('balance_updated');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ source: 'bfc', payload: { accountId: 'A1', balance: 120 } });
    expectError(
      await post('bfc', body, { 'content-type': 'application/json', 'x-webhook-signature': 'ab'.repeat(32) }),
      401,
      'UNAUTHORIZED',
    );
  });

  it('maps with a code hook, which may ignore a request', async () => {
    const send = (body: string, id: string) =>
      post('custom', body, {
        'content-type': 'application/json',
        'x-event-id': id,
        'x-webhook-signature': createHmac('sha256', 'custom-secret-0001').update(body).digest('hex'),
      });
    const created = await send(JSON.stringify({ kind: 'customer_created', customer: 'c1' }), 'crm-1');
    expect(created.body).toMatchObject({ received: true, duplicate: false });
    expect(await events('crm_customer_created')).toMatchObject([
      { source: 'crm', payload: { customer: 'c1' } },
    ]);
    const noise = await send(JSON.stringify({ kind: 'noise', customer: 'c1' }), 'crm-2');
    expect(noise.body).toEqual({ received: true, duplicate: false, ignored: true });
  });

  it('answers 404 for a source that is not configured, and 400 without an event id', async () => {
    expectError(await post('nobody', '{}', { 'content-type': 'application/json' }), 404, 'NOT_FOUND');
    const body = JSON.stringify({ eventType: 'x' });
    const sig = createHmac('sha256', BFC_SECRET).update(body).digest('hex');
    expectError(
      await post('bfc', body, { 'content-type': 'application/json', 'x-webhook-signature': sig }),
      400,
      'BAD_REQUEST',
    );
  });

  it("passes an inbound event on to the other platforms' webhooks, never back to its source", async () => {
    const api = adminClient(srv, 'bank');
    const vyomo = await Receiver.start();
    const bfc = await Receiver.start();
    try {
      await register(api, { platform: 'vyomo', url: vyomo.url, eventTypes: ['balance_*'] });
      await register(api, { platform: 'bfc', url: bfc.url, eventTypes: ['balance_*'] });
      const body = JSON.stringify({
        eventId: 'bfc-992',
        eventType: 'balance_updated',
        accountId: 'A2',
        balance: 5,
      });
      const sig = createHmac('sha256', BFC_SECRET).update(body).digest('hex');
      const res = await post('bfc', body, { 'content-type': 'application/json', 'x-webhook-signature': sig });
      const [req] = await vyomo.waitFor(1);
      expect(JSON.parse(req!.body)).toMatchObject({
        type: 'balance_updated',
        source: 'bfc',
        seq: res.body.seq,
        data: { accountId: 'A2', balance: 5 },
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(bfc.requests).toHaveLength(0);
    } finally {
      await Promise.all([vyomo.close(), bfc.close()]);
    }
  });
});
