import { pino } from 'pino';
import { MemoryBus, MemoryBusNetwork } from '../../src/bus/memory-bus.ts';
import { NatsBus } from '../../src/bus/nats-bus.ts';
import { PostgresBus } from '../../src/bus/postgres-bus.ts';
import { RedisBus } from '../../src/bus/redis-bus.ts';
import { POSTGRES_URL, storeKinds } from '../helpers/server.ts';
import { NATS_URL, REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { runBusConformance } from './bus-conformance.ts';

const logger = pino({ level: 'silent' });

runBusConformance('memory', async (ids) => {
  const network = new MemoryBusNetwork();
  return ids.map((id) => new MemoryBus(id, network));
});

if (requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379))) {
  runBusConformance('redis', async (ids) =>
    Promise.all(
      ids.map(async (id) => {
        const bus = new RedisBus(REDIS_URL, id, logger);
        await bus.start();
        return bus;
      }),
    ),
  );
}

if (requireService(`NATS at ${NATS_URL}`, await tcpAvailable(NATS_URL, 4222))) {
  runBusConformance('nats', async (ids) =>
    Promise.all(ids.map((id) => NatsBus.connect(NATS_URL, id, logger))),
  );
}

if ((await storeKinds()).includes('postgres')) {
  runBusConformance('postgres', async (ids) => {
    // A channel of its own per run, so concurrent runs on the same database never hear each other.
    const channel = `sb_conformance_${Math.random().toString(36).slice(2, 10)}`;
    return Promise.all(ids.map((id) => PostgresBus.connect(POSTGRES_URL, id, logger, channel)));
  });
}
