/**
 * The bus request/reply behind forwarded connector calls, on the in-process bus: a call nobody takes
 * and a call whose runner falls silent end as UNAVAILABLE with when to retry, a shutdown answers every
 * waiting call, and messages from other nodes are checked (schema, size, addressee, runner) before
 * they count.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryBus, MemoryBusNetwork } from '../../src/bus/memory-bus.ts';
import { decodeBusMessage, MAX_CONNECTOR_CALL_CHARS } from '../../src/bus/types.ts';
import type { CallAnswer } from '../../src/connectors/connector-calls.ts';
import { LeaderCalls } from '../../src/connectors/leader-calls.ts';
import { SyncError } from '../../src/core/errors.ts';

const logger = pino({ level: 'silent' });
const fast = { acceptMs: 100, workingEveryMs: 20, silenceMs: 100, retryAfterMs: 1500 };

function cluster() {
  const network = new MemoryBusNetwork();
  const busA = new MemoryBus('a', network);
  const busB = new MemoryBus('b', network);
  return {
    network,
    busA,
    busB,
    a: new LeaderCalls(busA, 'a', logger, fast),
    b: new LeaderCalls(busB, 'b', logger, fast),
  };
}

async function failure(promise: Promise<unknown>): Promise<SyncError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SyncError);
  return err as SyncError;
}

describe('connector calls over the bus', () => {
  it('answers with the running node’s answer, and its typed error', async () => {
    const { a, b } = cluster();
    b.serve(
      (_tenant, name) => name === 'bank',
      async (_tenant, _name, call): Promise<CallAnswer> => {
        if (call.action === 'trigger' && call.connection === 'nope') {
          throw new SyncError('NOT_FOUND', 'connector bank has no connection nope');
        }
        return { status: 200, body: { runs: [{ status: 'ok' }] } };
      },
    );
    a.serve(
      () => false,
      async () => ({ status: 200, body: null }),
    );
    expect(await a.call('acme', 'bank', { action: 'trigger', wait: true })).toEqual({
      status: 200,
      body: { runs: [{ status: 'ok' }] },
    });
    const err = await failure(a.call('acme', 'bank', { action: 'trigger', connection: 'nope', wait: true }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toBe('connector bank has no connection nope');
    expect(a.pending).toBe(0);
  });

  it('answers UNAVAILABLE, with when to retry, when no node runs the connector', async () => {
    const { a, b } = cluster();
    b.serve(
      () => false,
      async () => ({ status: 200, body: null }),
    );
    const err = await failure(a.call('acme', 'bank', { action: 'symbols' }));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/no node running connector bank answered/);
    expect(err.details).toEqual({ retryAfterMs: 1500 });
    expect(a.pending).toBe(0);
  });

  it('answers UNAVAILABLE when the running node falls silent mid-call', async () => {
    const { a, b, busB } = cluster();
    let started = false;
    b.serve(
      () => true,
      () => {
        started = true;
        return new Promise<CallAnswer>(() => {});
      },
    );
    const call = a.call('acme', 'bank', { action: 'trigger', wait: true });
    // Node B works on it, then vanishes from the bus (as a killed node does).
    await new Promise((r) => setTimeout(r, 60));
    expect(started).toBe(true);
    await busB.close();
    b.close();
    const err = await failure(call);
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/node b running connector bank stopped answering/);
    expect(a.pending).toBe(0);
  });

  it('tells the caller at once when the running node shuts down mid-call', async () => {
    const { a, b } = cluster();
    b.serve(
      () => true,
      () => new Promise<CallAnswer>(() => {}),
    );
    const call = a.call('acme', 'bank', { action: 'subscriptions' });
    await new Promise((r) => setTimeout(r, 30));
    b.close();
    const err = await failure(call);
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/node b running connector bank is shutting down/);
    a.close();
  });

  it('answers every waiting call when the node shuts down, and refuses new ones', async () => {
    const { a, b } = cluster();
    b.serve(
      () => true,
      () => new Promise<CallAnswer>(() => {}),
    );
    const calls = [1, 2, 3].map(() => a.call('acme', 'bank', { action: 'subscriptions' }));
    expect(a.pending).toBe(3);
    a.close();
    expect(a.pending).toBe(0);
    for (const call of calls) expect((await failure(call)).message).toMatch(/shutting down/);
    expect((await failure(a.call('acme', 'bank', { action: 'symbols' }))).code).toBe('UNAVAILABLE');
    b.close();
  });

  it('ignores answers for another node, and another node’s word once a runner took the call', async () => {
    const { network, a, busA } = cluster();
    const forger = new MemoryBus('c', network);
    const intercept = new Promise<string>((resolve) =>
      forger.subscribe((m) => {
        if (m.type === 'connector_call') resolve(m.requestId);
      }),
    );
    const runner = new MemoryBus('b2', network);
    runner.subscribe((m) => {
      if (m.type !== 'connector_call') return;
      runner.publish({
        type: 'connector_answer',
        node: 'b2',
        requestId: m.requestId,
        to: 'a',
        phase: 'working',
      });
      setTimeout(() => {
        runner.publish({
          type: 'connector_answer',
          node: 'b2',
          requestId: m.requestId,
          to: 'a',
          phase: 'done',
          status: 200,
          body: { real: true },
        });
      }, 30);
    });
    const call = a.call('acme', 'bank', { action: 'symbols' });
    const requestId = await intercept;
    await new Promise((r) => setTimeout(r, 10));
    const forged = (to: string) =>
      forger.publish({
        type: 'connector_answer',
        node: 'c',
        requestId,
        to,
        phase: 'done',
        status: 200,
        body: { forged: true },
      });
    forged('someone-else');
    forged('a');
    expect(await call).toEqual({ status: 200, body: { real: true } });
    await busA.close();
  });

  it('drops malformed and oversized calls and answers from the wire', () => {
    const call = {
      type: 'connector_call',
      node: 'b',
      requestId: 'r1',
      tenant: 'acme',
      connector: 'bank',
      timeoutMs: 1000,
      call: { action: 'subscribe', symbols: ['AAPL'], user: 'ann' },
    };
    expect(decodeBusMessage(JSON.stringify(call))).toEqual(call);
    for (const bad of [
      { ...call, call: { action: 'drop_tables' } },
      { ...call, call: { action: 'subscribe', symbols: [], user: 'ann' } },
      { ...call, call: { action: 'subscribe', symbols: ['x'.repeat(129)], user: 'ann' } },
      { ...call, timeoutMs: -1 },
      { ...call, requestId: 'r'.repeat(65) },
      { type: 'connector_answer', node: 'b', requestId: 'r1', to: 'a', phase: 'done', status: 500 },
      { type: 'connector_answer', node: 'b', requestId: 'r1', to: 'a', phase: 'maybe' },
      {
        type: 'connector_answer',
        node: 'b',
        requestId: 'r1',
        to: 'a',
        phase: 'done',
        error: { code: 'TEAPOT', message: 'x' },
      },
    ]) {
      expect(decodeBusMessage(JSON.stringify(bad))).toBeNull();
    }
    const huge = {
      type: 'connector_answer',
      node: 'b',
      requestId: 'r1',
      to: 'a',
      phase: 'done',
      status: 200,
      body: 'x'.repeat(MAX_CONNECTOR_CALL_CHARS),
    };
    expect(decodeBusMessage(JSON.stringify(huge))).toBeNull();
  });
});
