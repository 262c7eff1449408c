/**
 * Storage, opened once by the composition root: `openStorage(config)` makes the one choice between
 * SQLite and PostgreSQL (`storeKind`), applies migrations, and hands every part of the server the ports
 * it uses (log/ports.ts, devices/registry.ts DeviceStore, auth/api-keys.ts ApiKeyStore, log/retention.ts
 * Maintenance, the webhook and connector stores), all over the one store's connection (the connector
 * store keeps its own, its SQLite file being separate). Only this module and the CLI name a driver; it
 * must never hold domain logic.
 */
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ApiKeyStore } from '../auth/api-keys.ts';
import type { ServerConfig } from '../config/config.ts';
import { type ConnectorLeases, LocalConnectorLeases } from '../connectors/leases.ts';
import type { ConnectorStore } from '../connectors/store.ts';
import type { CollectionSettingsSource } from '../core/collections.ts';
import { SyncError } from '../core/errors.ts';
import type { DeviceStore } from '../devices/registry.ts';
import type { ConflictStore, LogStore, RecordReader } from '../log/ports.ts';
import type { Maintenance } from '../log/retention.ts';
import type { SealedRows } from '../store/key-rotation.ts';
import { type SealPolicy, withSealedFields } from '../store/sealed-fields.ts';
import { parseSecretsKey, SecretBox } from '../store/secret-box.ts';
import { SqliteConnectorStore } from '../store/sqlite/connector-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/types.ts';
import type { WebhookStore } from '../webhooks/types.ts';
import { openKeyRotation } from './key-rotation.ts';
import { causeOf, RETRY_HINT, reach, StartupError, whereIs } from './reach.ts';

/** Which store a config selects: PostgreSQL when it names a database URL, else SQLite in the data dir. */
export function storeKind(config: ServerConfig): 'sqlite' | 'postgres' {
  return config.databaseUrl ? 'postgres' : 'sqlite';
}

/** Every storage port of a running server, over one opened store. */
export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /** The whole store, for the parts still taking it (realtime, CLI, tests) and for timing its reads. */
  readonly store: Store;
  readonly log: LogStore;
  readonly records: RecordReader;
  readonly conflicts: ConflictStore;
  readonly devices: DeviceStore;
  readonly keys: ApiKeyStore;
  readonly maintenance: Maintenance;
  readonly collections: CollectionSettingsSource & {
    putCollection: Store['putCollection'];
  };
  readonly webhooks: WebhookStore;
  readonly connectors: ConnectorStore;
  readonly leases: ConnectorLeases;
  /** What key rotation re-seals (null without a secrets key), checked at open (startup/key-rotation.ts). */
  readonly sealedRows: SealedRows | null;
  ping(): Promise<void>;
  /** Closes the connector store, then the store. */
  close(): Promise<void>;
}

