/**
 * A sealed-fields backfill of several collections of one tenant (`syncbridge sealed backfill` without
 * `--collection`): each collection's own rows (records, log, conflicts, branches) in a pass of its own,
 * then the tenant's rows that any collection may own (remembered results, webhook delivery bodies,
 * webhook secrets) in one tenant-wide pass (`*`) sealing each row by its own collection's fields, so
 * those tables are read once, not once per collection. Each pass resumes on its own (sealed-backfill.ts).
 * Also the view of a collection's backfill for REST: its own pass and, when its tenant rows were left
 * to the tenant-wide pass, that pass's stages.
 */
import {
  type BackfillOptions,
  type BackfillProgress,
  COLLECTION_STAGES,
  runSealedBackfill,
  type SealedBackfillStore,
  TENANT_STAGES,
  TENANT_WIDE,
} from './sealed-backfill.ts';
import type { SecretBox } from './secret-box.ts';

export interface TenantBackfillReport {
  /** One per collection, in the order given. */
  collections: BackfillProgress[];
  /** The tenant-wide pass. */
  tenant: BackfillProgress;
}

/** Runs (or resumes) the passes over `targets` of `tenant`, then the tenant-wide one. */
export async function runTenantBackfill(
  store: SealedBackfillStore,
  box: SecretBox,
  tenant: string,
  targets: readonly { collection: string; fields: readonly string[] }[],
  options: BackfillOptions = {},
): Promise<TenantBackfillReport> {
  const collections: BackfillProgress[] = [];
  for (const { collection, fields } of targets) {
    const job = { tenant, collection, fields, stages: COLLECTION_STAGES };
    collections.push(await runSealedBackfill(store, box, job, options));
  }
  const fieldsByCollection = Object.fromEntries(targets.map((t) => [t.collection, t.fields]));
  const wide = { tenant, collection: TENANT_WIDE, fields: [], stages: TENANT_STAGES };
  const done = await runSealedBackfill(store, box, { ...wide, collections: fieldsByCollection }, options);
  return { collections, tenant: done };
}

/** What REST shows of a collection's backfill (GET /v1/collections/{c}/sealed-backfill). */
export interface BackfillView {
  fields: string[];
  keyId: string;
  /** The stage being walked (or the last, when done); the tenant-wide pass's stages after its own. */
  stage: string;
  done: boolean;
  scanned: number;
  rewritten: number;
  startedAt: string;
  updatedAt: string;
  /** Its tenant rows are sealed by the tenant-wide pass (counted in `tenantRows`), not by its own. */
  tenantRows?: { done: boolean; stage: string; scanned: number; rewritten: number; updatedAt: string };
}

/** The collection's backfill as stored, or null when none ever ran. */
export async function backfillView(
  store: Pick<SealedBackfillStore, 'readProgress'>,
  tenant: string,
  collection: string,
): Promise<BackfillView | null> {
  const own = await store.readProgress(tenant, collection);
  if (!own) return null;
  const view: BackfillView = {
    fields: own.fields,
    keyId: own.keyId,
    stage: own.stage,
    done: own.done,
    scanned: own.scanned,
    rewritten: own.rewritten,
    startedAt: own.startedAt,
    updatedAt: own.updatedAt,
  };
  const leftToTenant = own.stages !== undefined && !own.stages.some((s) => TENANT_STAGES.includes(s));
  if (!leftToTenant) return view;
  const wide = await store.readProgress(tenant, TENANT_WIDE);
  if (!wide?.collections?.[collection]) return view;
  view.tenantRows = {
    done: wide.done,
    stage: wide.stage,
    scanned: wide.scanned,
    rewritten: wide.rewritten,
    updatedAt: wide.updatedAt,
  };
  if (own.done && !wide.done) view.stage = wide.stage;
  view.done = own.done && wide.done;
  return view;
}
