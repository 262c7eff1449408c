/**
 * SSRF protection: webhook URLs that reach loopback, private, link-local or metadata addresses are
 * refused at registration in every spelling (decimal, octal and hex IPv4, IPv6, IPv4-mapped IPv6,
 * names that resolve there), and again when a delivery connects, unless the allow-list covers them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { expectError } from '../http/rest.ts';
import { eventually, Receiver } from './receiver.ts';
import { adminClient, deliveries, publish, register } from './support.ts';

const BLOCKED = [
  'http://127.0.0.1:8080/hook',
  'http://2130706433/', // 127.0.0.1 as one decimal number
  'http://0x7f000001/', // ... as hex
  'http://0177.0.0.1/', // ... with an octal first byte
  'http://127.1/', // ... shortened
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/', // IPv4-mapped IPv6
  'http://[::ffff:7f00:1]/', // ... in hex groups
  'http://[64:ff9b::a9fe:a9fe]/', // NAT64 of 169.254.169.254
  'http://169.254.169.254/latest/meta-data/',
  'http://[fd00:ec2::254]/', // IPv6 unique local (AWS metadata over IPv6)
  'http://[fe80::1]/',
  'http://100.100.100.200/', // shared address space (a cloud metadata endpoint)
  'http://10.1.2.3/',
  'http://172.16.0.1/',
  'http://192.168.0.10/',
  'http://0.0.0.0/',
  'http://localhost:4025/',
];

describe('SSRF protection without an allow-list (sqlite)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite');
  });
  afterAll(async () => srv?.close());

  it.each(BLOCKED)('refuses %s', async (url) => {
    const api = adminClient(srv, 'ssrf');
    const res = await api.post('/v1/webhooks', { json: { name: 'n', url, eventTypes: ['*'] } });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toMatch(/may not target/);
  });

  it('names the address a decimal URL stands for, and refuses a PATCH to a blocked URL', async () => {
    const api = adminClient(srv, 'ssrf');
    const res = await api.post('/v1/webhooks', {
      json: { name: 'n', url: 'http://2130706433/', eventTypes: ['*'] },
    });
    expect(res.body.error.message).toContain('127.0.0.1');
    expect(res.body.error.message).toMatch(/loopback/);
    const meta = await api.post('/v1/webhooks', {
      json: { name: 'n', url: 'http://169.254.169.254/', eventTypes: ['*'] },
    });
    expect(meta.body.error.message).toMatch(/link-local/);
    expect((await api.get('/v1/webhooks')).body.webhooks).toEqual([]);
  });

  it('refuses a host that does not resolve', async () => {
    const api = adminClient(srv, 'ssrf');
    const res = await api.post('/v1/webhooks', {
      json: { name: 'n', url: 'http://no-such-host.invalid/', eventTypes: ['*'] },
    });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toMatch(/does not resolve/);
  });
});

describe('SSRF protection with an allow-list (sqlite)', () => {
  it('allows only the listed range, and checks again at delivery time', async () => {
    const receiver = await Receiver.start();
    const first = await startTestServer('sqlite', { webhookAllowPrivate: ['127.0.0.1/32', '::1/128'] });
    let second: TestServer | null = null;
    try {
      const api = adminClient(first, 'allow');
      expectError(
        await api.post('/v1/webhooks', { json: { name: 'n', url: 'http://10.0.0.1/', eventTypes: ['*'] } }),
        400,
        'BAD_REQUEST',
      );
      const byAddress = await register(api, { url: receiver.url, eventTypes: ['e'] });
      const byName = await register(api, {
        url: receiver.url.replace('127.0.0.1', 'localhost'),
        eventTypes: ['e'],
      });
      const patched = await api.patch(`/v1/webhooks/${byAddress.id}`, {
        json: { url: 'http://192.168.1.1/' },
      });
      expectError(patched, 400, 'BAD_REQUEST');
      await publish(api, 'e', { n: 1 });
      await receiver.waitFor(2);

      // The same data, served by a node without the allow-list: its deliveries are refused at connect time.
      await first.close({ keepData: true });
      second = await startTestServer('sqlite', {}, first.storage);
      const api2 = adminClient(second, 'allow');
      await publish(api2, 'e', { n: 2 });
      for (const hook of [byAddress, byName]) {
        const refused = await eventually(async () => {
          const list = await deliveries(api2, hook.id, '?attempts=true');
          return list.find((d) => d.attemptLog.length > 0 && d.status !== 'success');
        });
        expect(refused.attemptLog[0].error).toMatch(/refused by SSRF protection/);
        expect(refused.attemptLog[0].responseStatus).toBeNull();
      }
      expect(receiver.requests.length).toBe(2);
    } finally {
      await receiver.close();
      if (second) await second.close();
      else await first.close();
    }
  });

  it('a wrong allow-list entry or retry schedule stops the start with a clear message', () => {
    expect(() => loadConfig({ env: { SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/33' } })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ env: { SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: 'example.com' } })).toThrow(
      /"example.com" is not an IP address or CIDR/,
    );
    expect(() => loadConfig({ env: { SYNCBRIDGE_WEBHOOK_RETRY_SCHEDULE: '1s,soon' } })).toThrow(
      /webhookRetrySchedule/,
    );
    const ok = loadConfig({
      env: {
        SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32,10.0.0.0/8',
        SYNCBRIDGE_WEBHOOK_RETRY_SCHEDULE: 'long',
      },
    });
    expect(ok.webhookAllowPrivate).toEqual(['127.0.0.1/32', '10.0.0.0/8']);
    expect(ok.webhookRetrySchedule).toBe('long');
  });
});
