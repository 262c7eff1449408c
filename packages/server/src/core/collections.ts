/**
 * Collection settings per tenant: the conflict strategy and the optional JSON schema that a
 * collection's records must match. Settings come from the config file (defaults for every tenant)
 * and from `PUT /v1/collections/{c}` (stored per tenant, which wins). Compiled validators and access
 * rules are cached.
 *
 * Several nodes share the stored settings, so this node's cache must never be trusted past a change made
 * on another: every change bumps the tenant's collections version (store TenantLock), and a commit that
 * reads a version this registry has not seen reloads the tenant's settings before applying mutations
 * (`sync`). Reads for REST answers and retention ask for a fresh copy (`list(tenant, { fresh: true })`).
 * Access rules must also hold on a node that takes no write: a cached copy older than `maxAgeMs` is read
 * again when next asked for (`get` waits for it; `peek`, which cannot wait, starts it and answers from the
 * cache), so a rule change reaches every node's reads within about `maxAgeMs` and one event.
 */
import type { CollectionSettings, Strategy } from '@syncbridge/protocol';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { type CompiledCollectionRules, compileCollectionRules } from '../rules/compile.ts';
import { mainCollection } from './branches.ts';
import { SyncError } from './errors.ts';
import { BUILTIN_STRATEGIES, type ConflictResolver, type ConflictStrategy } from './strategies.ts';

export interface ResolvedCollection {
  settings: CollectionSettings;
  strategy: ConflictStrategy;
  validate: ((data: Record<string, unknown>) => unknown[] | null) | null;
  /** Access rules, compiled when set (rules/decide.ts decides with them); null: every tenant user. */
  rules: CompiledCollectionRules | null;
}

/**
 * Refuses a filter naming a sealed field (or a path inside one): stored encrypted, it cannot be
 * matched by the store. BAD_REQUEST with `details: { reason: 'sealed_field', field }`.
 */
export function assertFilterable(settings: CollectionSettings, filter: Record<string, string>): void {
  const sealed = settings.sealedFields;
  if (!sealed || sealed.length === 0) return;
  for (const path of Object.keys(filter)) {
    const field = path.split('.')[0]!;
    if (sealed.includes(field)) {
      throw new SyncError('BAD_REQUEST', `"${field}" is a sealed field: records cannot be filtered on it`, {
        reason: 'sealed_field',
        field,
      });
    }
  }
}

export interface CollectionSettingsSource {
  getCollections(tenant: string): Promise<Map<string, CollectionSettings>>;
}

export class CollectionRegistry {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly byTenant = new Map<string, Map<string, ResolvedCollection>>();
  private readonly loading = new Map<string, Promise<Map<string, ResolvedCollection>>>();
  /** Per tenant, the stored collections version (`tenant_heads.collections_version`) the cache reflects. */
  private readonly seen = new Map<string, number>();
  /** Bumped per tenant by every reload and local update, so a slower reload never overwrites a newer one. */
  private readonly generation = new Map<string, number>();
  /** When each tenant's cached settings were last read from the store (ms since the epoch). */
  private readonly readAt = new Map<string, number>();
  /** How old a cached copy may get before it is read again (access rules on nodes that take no write). */
  maxAgeMs = 2_000;

  constructor(
    private readonly source: CollectionSettingsSource,
    private readonly defaults: Record<string, CollectionSettings> = {},
    private readonly resolvers: Record<string, ConflictResolver> = {},
    /** Whether a secrets key is configured, without which `sealedFields` cannot be kept sealed. */
    private readonly canSeal = false,
  ) {
    (addFormats as unknown as (ajv: Ajv) => void)(this.ajv);
  }

  /**
   * Compiles a schema and access rules, or throws BAD_REQUEST saying why the schema is not a usable JSON
   * schema or where a rule does not compile.
   */
  compile(settings: CollectionSettings): ResolvedCollection {
    if (settings.sealedFields && settings.sealedFields.length > 0 && !this.canSeal) {
      throw new SyncError(
        'BAD_REQUEST',
        'sealedFields needs a secrets key to encrypt them with: the operator must set SYNCBRIDGE_SECRETS_KEY',
      );
    }
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
    return {
      settings,
      strategy: this.strategyFor(settings),
      validate,
      rules: compileCollectionRules(settings.rules),
    };
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
    if (cached && !this.stale(tenant)) return cached;
    return this.reload(tenant);
  }

