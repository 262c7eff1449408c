/**
 * `syncbridge secrets status [--json]` and `syncbridge secrets rotate [--batch N]`: the secrets key
 * rotation seen and run from the command line (store/key-rotation.ts, log/key-rotation-job.ts).
 * `status` counts, per kind, what is still sealed under a key other than the current
 * `SYNCBRIDGE_SECRETS_KEY` and the sealed-fields passes still to run, and names any key id the data needs
 * that is not configured; when everything is 0 the keys in `SYNCBRIDGE_SECRETS_KEYS_PREVIOUS` may be
 * dropped. `rotate` re-seals it all now (a running server does the same in the background); the server
 * may run meanwhile: a row changed under the command is left as written.
 */
import type { ServerConfig } from '../config/config.ts';
import { KeyRotationJob } from '../log/key-rotation-job.ts';
import { createLogger } from '../server.ts';
import {
  openSealedRows,
  type RotationStatus,
  rotationStatus,
  sealedCollectionsOf,
} from '../startup/key-rotation.ts';
import { openStore, secretBoxFor } from '../startup/storage.ts';
import { KIND_LABELS } from '../store/key-rotation.ts';
import { CommandError } from './errors.ts';

const USAGE = 'usage: syncbridge secrets status [--json] | syncbridge secrets rotate [--batch N]';

/** The status as lines an operator reads. */
export function formatStatus(s: RotationStatus): string {
  const lines = [
    `current key id: ${s.currentKeyId ?? '(no SYNCBRIDGE_SECRETS_KEY set)'}`,
    `configured key ids: ${s.configuredKeyIds.join(', ') || '(none)'}`,
  ];
  for (const k of s.kinds) {
    const by = Object.entries(k.byKey)
      .map(([id, n]) => `${id}: ${n}`)
      .join(', ');
    lines.push(`  ${KIND_LABELS[k.kind]}: ${k.left} under an older key${by ? ` (${by})` : ''}`);
  }
  lines.push(
    `  sealed-fields passes to run: ${s.pendingPasses.length}${s.pendingPasses.length ? ` (${s.pendingPasses.map((p) => `${p.tenant}/${p.collection}`).join(', ')})` : ''}`,
  );
  for (const m of s.missing)
    lines.push(`MISSING key id ${m.keyId}: needed by ${m.kinds.map((k) => KIND_LABELS[k]).join(', ')}`);
  const left = s.left + s.pendingPasses.length;
  lines.push(
    left === 0 && s.missing.length === 0
      ? 'nothing left under an older key: the previous keys may be dropped'
      : `${left} left: keep the previous keys until this is 0 (a running server re-seals them; or run syncbridge secrets rotate)`,
  );
  return `${lines.join('\n')}\n`;
}

export async function secretsCommand(
  config: ServerConfig,
  action: string | undefined,
  values: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (action !== 'status' && action !== 'rotate') throw new CommandError(USAGE);
  const batch = typeof values.batch === 'string' ? Number(values.batch) : 500;
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000)
    throw new CommandError(`--batch ${values.batch} must be a whole number from 1 to 10000`);
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const box = secretBoxFor(config, logger);
  if (action === 'rotate' && !box)
    throw new CommandError(
      'rotation needs the new key: set SYNCBRIDGE_SECRETS_KEY (and the old ones in SYNCBRIDGE_SECRETS_KEYS_PREVIOUS)',
    );
  const store = await openStore(config, logger, box);
  const rows = await openSealedRows(config);
  const sealedCollections = sealedCollectionsOf(store, config);
  try {
    if (action === 'rotate' && box) {
      const before = await rotationStatus(rows, box, store.sealedBackfill, sealedCollections);
      if (before.missing.length > 0) throw new CommandError(formatStatus(before).trimEnd());
      const job = new KeyRotationJob({
        rows,
        box,
        sealed: store.sealedBackfill,
        fieldsOf: async (tenant, collection) =>
          (await store.getCollections(tenant)).get(collection)?.sealedFields ??
          config.collections[collection]?.sealedFields ??
          [],
        sealedCollections,
        logger,
        batchSize: batch,
        intervalMs: 0,
      });
      const run = await job.runOnce();
      if (!run.led) throw new CommandError('another node is rotating the secrets key now; try again later');
      process.stdout.write(`re-sealed ${run.rewritten} rows, ${run.passes} sealed-fields passes\n`);
    }
    const status = await rotationStatus(rows, box, store.sealedBackfill, sealedCollections);
    process.stdout.write(values.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
  } finally {
    await rows.close();
    await store.close();
  }
}
