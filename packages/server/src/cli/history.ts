/**
 * `syncbridge history compact`: converts superseded record versions to their compact form (deltas
 * against the next version, with keyframes; store/history/packing.ts) in bounded batches, printing
 * progress after each batch, so existing history is converted without waiting for the server's job.
 * Safe while the server runs (each batch is its own short transaction) and after an interruption
 * (it resumes from each tenant's watermark).
 */
import { ConfigError, type ServerConfig } from '../config/config.ts';
import { compactTenant } from '../log/history-compaction.ts';
import { createLogger } from '../server.ts';
import { openStore } from '../startup/storage.ts';
import { CommandError } from './errors.ts';

function wholeNumber(
  name: string,
  value: string | boolean | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min) {
    throw new ConfigError([`--${name} ${String(value)} must be a whole number of at least ${min}`]);
  }
  return Number(value);
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

export async function historyCommand(
  config: ServerConfig,
  sub: string | undefined,
  values: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (sub !== 'compact') throw new ConfigError(['history needs a subcommand: compact']);
  const batchSize = wholeNumber('batch', values.batch, config.historyCompaction.batchSize, 1);
  // From the CLI, every superseded version is compacted unless told otherwise.
  const afterMs = wholeNumber('after-ms', values['after-ms'], 0, 0);
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const store = await openStore(config, logger);
  try {
    const known = await store.listTenants();
    let tenants = known;
    if (typeof values.tenant === 'string') {
      if (!known.includes(values.tenant)) {
        throw new CommandError(
          `tenant ${values.tenant} does not exist in this ${store.kind} store (it has no log)`,
        );
      }
      tenants = [values.tenant];
    }
    const before = new Date(Date.now() - afterMs).toISOString();
    let packed = 0;
    let bytesBefore = 0;
    let bytesAfter = 0;
    for (const tenant of tenants) {
      const head = await store.headSeq(tenant);
      const result = await compactTenant(store, tenant, {
        batchSize,
        before,
        progress: (p) =>
          process.stderr.write(
            `${tenant}: batch ${p.batches}, log entry ${p.watermark} of ${head}, ` +
              `${p.packed} versions compacted (${kb(p.bytesBefore)} -> ${kb(p.bytesAfter)})\n`,
          ),
      });
      packed += result.packed;
      bytesBefore += result.bytesBefore;
      bytesAfter += result.bytesAfter;
    }
    process.stdout.write(
      `compacted ${packed} superseded versions of ${tenants.length} tenant(s): ${kb(bytesBefore)} -> ${kb(bytesAfter)}\n`,
    );
  } finally {
    await store.close();
  }
}