  private stale(tenant: string): boolean {
    return Date.now() - (this.readAt.get(tenant) ?? 0) > this.maxAgeMs;
  }

  /** One read of the tenant's settings at a time; callers that ask meanwhile share it. */
  private reload(tenant: string): Promise<Map<string, ResolvedCollection>> {
    let pending = this.loading.get(tenant);
    if (!pending) {
      pending = this.read(tenant).finally(() => this.loading.delete(tenant));
      this.loading.set(tenant, pending);
    }
    return pending;
  }

  /**
   * Reads the tenant's stored settings and makes them the cache. A read for a commit (`version` given)
   * runs under the tenant's write lock, so nothing newer can commit meanwhile and it always wins; any
   * other read wins only if no read or update started after it (a slow one never undoes a newer one).
   */
  private async read(tenant: string, version?: number): Promise<Map<string, ResolvedCollection>> {
    const generation = (this.generation.get(tenant) ?? 0) + 1;
    this.generation.set(tenant, generation);
    const startedAt = Date.now();
    const stored = await this.source.getCollections(tenant);
    const resolved = new Map<string, ResolvedCollection>();
    for (const [name, settings] of Object.entries(this.defaults)) resolved.set(name, this.compile(settings));
    for (const [name, settings] of stored) resolved.set(name, this.compile(settings));
    if (version !== undefined || this.generation.get(tenant) === generation) {
      this.byTenant.set(tenant, resolved);
      this.readAt.set(tenant, startedAt);
      if (version !== undefined) this.seen.set(tenant, version);
    }
    return resolved;
  }

  /**
   * Makes the tenant's settings current for a commit that read `collectionsVersion` under the tenant's
   * write lock: when it differs from the version last read here, the settings are read again (every
   * change committed before the lock was granted, so the read sees it). No query otherwise.
   */
  async sync(tenant: string, collectionsVersion: number): Promise<void> {
    if (this.seen.get(tenant) === collectionsVersion && this.byTenant.has(tenant)) {
      // Read under the lock, the version proves the cache current: no re-read for its age either.
      this.readAt.set(tenant, Date.now());
      return;
    }
    await this.read(tenant, collectionsVersion);
  }

  /** A branch (`c@b`, core/branches.ts) has its collection's settings, schema and rules. */
  async get(tenant: string, ref: string): Promise<ResolvedCollection> {
    const map = await this.load(tenant);
    const collection = mainCollection(ref);
    let found = map.get(collection);
    if (!found) {
      found = this.compile({ strategy: 'lww' });
      map.set(collection, found);
    }
    return found;
  }

  /**
   * Synchronous lookup once the tenant is loaded (by `get`, `list` or `sync`): a collection never
   * configured has the defaults (lww, no schema).
   */
  peek(tenant: string, ref: string): ResolvedCollection | undefined {
    const map = this.byTenant.get(tenant);
    const collection = mainCollection(ref);
    if (!map) return undefined;
    // A failed background read leaves the cache as it is; the next `get` or commit reads again.
    if (this.stale(tenant) && !this.loading.has(tenant)) this.reload(tenant).catch(() => undefined);
    let found = map.get(collection);
    if (!found) {
      found = this.compile({ strategy: 'lww' });
      map.set(collection, found);
    }
    return found;
  }

  /** The tenant's collections; `fresh` reads the store rather than this node's cache. */
  async list(tenant: string, options: { fresh?: boolean } = {}): Promise<Map<string, ResolvedCollection>> {
    return options.fresh ? this.read(tenant) : this.load(tenant);
  }

  /** Records new settings after the store has saved them (the next commit reloads them anyway). */
  update(tenant: string, name: string, resolved: ResolvedCollection): void {
    this.generation.set(tenant, (this.generation.get(tenant) ?? 0) + 1);
    this.byTenant.get(tenant)?.set(name, resolved);
  }
}
