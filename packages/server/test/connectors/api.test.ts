/**
 * The connector API for users' own connectors: one built in code (StartOptions.connectors) and one of a
 * kind registered in code (StartOptions.connectorKinds) defined in the config file and over REST. They
 * get the same status, metrics, trigger route and topic channels as the built-in kinds; a connector that
 * fails to start is shown as failed without taking the server down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import {
  type Connector,
  type ConnectorContext,
  type ConnectorHealth,
  type ConnectorSpec,
  ConnectorSpecError,
  type TriggerResult,
} from '../../src/connectors/types.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { rest } from '../http/rest.ts';
import { adminRest, metricValue, waitFor, waitForFrame } from './support.ts';

const kinds = await storeKinds();

/** Counts: every trigger writes a `counters` record and publishes a tick of its topic. */
class CounterConnector implements Connector {
  readonly kind = 'counter';
  private ctx: ConnectorContext | null = null;
  private count = 0;
  private lastAt: number | null = null;

  constructor(
    readonly name: string,
    readonly tenant: string,
    private readonly step = 1,
    private readonly failStart = false,
  ) {}

  async start(ctx: ConnectorContext): Promise<void> {
    if (this.failStart) throw new Error('upstream credentials rejected');
    this.ctx = ctx;
    this.count = (await ctx.state.get<number>('count')) ?? 0;
    await ctx.topics.declare(this.name);
  }

  async trigger(): Promise<TriggerResult> {
    const ctx = this.ctx!;
    this.count += this.step;
    await ctx.state.put('count', this.count);
    const [result] = await ctx.mutate([
      {
        mid: `${this.name}-${this.count}`,
        collection: 'counters',
        id: this.name,
        op: 'put',
        data: { count: this.count },
      },
    ]);
    ctx.topics.tick(this.name, { symbol: 'COUNT', price: this.count });
    this.lastAt = Date.now();
    return { runs: [{ status: result!.status === 'applied' ? 'ok' : 'failed', count: this.count }] };
  }

  health(): ConnectorHealth {
    return {
      state: this.ctx ? 'running' : 'stopped',
      lastSuccessAt: this.lastAt ? new Date(this.lastAt).toISOString() : null,
      lastError: null,
      stalenessMs: null,
      stale: false,
      details: { count: this.count },
    };
  }

  metrics(): Record<string, number> {
    return { count: this.count };
  }

  stop(): void {
    this.ctx = null;
  }
}

/** A counter whose `start` waits until the test opens the gate: its status while it starts. */
class GatedConnector extends CounterConnector {
  static gate: Promise<void> = Promise.resolve();

  override async start(ctx: ConnectorContext): Promise<void> {
    await GatedConnector.gate;
    await super.start(ctx);
  }
}

function counterKind(spec: ConnectorSpec): Connector {
  if (spec.step !== undefined && (typeof spec.step !== 'number' || spec.step < 1)) {
    throw new ConnectorSpecError([`${spec.name}/step: must be a number of at least 1`]);
  }
  return new CounterConnector(
    spec.name,
    spec.tenant,
    (spec.step as number | undefined) ?? 1,
    spec.failStart === true,
  );
}

