import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('Prometheus metrics of the write path', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', { collections: { strict: { strategy: 'server_wins' } } });
  });
  afterAll(async () => srv?.close());

  it('counts mutations by outcome and times group commits', async () => {
    const token = await srv.token('m', 'writer');
    const post = (mutations: unknown[]) =>
      fetch(`${srv.url}/v1/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mutations }),
      });
    await post([
      { mid: 'a', collection: 'strict', id: 'x', op: 'put', data: { v: 1 } },
      { mid: 'b', collection: 'strict', id: 'x', op: 'put', data: { v: 2 }, baseVersion: 0 },
    ]);
    await post([{ mid: 'a', collection: 'strict', id: 'x', op: 'put', data: { v: 1 } }]);
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    expect(text).toMatch(/syncbridge_mutations_total\{status="applied"\} 1\b/);
    expect(text).toMatch(/syncbridge_mutations_total\{status="rejected"\} 1\b/);
    expect(text).toMatch(/syncbridge_mutations_total\{status="duplicate"\} 1\b/);
    expect(text).toMatch(/syncbridge_commit_duration_seconds_count [1-9]/);
    expect(text).toMatch(/syncbridge_log_events_total\{kind="record"\} 1\b/);
  });
});
