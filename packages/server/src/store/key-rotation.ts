/**
 * Secrets key rotation: what is stored sealed under which key, and re-sealing it under the newest one.
 *
 * Every value sealed with SecretBox (store/secret-box.ts) names its key id, so a scan of the stored texts
 * tells which keys the data still needs. The kinds below are every place the server seals with
 * `SYNCBRIDGE_SECRETS_KEY`: connector secrets, webhook signing secrets and webhook delivery bodies are
 * re-sealed here, row by row (compare-and-set on the text read, so a concurrent write always wins);
 * sealed record fields (records, history, conflicts, branch fork points, remembered results) are
 * re-sealed by the sealed-fields backfill (store/sealed-backfill.ts), which also handles compacted
 * history. `keyStatus` is the operator's view: rows per kind still under an older key, and whether a
 * key the data needs is missing from the configuration.
 */
import type { SecretBox } from './secret-box.ts';

/** Where sealed values are stored. */
export type SealedKind =
  | 'connectorSecrets'
  | 'webhookSecrets'
  | 'webhookDeliveries'
  | 'records'
  | 'events'
  | 'conflicts'
  | 'branches'
  | 'results';

export const SEALED_KINDS: readonly SealedKind[] = [
  'connectorSecrets',
  'webhookSecrets',
  'webhookDeliveries',
  'records',
  'events',
  'conflicts',
  'branches',
  'results',
];

/** Kinds this module re-seals itself (the others are sealed record fields: the backfill's). */
export const DIRECT_KINDS: readonly SealedKind[] = [
  'connectorSecrets',
  'webhookSecrets',
  'webhookDeliveries',
];

/** What the operator reads in a status, by kind. */
export const KIND_LABELS: Record<SealedKind, string> = {
  connectorSecrets: 'connector secrets',
  webhookSecrets: 'webhook signing secrets',
  webhookDeliveries: 'webhook delivery bodies',
  records: 'sealed fields in records',
  events: 'sealed fields in record history',
  conflicts: 'sealed fields in stored conflicts',
  branches: 'sealed fields in branch fork points',
  results: 'sealed fields in remembered mutation results',
};

/** One stored row holding at least one sealed value. */
export interface SealedRow {
  /** The row's key (JSON of its key columns), ordered as the store pages. */
  key: string;
  tenant: string;
  /** The collection of the row (`c`, or `c@b` for a branch); null when the kind has none. */
  collection: string | null;
  /** The stored text of the sealed column(s), as read: what a rewrite compares against. */
  text: string;
}

/** The store side: rows with sealed values, paged, and a compare-and-set rewrite. */
export interface SealedRows {
  /** Up to `limit` rows of `kind` holding a sealed value, after `after`, in key order. */
  page(kind: SealedKind, after: string | null, limit: number): Promise<SealedRow[]>;
  /** Sets the row's text to `to` where it is still `from` (direct kinds only); true when written. */
  rewrite(kind: SealedKind, row: SealedRow, to: string): Promise<boolean>;
  /** Whether this node may run the rotation now (one node at a time where several share a database). */
  tryLead(): Promise<boolean>;
  close(): Promise<void>;
}

// A sealed value as seal() writes it: key id (11), iv (16), ciphertext, tag (22), base64url.
const SEALED = /sbx1\.([A-Za-z0-9_-]{11})\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}/g;

/** The key ids of the sealed values in a stored text. */
export function keyIdsIn(text: string): Set<string> {
  const ids = new Set<string>();
  for (const m of text.matchAll(SEALED)) ids.add(m[1]!);
  return ids;
}

/**
 * The text with every sealed value under a key other than the sealing one re-sealed under it (same
 * plaintext); null when nothing changes. A value no configured key opens is left as it is.
 */
export function resealText(text: string, box: SecretBox): string | null {
  let changed = false;
  const out = text.replace(SEALED, (value, id: string) => {
    if (id === box.sealingKeyId) return value;
    try {
      const plain = box.open(value);
      changed = true;
      return box.seal(plain);
    } catch {
      return value;
    }
  });
  return changed ? out : null;
}

/** Rows of one kind still under keys other than the sealing one. */
export interface KindStatus {
  kind: SealedKind;
  /** Rows holding at least one value sealed under an older (or unknown) key. */
  left: number;
  /** Those rows by key id (a row holding values of two keys counts under both). */
  byKey: Record<string, number>;
}

