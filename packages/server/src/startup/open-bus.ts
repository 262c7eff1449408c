/**
 * Opens the bus that `busUrl` names (memory when none): Redis, NATS or PostgreSQL, retrying an
 * unreachable broker for `connectRetryMs` at start. Every bus listens on a channel of its own per
 * database schema (a NOTIFY channel, a Redis channel, a NATS subject), so deployments (and test
 * clusters) in separate schemas sharing one broker never hear each other.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { MemoryBus, type MemoryBusNetwork } from '../bus/memory-bus.ts';
import type { Bus } from '../bus/types.ts';
import { causeOf, RETRY_HINT, reach, StartupError, whereIs } from './reach.ts';

/** The settings a bus is opened with (a subset of the server's config). */
export interface BusSettings {
  busUrl?: string;
  /** The store's URL: a node on PostgreSQL without a bus is warned that it does not join a cluster. */
  databaseUrl?: string;
  nodeId: string;
  connectRetryMs: number;
  databaseSchema?: string;
}

/** The NOTIFY channel of a schema's cluster (an identifier: at most 63 bytes). */
export function busChannel(schema: string | undefined): string {
  if (!schema) return 'syncbridge';
  const name = `syncbridge_${schema}`;
  return name.length <= 63
    ? name
    : `syncbridge_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/** The Redis channel or NATS subject of a schema's cluster (schemas are `[a-z_][a-z0-9_]*`). */
export function busTopic(kind: 'redis' | 'nats', schema: string | undefined): string {
  const base = kind === 'redis' ? 'syncbridge:events' : 'syncbridge.events';
  if (!schema) return base;
  return `${base}${kind === 'redis' ? ':' : '.'}${schema}`;
}

/**
 * Logged by a node on PostgreSQL started without `SYNCBRIDGE_BUS_URL`: right for a single node, but a
 * node of a cluster left without it would otherwise drop out of the cluster view and hear the others'
 * commits only at each resync, with nothing saying why.
 */
export const NO_BUS_WARNING =
  'no SYNCBRIDGE_BUS_URL: this node uses the in-process bus, so it is not part of a cluster (GET /v1/ready lists ' +
  "it alone, connector calls are not forwarded to the node running the connector, other nodes' commits reach its subscribers only at each " +
  'SYNCBRIDGE_BUS_RESYNC_MS resync). Several nodes on one database need the same redis://, nats:// or ' +
  'postgres:// SYNCBRIDGE_BUS_URL; set SYNCBRIDGE_BUS_URL=memory:// to keep a single node without this warning';

export async function openBus(config: BusSettings, logger: Logger, network?: MemoryBusNetwork): Promise<Bus> {
  const url = config.busUrl;
  if (!url && config.databaseUrl && /^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    logger.warn(NO_BUS_WARNING);
  }
  if (!url || url.startsWith('memory://')) return new MemoryBus(config.nodeId, network);
  if (url.startsWith('redis://')) {
    const { RedisBus } = await import('../bus/redis-bus.ts');
    const bus = new RedisBus(url, config.nodeId, logger, busTopic('redis', config.databaseSchema));
    try {
      await bus.start(config.connectRetryMs);
    } catch (err) {
      await bus.close();
      throw new StartupError(
        `cannot reach Redis at ${whereIs(url, 6379)}: ${causeOf(err)} (for ${(config.connectRetryMs / 1000).toFixed(1)} s); ${RETRY_HINT}`,
        { cause: err },
      );
    }
    return bus;
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresBus, postgresFailureIsTransient } = await import('../bus/postgres-bus.ts');
    return reach(
      {
        what: `PostgreSQL bus at ${whereIs(url, 5432)}`,
        retryMs: config.connectRetryMs,
        logger,
        transient: postgresFailureIsTransient,
        hint: RETRY_HINT,
      },
      () => PostgresBus.connect(url, config.nodeId, logger, busChannel(config.databaseSchema)),
    );
  }
  const { NatsBus, natsFailureIsTransient } = await import('../bus/nats-bus.ts');
  return reach(
    {
      what: `NATS at ${whereIs(url, 4222)}`,
      retryMs: config.connectRetryMs,
      logger,
      transient: natsFailureIsTransient,
      hint: RETRY_HINT,
    },
    () => NatsBus.connect(url, config.nodeId, logger, busTopic('nats', config.databaseSchema)),
  );
}
