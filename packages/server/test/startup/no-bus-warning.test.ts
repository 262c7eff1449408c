/**
 * A node on PostgreSQL started without SYNCBRIDGE_BUS_URL says so: it runs on the in-process bus, which
 * is right for one node but leaves a node of a cluster outside it. The warning is logged once at start,
 * and not when the bus is set (memory:// included, for a deliberate single node) or the store is SQLite.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { NO_BUS_WARNING, openBus } from '../../src/startup/open-bus.ts';

async function warningsAt(settings: { busUrl?: string; databaseUrl?: string }): Promise<string[]> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const bus = await openBus(
    { nodeId: 'n1', connectRetryMs: 100, ...settings },
    pino({ level: 'info' }, sink),
  );
  await bus.close();
  return lines
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level === 40)
    .map((entry) => entry.msg);
}

describe('a node on PostgreSQL without a bus URL', () => {
  it('warns that it is not part of a cluster and names the setting', async () => {
    const warnings = await warningsAt({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(warnings).toEqual([NO_BUS_WARNING]);
    expect(NO_BUS_WARNING).toContain('SYNCBRIDGE_BUS_URL');
  });

  it('does not warn when the bus is set to memory:// on purpose, or on SQLite', async () => {
    expect(
      await warningsAt({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/test', busUrl: 'memory://' }),
    ).toEqual([]);
    expect(await warningsAt({})).toEqual([]);
  });
});
