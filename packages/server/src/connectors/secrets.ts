/**
 * Connector secrets: values a tenant admin stores for the tenant's connectors (an upstream's API key)
 * and its connector templates read as `{{secrets.NAME}}`. Each value is sealed with the server's secrets
 * key (`SYNCBRIDGE_SECRETS_KEY`, AES-256-GCM, store/secret-box.ts) before it reaches the store and opened
 * only to fill a template of a connector of the same tenant.
 *
 * It must never store a plain value (without a secrets key it refuses to store any), never hand one
 * tenant's secret to another tenant's connector, and never return a value over REST: names and times only.
 */

import { SyncError } from '../core/errors.ts';
import { type SecretBox, SecretBoxError } from '../store/secret-box.ts';
import type { ConnectorStore } from './store.ts';

/** What REST shows of a secret. */
export interface SecretInfo {
  name: string;
  createdAt: string;
  updatedAt: string;
}

/** A template names a secret its tenant does not have (or one that cannot be opened). */
export class MissingSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingSecretError';
  }
}

export class ConnectorSecrets {
  constructor(
    private readonly store: ConnectorStore,
    private readonly box: SecretBox | null,
  ) {}

  private sealer(): SecretBox {
    if (!this.box) {
      throw new SyncError(
        'UNAVAILABLE',
        'connector secrets are stored encrypted, and this server has no secrets key: its operator must set SYNCBRIDGE_SECRETS_KEY',
      );
    }
    return this.box;
  }

  async set(tenant: string, name: string, value: string): Promise<SecretInfo> {
    await this.store.putSecret(tenant, name, this.sealer().seal(value));
    const [row] = await this.store.listSecrets(tenant, [name]);
    return { name, createdAt: row!.createdAt, updatedAt: row!.updatedAt };
  }

  async list(tenant: string): Promise<SecretInfo[]> {
    return (await this.store.listSecrets(tenant)).map(({ name, createdAt, updatedAt }) => ({
      name,
      createdAt,
      updatedAt,
    }));
  }

  delete(tenant: string, name: string): Promise<boolean> {
    return this.store.deleteSecret(tenant, name);
  }

  /** The names among `names` the tenant has no secret for. */
  async missing(tenant: string, names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const have = new Set((await this.store.listSecrets(tenant, names)).map((s) => s.name));
    return names.filter((n) => !have.has(n));
  }

  /** The tenant's named secrets as template variables (`secrets.NAME`), opened. */
  async variables(tenant: string, names: readonly string[]): Promise<Record<string, string>> {
    if (names.length === 0) return {};
    const out: Record<string, string> = {};
    for (const row of await this.store.listSecrets(tenant, names)) {
      if (!this.box)
        throw new MissingSecretError('connector secrets cannot be opened: no secrets key is set');
      try {
        out[`secrets.${row.name}`] = this.box.open(row.sealed);
      } catch (err) {
        if (err instanceof SecretBoxError) {
          throw new MissingSecretError(`connector secret ${row.name} cannot be opened: ${err.message}`);
        }
        throw err;
      }
    }
    const missing = names.filter((n) => !(`secrets.${n}` in out));
    if (missing.length > 0) {
      throw new MissingSecretError(`connector secret ${missing.join(', ')} is not set`);
    }
    return out;
  }
}
