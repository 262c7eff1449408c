/**
 * Collection settings per tenant: the conflict strategy and the optional JSON schema that a
 * collection's records must match. Settings come from the config file (defaults for every tenant)
 * and from `PUT /v1/collections/{c}` (stored per tenant, which wins). Compiled validators are cached.
 */
import type { CollectionSettings, Strategy } from '@syncbridge/protocol';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { SyncError } from './errors.ts';
import { BUILTIN_STRATEGIES, type ConflictResolver, type ConflictStrategy } from './strategies.ts';

export interface ResolvedCollection {
  settings: CollectionSettings;
  strategy: ConflictStrategy;
  validate: ((data: Record<string, unknown>) => unknown[] | null) | null;
}

export interface CollectionSettingsSource {
  getCollections(tenant: string): Promise<Map<string, CollectionSettings>>;
}

export class CollectionRegistry {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly byTenant = new Map<string, Map<string, ResolvedCollection>>();
  private readonly loading = new Map<string, Promise<Map<string, ResolvedCollection>>>();

  constructor(
    private readonly source: CollectionSettingsSource,
    private readonly defaults: Record<string, CollectionSettings> = {},
    private readonly resolvers: Record<string, ConflictResolver> = {},
  ) {
    (addFormats as unknown as (ajv: Ajv) => void)(this.ajv);
  }

  /** Compiles a schema, or throws BAD_REQUEST saying why it is not a usable JSON schema. */
  compile(settings: CollectionSettings): ResolvedCollection {
    let validate: ResolvedCollection['validate'] = null;
    if (settings.schema) {
      let fn: ValidateFunction;
      try {
        fn = this.ajv.compile(settings.schema);
      } catch (err) {
        throw new SyncError('BAD_REQUEST', `schema is not a valid JSON schema: ${(err as Error).message}`);
      }
      validate = (data) =>
        fn(data)
          ? null
          : (fn.errors ?? []).map((e) => ({ path: e.instancePath || '/', message: e.message ?? 'invalid' }));
    }
    return { settings, strategy: this.strategyFor(settings), validate };
  }

  private strategyFor(settings: CollectionSettings): ConflictStrategy {
    const name: Strategy = settings.strategy ?? 'lww';
    if (name !== 'custom') return BUILTIN_STRATEGIES[name];
    const resolver = settings.resolver ? this.resolvers[settings.resolver] : undefined;
    if (!resolver) {
      throw new SyncError(
        'BAD_REQUEST',
        `strategy custom needs "resolver" naming a registered resolver (registered: ${Object.keys(this.resolvers).join(', ') || 'none'})`,
      );
    }
    return { name: `custom:${settings.resolver}`, decide: resolver };
  }

  private async load(tenant: string): Promise<Map<string, ResolvedCollection>> {
    const cached = this.byTenant.get(tenant);
    if (cached) return cached;
    let pending = this.loading.get(tenant);
    if (!pending) {
      pending = (async () => {
        const stored = await this.source.getCollections(tenant);
        const resolved = new Map<string, ResolvedCollection>();
        for (const [name, settings] of Object.entries(this.defaults))
          resolved.set(name, this.compile(settings));
        for (const [name, settings] of stored) resolved.set(name, this.compile(settings));
        this.byTenant.set(tenant, resolved);
        return resolved;
      })().finally(() => this.loading.delete(tenant));
      this.loading.set(tenant, pending);
    }
    return pending;
  }

  async get(tenant: string, collection: string): Promise<ResolvedCollection> {
    const map = await this.load(tenant);
    let found = map.get(collection);
    if (!found) {
      found = this.compile({ strategy: 'lww' });
      map.set(collection, found);
    }
    return found;
  }

  /** Synchronous lookup for collections already loaded by `get`/`preload`. */
  peek(tenant: string, collection: string): ResolvedCollection | undefined {
    return this.byTenant.get(tenant)?.get(collection);
  }

  async list(tenant: string): Promise<Map<string, ResolvedCollection>> {
    return this.load(tenant);
  }

  /** Records new settings after the store has saved them. */
  update(tenant: string, name: string, resolved: ResolvedCollection): void {
    this.byTenant.get(tenant)?.set(name, resolved);
  }
}