/** Opens the store (migrated), the connector store and the connector leases, and names their ports. */
export async function openStorage(
  config: ServerConfig,
  logger: Logger,
  secretBox: SecretBox | null = secretBoxFor(config, logger),
  sealPolicy?: SealPolicy,
): Promise<Storage> {
  const store = await openStore(config, logger, secretBox, sealPolicy);
  let connectors: ConnectorStore;
  let leases: ConnectorLeases;
  let sealedRows: SealedRows | null;
  try {
    connectors = await openConnectorStore(config);
    // Refuses to start when stored data needs a secrets key that is not configured.
    sealedRows = await openKeyRotation(config, secretBox).catch(async (err: unknown) => {
      await connectors.close();
      throw err;
    });
    leases = await openConnectorLeases(config);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return {
    kind: store.kind,
    store,
    log: store,
    records: store,
    conflicts: store,
    devices: store,
    keys: store,
    maintenance: store,
    collections: store,
    webhooks: store.webhooks,
    connectors,
    leases,
    sealedRows,
    ping: () => store.ping(),
    close: async () => {
      await sealedRows?.close();
      await connectors.close();
      await store.close();
    },
  };
}

/** The connector store: tables of the PostgreSQL database, or its own SQLite file beside the store's. */
export async function openConnectorStore(config: ServerConfig): Promise<ConnectorStore> {
  if (storeKind(config) === 'postgres' && config.databaseUrl) {
    const { PostgresConnectorStore } = await import('../store/postgres/connector-store.ts');
    return new PostgresConnectorStore({
      connectionString: config.databaseUrl,
      schema: config.databaseSchema,
    });
  }
  return new SqliteConnectorStore({
    file: join(resolve(config.dataDir), 'connectors.db'),
    synchronous: config.sqliteSynchronous,
  });
}

/** Connector leases: advisory locks on PostgreSQL (several nodes), trivially held on SQLite (one). */
export async function openConnectorLeases(config: ServerConfig): Promise<ConnectorLeases> {
  if (storeKind(config) !== 'postgres' || !config.databaseUrl) return new LocalConnectorLeases();
  const { PostgresConnectorLeases } = await import('../store/postgres/connector-leases.ts');
  return new PostgresConnectorLeases(config.databaseUrl, config.databaseSchema);
}

/** The box sealing stored secrets, or null (with a warning) when no secrets key is configured. */
export function secretBoxFor(config: ServerConfig, logger: Logger): SecretBox | null {
  if (!config.secretsKey) {
    // A warning where the server is deployed for real (PostgreSQL); a note on a local SQLite start.
    const level = storeKind(config) === 'postgres' ? 'warn' : 'info';
    logger[level]('webhook secrets are stored unencrypted: set SYNCBRIDGE_SECRETS_KEY to seal them at rest');
    return null;
  }
  const keys = [config.secretsKey, ...config.secretsKeysPrevious].map((k) => parseSecretsKey(k));
  // The config schema admits only well-formed keys.
  return new SecretBox(keys.filter((k): k is Buffer => k !== null));
}

/**
 * The store, migrated. With a secrets key, its reads open sealed fields and its writes seal the fields
 * `sealPolicy` names (the collection settings; none by default, as for the CLI, which writes no records).
 */
export async function openStore(
  config: ServerConfig,
  logger: Logger,
  secretBox: SecretBox | null = secretBoxFor(config, logger),
  sealPolicy: SealPolicy = () => undefined,
): Promise<Store> {
  const store = await openDriver(config, logger, secretBox);
  return secretBox ? withSealedFields(store, secretBox, sealPolicy) : store;
}

async function openDriver(config: ServerConfig, logger: Logger, secretBox: SecretBox | null): Promise<Store> {
  const progress = (kind: string) => (message: string) => logger.info({ store: kind }, message);
  if (storeKind(config) === 'postgres' && config.databaseUrl) {
    const { PostgresStore } = await import('../store/postgres/postgres-store.ts');
    const store = new PostgresStore({
      connectionString: config.databaseUrl,
      schema: config.databaseSchema,
      secretBox,
    });
    try {
      await reach(
        {
          what: `PostgreSQL at ${whereIs(config.databaseUrl, 5432)}`,
          retryMs: config.connectRetryMs,
          logger,
          transient: (err) => err instanceof SyncError && err.code === 'UNAVAILABLE',
          hint: RETRY_HINT,
        },
        () => store.migrate(progress('postgres')),
      );
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }
  const file = join(resolve(config.dataDir), 'syncbridge.db');
  let store: SqliteStore;
  try {
    store = new SqliteStore({
      file,
      synchronous: config.sqliteSynchronous,
      commitThread: config.sqliteCommitThread === 'on',
      secretBox,
      logger,
    });
    await store.migrate(progress('sqlite'));
  } catch (err) {
    throw new StartupError(`cannot open the SQLite database ${file}: ${causeOf(err)}`, { cause: err });
  }
  return store;
}