export interface KeyStatus {
  /** The key new values are sealed under (null: no secrets key configured). */
  currentKeyId: string | null;
  /** Every configured key id, the current one first. */
  configuredKeyIds: string[];
  kinds: KindStatus[];
  /** Rows still under an older key, all kinds together: 0 means the previous keys may be dropped. */
  left: number;
  /** Key ids some data is sealed under that no configured key has, with what needs them. */
  missing: { keyId: string; kinds: SealedKind[] }[];
}

/**
 * Kinds small enough to scan at every start: settings, not data. Records, the log, results and
 * deliveries can hold millions of rows; their keys are counted by the status an operator asks for.
 */
export const STARTUP_KINDS: readonly SealedKind[] = ['connectorSecrets', 'webhookSecrets'];

/** Scans `kinds` (bounded pages) and counts what is still under an older key. */
export async function keyStatus(
  rows: SealedRows,
  box: SecretBox | null,
  pageSize = 1000,
  scanned: readonly SealedKind[] = SEALED_KINDS,
): Promise<KeyStatus> {
  const configured = box?.keyIds ?? [];
  const current = box?.sealingKeyId ?? null;
  const kinds: KindStatus[] = [];
  const missing = new Map<string, Set<SealedKind>>();
  for (const kind of scanned) {
    const status: KindStatus = { kind, left: 0, byKey: {} };
    let after: string | null = null;
    for (;;) {
      const page = await rows.page(kind, after, pageSize);
      for (const row of page) {
        let old = false;
        for (const id of keyIdsIn(row.text)) {
          if (id === current) continue;
          old = true;
          status.byKey[id] = (status.byKey[id] ?? 0) + 1;
          if (!configured.includes(id)) {
            if (!missing.has(id)) missing.set(id, new Set());
            missing.get(id)!.add(kind);
          }
        }
        if (old) status.left += 1;
      }
      if (page.length < pageSize) break;
      after = page[page.length - 1]!.key;
    }
    kinds.push(status);
  }
  return {
    currentKeyId: current,
    configuredKeyIds: configured,
    kinds,
    left: kinds.reduce((n, k) => n + k.left, 0),
    missing: [...missing].map(([keyId, ks]) => ({ keyId, kinds: [...ks] })),
  };
}

/** The configuration problems a status shows: data sealed under a key that is not configured. */
export function missingKeyProblems(status: KeyStatus): string[] {
  return status.missing.map(({ keyId, kinds }) => {
    const what = kinds
      .map((k) => `${KIND_LABELS[k]} (${status.kinds.find((s) => s.kind === k)?.byKey[keyId] ?? 0})`)
      .join(', ');
    const fix =
      status.currentKeyId === null
        ? 'set SYNCBRIDGE_SECRETS_KEY'
        : 'add that key to SYNCBRIDGE_SECRETS_KEYS_PREVIOUS';
    return `stored data is sealed under secrets key id ${keyId}, which is not configured: ${what} still need it; ${fix} (see docs/deploy.md#rotating-the-secrets-key)`;
  });
}

export interface ResealOptions {
  batchSize: number;
  shouldStop?: () => boolean;
}

/**
 * Re-seals the rows of a direct kind under the sealing key, in batches; a row changed since it was read
 * is left as it was written (its writer sealed it under the sealing key). Returns the rows rewritten.
 */
export async function resealKind(
  rows: SealedRows,
  box: SecretBox,
  kind: SealedKind,
  options: ResealOptions,
): Promise<{ scanned: number; rewritten: number; stopped: boolean }> {
  let after: string | null = null;
  let scanned = 0;
  let rewritten = 0;
  for (;;) {
    if (options.shouldStop?.()) return { scanned, rewritten, stopped: true };
    const page = await rows.page(kind, after, options.batchSize);
    for (const row of page) {
      const to = resealText(row.text, box);
      if (to !== null && (await rows.rewrite(kind, row, to))) rewritten += 1;
    }
    scanned += page.length;
    if (page.length < options.batchSize) return { scanned, rewritten, stopped: false };
    after = page[page.length - 1]!.key;
    // Other work runs between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The collection a row's sealed fields belong to (`c` of a branch `c@b`), or null. */
export function collectionOf(kind: SealedKind, row: SealedRow): string | null {
  let c = row.collection;
  if (kind === 'results') {
    try {
      const result = JSON.parse(row.text) as { record?: { collection?: unknown } };
      c = typeof result?.record?.collection === 'string' ? result.record.collection : null;
    } catch {
      c = null;
    }
  }
  if (c === null) return null;
  const at = c.indexOf('@');
  return at < 0 ? c : c.slice(0, at);
}
