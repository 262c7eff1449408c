/**
 * The one access decision of the server (docs/access-rules.md): whether a caller may read a record, may
 * write it, and which of its fields it sees. Every path (REST, WebSocket, fan-out, events, conflicts) asks
 * here, so a rule means the same thing everywhere.
 *
 * Tenant admins (the `admin` role, tenant API keys, the admin key) bypass rules; a collection without rules
 * lets every user of the tenant read and write, as before rules existed. A refused read must look like a
 * missing record to the caller: callers answer NOT_FOUND (or leave the record out), never FORBIDDEN.
 * This module must never do I/O.
 */
import type { MutationOp } from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../auth/principal.ts';
import type { AuthVars, CompiledCollectionRules, CompiledRule, RuleVars } from './compile.ts';

/** What the decision needs of a collection: its compiled rules (ResolvedCollection has them). */
export interface RuledCollection {
  readonly rules: CompiledCollectionRules | null;
}

/** A record as the rules see it: its id and its data (null when it does not exist or is deleted). */
export interface RuledRecord {
  id: string;
  data: Record<string, unknown> | null;
}

const authCache = new WeakMap<Principal, AuthVars>();

/** The `auth` variable of a caller's rules (built once per principal). */
export function authVars(principal: Principal): AuthVars {
  let vars = authCache.get(principal);
  if (!vars) {
    vars = {
      user: principal.user,
      roles: principal.roles,
      claims: principal.claims ?? {},
      tenant: principal.tenant,
      platform: principal.platform ?? null,
      device: principal.deviceId ?? null,
    };
    authCache.set(principal, vars);
  }
  return vars;
}

/** Whether rules apply to this caller at all (tenant admins and platform keys bypass them). */
export function bypassesRules(principal: Principal): boolean {
  return isTenantAdmin(principal);
}

/** Whether the caller may read the record (a missing or deleted record is never readable). */
export function canRead(principal: Principal, collection: RuledCollection, record: RuledRecord): boolean {
  if (record.data === null) return false;
  const rule = collection.rules?.read;
  if (!rule || bypassesRules(principal)) return true;
  return rule.test({ auth: authVars(principal), record: record.data, next: null, id: record.id });
}

export type WriteKind = 'create' | 'update' | 'delete';

/** The kind of a write: create when nothing is stored (or only a tombstone), delete for `delete`. */
export function writeKind(op: MutationOp, stored: Record<string, unknown> | null): WriteKind {
  if (op === 'delete') return 'delete';
  return stored === null ? 'create' : 'update';
}

/**
 * Whether the caller may make this write: `record` is the stored data (null for a create), `next` the
 * data after the change (null for a delete).
 */
export function canWrite(
  principal: Principal,
  collection: RuledCollection,
  record: RuledRecord,
  next: Record<string, unknown> | null,
  kind: WriteKind = next === null ? 'delete' : record.data === null ? 'create' : 'update',
): boolean {
  const rules = collection.rules;
  if (!rules || bypassesRules(principal)) return true;
  const rule = rules[kind];
  if (!rule) return true;
  return rule.test({ auth: authVars(principal), record: record.data, next, id: record.id });
}

/** Whether the collection has rules that can refuse or trim a read (so callers can skip the work). */
export function readIsRuled(principal: Principal, collection: RuledCollection): boolean {
  const rules = collection.rules;
  return rules !== null && (rules.read !== null || rules.hide.length > 0) && !bypassesRules(principal);
}

/** The field paths of the record this caller must not see (empty when nothing is hidden). */
export function hiddenFields(
  principal: Principal,
  collection: RuledCollection,
  record: RuledRecord,
): string[] {
  const hide = collection.rules?.hide;
  if (!hide || hide.length === 0 || record.data === null || bypassesRules(principal)) return [];
  const vars: RuleVars = { auth: authVars(principal), record: record.data, next: null, id: record.id };
  return hide.filter(({ rule }) => rule.test(vars)).map(({ path }) => path);
}

/** The data without the given dotted paths (the same object when there are none). */
export function withoutFields<T extends Record<string, unknown> | null | undefined>(
  data: T,
  paths: readonly string[],
): T {
  if (!data || paths.length === 0) return data;
  const copy = structuredClone(data) as Record<string, unknown>;
  for (const path of paths) {
    if (path in copy) {
      delete copy[path];
      continue;
    }
    const parts = path.split('.');
    let at: unknown = copy;
    for (const part of parts.slice(0, -1)) {
      at =
        typeof at === 'object' && at !== null && !Array.isArray(at)
          ? (at as Record<string, unknown>)[part]
          : undefined;
    }
    if (typeof at === 'object' && at !== null && !Array.isArray(at))
      delete (at as Record<string, unknown>)[parts.at(-1)!];
  }
  return copy as T;
}

/** The record's data as this caller may see it: hidden fields removed. */
export function hide(
  principal: Principal,
  collection: RuledCollection,
  record: RuledRecord,
): Record<string, unknown> | null {
  return withoutFields(record.data, hiddenFields(principal, collection, record));
}

/**
 * The fields this caller sees of a record: `null` means all of them. The complement of `hiddenFields`, for
 * callers that build a projection.
 */
export function visibleFields(
  principal: Principal,
  collection: RuledCollection,
  record: RuledRecord,
): string[] | null {
  const hidden = hiddenFields(principal, collection, record);
  if (hidden.length === 0 || record.data === null) return null;
  return Object.keys(record.data).filter((k) => !hidden.includes(k));
}

let nextRuleId = 0;
const ruleIds = new WeakMap<CompiledRule, number>();
const groupKeys = new WeakMap<Principal, Map<number, string>>();

/**
 * The group of callers a rule cannot tell apart: callers with the same key get the same answer for the
 * same record, so fan-out evaluates a rule once per event per group, not once per subscriber. The key is
 * the rule's identity and the values of the `auth` fields it reads (all of `auth` when it reads it whole).
 */
export function groupKey(rule: CompiledRule, principal: Principal): string {
  let id = ruleIds.get(rule);
  if (id === undefined) {
    id = nextRuleId++;
    ruleIds.set(rule, id);
  }
  let keys = groupKeys.get(principal);
  if (!keys) {
    keys = new Map();
    groupKeys.set(principal, keys);
  }
  let key = keys.get(id);
  if (key === undefined) {
    const auth = authVars(principal);
    const fields = rule.authFields ?? (Object.keys(auth) as (keyof AuthVars)[]);
    key = `${id}:${JSON.stringify(fields.map((f) => auth[f]))}`;
    keys.set(id, key);
  }
  return key;
}