describe.each(kinds)('connector API (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof adminRest>;
  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      {
        connectors: {
          instances: [
            { name: 'tens', tenant: 'acme', kind: 'counter', step: 10 } as ConnectorSpec,
            { name: 'broken', tenant: 'acme', kind: 'counter', failStart: true } as ConnectorSpec,
          ],
        },
      },
      undefined,
      {
        connectors: [new CounterConnector('ones', 'acme')],
        connectorKinds: {
          counter: counterKind,
          gated: (spec) => new GatedConnector(spec.name, spec.tenant),
        },
      },
    );
    admin = adminRest(srv.url, srv.adminKey, 'acme');
  });
  afterAll(async () => srv?.close());

  it('lists code and config connectors with their origin and state; a failed start does not stop the server', async () => {
    const list = (await admin('GET', '/v1/connectors')).body.connectors;
    expect(
      list.map((c: { name: string; origin: string; state: string }) => [c.name, c.origin, c.state]),
    ).toEqual([
      ['broken', 'config', 'failed'],
      ['ones', 'code', 'running'],
      ['tens', 'config', 'running'],
    ]);
    expect(list[0].startError).toBe('upstream credentials rejected');
    expect((await admin('GET', '/v1/connectors/ones')).body.spec).toBeUndefined();
    expect((await admin('DELETE', '/v1/connectors/ones')).status).toBe(403);
    expect((await admin('POST', '/v1/connectors/broken/trigger', {})).status).toBe(503);
  });

  it('triggers a custom connector: its writes reach the log as connector:<name>, its ticks reach topic subscribers', async () => {
    const screen = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'viewer'));
    expect((await screen.request({ type: 'subscribe', channel: 'topic:tens' })).type).toBe('subscribed');
    const run = await admin('POST', '/v1/connectors/tens/trigger', {});
    expect(run.body).toEqual({ runs: [{ status: 'ok', count: 10 }] });
    const tick = await waitForFrame(screen, (m) => m.type === 'tick' && m.channel === 'topic:tens');
    expect(tick).toMatchObject({ symbol: 'COUNT', price: 10, seq: 1 });
    const record = (await admin('GET', '/v1/records/counters/tens')).body;
    expect(record).toMatchObject({ data: { count: 10 }, updatedBy: 'connector:tens' });
    const status = (await admin('GET', '/v1/connectors/tens')).body;
    expect(status).toMatchObject({ details: { count: 10 }, metrics: { count: 10 }, triggerable: true });
    expect(
      await metricValue(
        srv.url,
        srv.adminKey,
        'syncbridge_connector_metric{tenant="acme",connector="tens",metric="count"}',
      ),
    ).toBe(10);
    expect(
      await metricValue(
        srv.url,
        srv.adminKey,
        'syncbridge_connector_up{tenant="acme",connector="tens",kind="counter"}',
      ),
    ).toBe(1);
    await screen.close();
  });

  it('defines a connector of a code-registered kind over REST, with the kind checking its options', async () => {
    const bad = await admin('POST', '/v1/connectors', { name: 'fives', kind: 'counter', step: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/step: must be a number/);
    const unknown = await admin('POST', '/v1/connectors', { name: 'x', kind: 'nope' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(
      /unknown connector kind "nope" \(kinds: ws-feed, pull, pg-cdc, counter, gated\)/,
    );
    const otherTenant = await admin('POST', '/v1/connectors', {
      name: 'x',
      kind: 'counter',
      tenant: 'globex',
    });
    expect(otherTenant.status).toBe(403);
    const created = await admin('POST', '/v1/connectors', { name: 'fives', kind: 'counter', step: 5 });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: 'fives', tenant: 'acme', origin: 'api', state: 'running' });
    expect((await admin('POST', '/v1/connectors/fives/trigger', {})).body.runs[0].count).toBe(5);
    expect((await admin('POST', '/v1/connectors/fives/trigger', {})).body.runs[0].count).toBe(10);

    // Another tenant sees none of acme's connectors.
    const globex = await rest(srv.url, 'GET', '/v1/connectors', { token: await srv.token('globex', 'g') });
    expect(globex.body.connectors).toEqual([]);
    expect(
      (await rest(srv.url, 'GET', '/v1/connectors/fives', { token: await srv.token('globex', 'g') })).status,
    ).toBe(404);
    expect((await admin('DELETE', '/v1/connectors/fives')).status).toBe(204);
  });

  it('shows a connector as starting, led by this node, while its start runs', async () => {
    let open = (): void => {};
    GatedConnector.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const created = admin('POST', '/v1/connectors', { name: 'slow', kind: 'gated' });
    try {
      const led = await waitFor(
        () => admin('GET', '/v1/connectors/slow'),
        (r) => r.status === 200 && r.body.role === 'leader',
        'this node to take the lease of the new connector',
        30_000,
      );
      expect(led.body).toMatchObject({ name: 'slow', state: 'starting', role: 'leader' });
      const listed = (await admin('GET', '/v1/connectors')).body.connectors;
      expect(listed.find((c: { name: string }) => c.name === 'slow')).toMatchObject({ state: 'starting' });
      const series = 'syncbridge_connector_state{tenant="acme",connector="slow",state="starting"}';
      expect(await metricValue(srv.url, srv.adminKey, series)).toBe(1);
    } finally {
      open();
    }
    const done = await created;
    expect(done.status, done.text).toBe(201);
    expect(done.body).toMatchObject({ name: 'slow', state: 'running', role: 'leader' });
    expect((await admin('GET', '/v1/connectors/slow')).body.state).toBe('running');
    expect((await admin('DELETE', '/v1/connectors/slow')).status).toBe(204);
  });
});

describe('connector settings in the config file', () => {
  it('refuses wrong options with a message naming each one', () => {
    let problems: string[] = [];
    try {
      loadConfig({
        env: {},
        overrides: {
          maxBufferedBytes: 1024 * 1024,
          connectors: {
            conflateAboveBytes: 2 * 1024 * 1024,
            instances: [
              { name: 'feed', tenant: 'acme', kind: 'ws-feed', url: 'http://not-ws' } as ConnectorSpec,
              {
                name: 'bank',
                tenant: 'acme',
                kind: 'pull',
                schedule: 'every day',
                http: { baseUrl: 'https://api.example', changesPath: '/c' },
                connections: [{ id: 'a' }, { id: 'a' }],
              } as ConnectorSpec,
              { name: 'bank', tenant: 'acme', kind: 'custom' } as ConnectorSpec,
            ],
          },
        },
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      'connectors.conflateAboveBytes (2097152) must be below maxBufferedBytes (1048576): a subscriber is disconnected as a slow consumer past the latter',
      'connectors.instances[0]/subscribeMessage: Expected required property',
      `connectors.instances[0]/url: Expected string to match '^wss?://' (got "http://not-ws")`,
      expect.stringMatching(/^connectors\.instances\[1\]\/schedule: not a cron expression: /),
      'connectors.instances[1]/connections: connection a is listed twice',
      'connectors.instances[2]: connector bank of tenant acme is defined twice',
    ]);
  });
});
