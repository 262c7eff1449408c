/**
 * API keys: the server-wide admin key and per-tenant keys. Only a SHA-256 hash of a key is stored;
 * the key itself is shown once, when it is made.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRow } from '../store/types.ts';

/** The ApiKeyStore port: API keys by the SHA-256 of their secret (the stores implement it). */
export interface ApiKeyStore {
  /** Looks an API key up by the SHA-256 hex of its secret. */
  findApiKey(hash: string): Promise<ApiKeyRow | null>;
  createApiKey(row: ApiKeyRow & { hash: string }): Promise<void>;
  /** Creates the key of `row.id`, or replaces its hash and label in one statement (key rotation). */
  replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void>;
  /** Forgets the key of this id (revocation); false when there was none. */
  deleteApiKey(id: string): Promise<boolean>;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function newKeySecret(prefix: 'sb_admin' | 'sb_tenant'): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

export interface ResolvedKey {
  id: string;
  tenant: string | null;
}

export class ApiKeys {
  private readonly envAdminHash: Buffer | null;

  constructor(
    private readonly store: ApiKeyStore,
    envAdminKey: string | undefined,
  ) {
    this.envAdminHash = envAdminKey ? Buffer.from(hashKey(envAdminKey), 'hex') : null;
  }

  /**
   * Makes sure an admin key exists. Returns a newly generated key (to print once) when neither
   * SYNCBRIDGE_ADMIN_KEY nor a stored admin key exists yet.
   */
  async ensureAdminKey(): Promise<string | null> {
    if (this.envAdminHash) return null;
    if (await this.store.findApiKey('admin-key-marker')) return null;
    const key = newKeySecret('sb_admin');
    try {
      await this.store.createApiKey({ id: 'admin', tenant: null, label: 'admin key', hash: hashKey(key) });
    } catch (err) {
      // Another node starting at the same time on the same database made it first: keep theirs.
      if (await this.store.findApiKey('admin-key-marker')) return null;
      const raced = await this.store.findApiKey(hashKey(key)).catch(() => null);
      if (raced === null) return null;
      throw err;
    }
    await this.store.createApiKey({
      id: 'admin-marker',
      tenant: null,
      label: 'marker',
      hash: 'admin-key-marker',
    });
    return key;
  }

  /**
   * Replaces the stored admin key with a new one and returns it (to print once); the old key is refused
   * from the next request on, on every node. Not possible while SYNCBRIDGE_ADMIN_KEY sets the key.
   */
  async rotateAdminKey(): Promise<string> {
    const key = newKeySecret('sb_admin');
    await this.store.replaceApiKey({ id: 'admin', tenant: null, label: 'admin key', hash: hashKey(key) });
    await this.markAdminKeyMade();
    return key;
  }

  /**
   * Forgets the stored admin key: it is refused from the next request on, and no new one is generated at
   * the next start (`rotateAdminKey` makes one). Returns false when there was none.
   */
  async revokeAdminKey(): Promise<boolean> {
    await this.markAdminKeyMade();
    return this.store.deleteApiKey('admin');
  }

  /** Records that an admin key was made, so that a start does not generate another. */
  private async markAdminKeyMade(): Promise<void> {
    if (await this.store.findApiKey('admin-key-marker')) return;
    await this.store.replaceApiKey({
      id: 'admin-marker',
      tenant: null,
      label: 'marker',
      hash: 'admin-key-marker',
    });
  }

  async resolve(key: string): Promise<ResolvedKey | null> {
    const hash = hashKey(key);
    if (this.envAdminHash && timingSafeEqual(Buffer.from(hash, 'hex'), this.envAdminHash)) {
      return { id: 'admin', tenant: null };
    }
    const row = await this.store.findApiKey(hash);
    if (!row || row.id === 'admin-marker') return null;
    return { id: row.id, tenant: row.tenant };
  }

  async createTenantKey(tenant: string, label: string | null): Promise<{ id: string; key: string }> {
    const key = newKeySecret('sb_tenant');
    const id = randomUUID();
    await this.store.createApiKey({ id, tenant, label, hash: hashKey(key) });
    return { id, key };
  }
}
