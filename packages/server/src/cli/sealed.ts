/**
 * `syncbridge sealed backfill [--tenant T] [--collection C] [--batch N]`: seals what a collection stored
 * before a field joined its `sealedFields`, and re-seals under the newest secrets key what an older key
 * sealed (key rotation), in bounded batches with a progress line per batch on stderr. Without
 * `--collection`, every collection of the tenant that has records or names `sealedFields` (stored
 * settings or the config file), the tenant's shared tables (results, deliveries, webhooks) read once
 * for all of them (store/sealed-backfill-tenant.ts); without `--tenant`, every tenant. A pass stopped
 * anywhere resumes after its last batch when run again; the server may be running meanwhile (a row
 * changed under the pass is left as written).
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/config.ts';
import { createLogger } from '../server.ts';
import { openStore, secretBoxFor } from '../startup/storage.ts';
import { type BackfillProgress, runSealedBackfill } from '../store/sealed-backfill.ts';
import { runTenantBackfill } from '../store/sealed-backfill-tenant.ts';
import type { Store } from '../store/types.ts';
import { CommandError } from './errors.ts';

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** The collections of `tenant` to pass over, with their sealed fields now. */
async function targets(
  store: Store,
  config: ServerConfig,
  tenant: string,
  only: string | undefined,
): Promise<{ collection: string; fields: string[] }[]> {
  const stored = await store.getCollections(tenant);
  const fieldsOf = (name: string) =>
    stored.get(name)?.sealedFields ?? config.collections[name]?.sealedFields ?? [];
  if (only) return [{ collection: only, fields: [...fieldsOf(only)] }];
  // Every collection with records (a rotated key may have sealed in any) or with sealedFields.
  const names = new Set(
    (await store.listRecordCollections(tenant)).map((c) =>
      c.includes('@') ? c.slice(0, c.indexOf('@')) : c,
    ),
  );
  for (const name of [...stored.keys(), ...Object.keys(config.collections)])
    if (fieldsOf(name).length > 0) names.add(name);
  return [...names].sort().map((collection) => ({ collection, fields: [...fieldsOf(collection)] }));
}

export async function sealedCommand(
  config: ServerConfig,
  action: string | undefined,
  values: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (action !== 'backfill')
    throw new CommandError('usage: syncbridge sealed backfill [--tenant T] [--collection C] [--batch N]');
  const tenant = typeof values.tenant === 'string' ? values.tenant : undefined;
  const collection = typeof values.collection === 'string' ? values.collection : undefined;
  if (tenant !== undefined && !NAME.test(tenant))
    throw new CommandError(`--tenant ${tenant} is not a valid tenant name`);
  if (collection !== undefined && !NAME.test(collection))
    throw new CommandError(`--collection ${collection} is not a valid collection name`);
  const batch = typeof values.batch === 'string' ? Number(values.batch) : 500;
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000)
    throw new CommandError(`--batch ${values.batch} must be a whole number from 1 to 10000`);
  const logger: Logger = createLogger({ ...config, logLevel: 'warn' });
  const box = secretBoxFor(config, logger);
  if (!box) throw new CommandError('sealed fields need a secrets key: set SYNCBRIDGE_SECRETS_KEY');
  const store = await openStore(config, logger, box);
  try {
    const tenants = tenant ? [tenant] : await store.listTenants();
    if (tenant && !(await store.listTenants()).includes(tenant))
      throw new CommandError(`tenant ${tenant} does not exist in this ${store.kind} store (it has no log)`);
    let scanned = 0;
    let rewritten = 0;
    for (const t of tenants) {
      const options = {
        batchSize: batch,
        onProgress: (p: BackfillProgress) =>
          process.stderr.write(
            `${t}/${p.collection}: ${p.done ? 'done' : p.stage}, ${p.scanned} rows read, ${p.rewritten} sealed\n`,
          ),
      };
      const jobs = await targets(store, config, t, collection);
      const passes = collection
        ? [await runSealedBackfill(store.sealedBackfill, box, { tenant: t, ...jobs[0]! }, options)]
        : await runTenantBackfill(store.sealedBackfill, box, t, jobs, options).then((r) => [
            ...r.collections,
            r.tenant,
          ]);
      for (const done of passes) {
        scanned += done.scanned;
        rewritten += done.rewritten;
        const what = done.collections
          ? `${t} (results, deliveries, webhooks of every collection)`
          : `${t}/${done.collection} [${done.fields.join(', ')}]`;
        process.stdout.write(`sealed ${what}: ${done.rewritten} of ${done.scanned} rows rewritten\n`);
      }
    }
    process.stdout.write(
      `backfill done: ${rewritten} of ${scanned} rows rewritten under key ${box.sealingKeyId}\n`,
    );
  } finally {
    await store.close();
  }
}
