/**
 * Key rotation at start (see store/key-rotation.ts, log/key-rotation-job.ts): opens the store side
 * (SealedRows) for the configured driver, and refuses to start, with a ConfigError naming the key id and
 * what needs it, when some stored data is sealed under a key the configuration no longer has: a server
 * started so would fail to sign webhooks, to fill connector templates and to open sealed fields.
 */
import { join, resolve } from 'node:path';
import type { ServerConfig } from '../config/config.ts';
import { ConfigError } from '../config/config.ts';
import { pendingPasses } from '../log/key-rotation-job.ts';
import {
  type KeyStatus,
  keyStatus,
  missingKeyProblems,
  type SealedRows,
  STARTUP_KINDS,
} from '../store/key-rotation.ts';
import type { SealedBackfillStore } from '../store/sealed-backfill.ts';
import type { SecretBox } from '../store/secret-box.ts';
import { SqliteSealedRows } from '../store/sqlite/sealed-rows.ts';
import { storeKind } from './storage.ts';

/** The rows holding sealed values, over connections of their own. */
export async function openSealedRows(config: ServerConfig): Promise<SealedRows> {
  if (storeKind(config) === 'postgres' && config.databaseUrl) {
    const { PostgresSealedRows } = await import('../store/postgres/sealed-rows.ts');
    return new PostgresSealedRows({ connectionString: config.databaseUrl, schema: config.databaseSchema });
  }
  const dir = resolve(config.dataDir);
  return new SqliteSealedRows({ store: join(dir, 'syncbridge.db'), connectors: join(dir, 'connectors.db') });
}

/** What lists a store's collections and their settings. */
export interface CollectionLister {
  listTenants(): Promise<string[]>;
  getCollections(tenant: string): Promise<Map<string, { sealedFields?: string[] }>>;
}

/** Every collection of every tenant naming `sealedFields` (stored settings or the config file). */
export function sealedCollectionsOf(
  store: CollectionLister,
  config: ServerConfig,
): () => Promise<{ tenant: string; collection: string }[]> {
  return async () => {
    const out: { tenant: string; collection: string }[] = [];
    for (const tenant of await store.listTenants()) {
      const stored = await store.getCollections(tenant);
      const names = new Set([...stored.keys(), ...Object.keys(config.collections)]);
      for (const collection of names) {
        const fields =
          stored.get(collection)?.sealedFields ?? config.collections[collection]?.sealedFields ?? [];
        if (fields.length > 0) out.push({ tenant, collection });
      }
    }
    return out;
  };
}

/** The status an operator reads: rows per kind under older keys, and the sealed-fields passes to run. */
export interface RotationStatus extends KeyStatus {
  pendingPasses: { tenant: string; collection: string }[];
}

export async function rotationStatus(
  rows: SealedRows,
  box: SecretBox | null,
  sealed: SealedBackfillStore,
  sealedCollections: () => Promise<{ tenant: string; collection: string }[]>,
): Promise<RotationStatus> {
  const status = await keyStatus(rows, box);
  const passes = box ? await pendingPasses(rows, box, sealed, sealedCollections) : [];
  return { ...status, pendingPasses: passes };
}

/** The status on demand (the admin REST route), over connections opened for the read. */
export function keyStatusOf(
  config: ServerConfig,
  box: SecretBox | null,
  store: CollectionLister & { sealedBackfill: SealedBackfillStore },
): () => Promise<RotationStatus> {
  return async () => {
    const rows = await openSealedRows(config);
    try {
      return await rotationStatus(rows, box, store.sealedBackfill, sealedCollectionsOf(store, config));
    } finally {
      await rows.close();
    }
  };
}

/**
 * Opens the rows and checks that every key the stored connector and webhook secrets need is configured
 * (ConfigError if not); `syncbridge secrets status` checks the rest, the data.
 * Returns the rows for the rotation job, or null (closed) when no secrets key is set.
 */
export async function openKeyRotation(
  config: ServerConfig,
  box: SecretBox | null,
): Promise<SealedRows | null> {
  const rows = await openSealedRows(config);
  try {
    // Only the settings-sized kinds: a start must not read the whole log (see STARTUP_KINDS).
    const problems = missingKeyProblems(await keyStatus(rows, box, 1000, STARTUP_KINDS));
    if (problems.length > 0) throw new ConfigError(problems);
  } catch (err) {
    await rows.close();
    throw err;
  }
  if (box) return rows;
  await rows.close();
  return null;
}
