/**
 * Access rules: compiling a collection's `rules` (CEL expressions, docs/access-rules.md) once, when they are
 * set, into functions the decision module (rules/decide.ts) calls. A rule that does not parse or type-check
 * is refused as BAD_REQUEST with the rule's name and the position of the error in `details`.
 *
 * An expression sees `auth` (user, roles, claims, tenant, platform, device), `record` (the stored data, null
 * for a create), `next` (the data after a write, null for a delete) and `id` (the record's id). Evaluation
 * never throws: an error (a missing field, a wrong type) or a result that is not `true` refuses.
 * This module must never do I/O or keep state per caller; it is pure and shared by every node.
 */
import { type ASTNode, Environment } from '@marcbachmann/cel-js';
import type { CollectionRules } from '@syncbridge/protocol';
import { SyncError } from '@syncbridge/protocol';

/** The variables a rule is evaluated with. */
export interface RuleVars {
  auth: AuthVars;
  record: Record<string, unknown> | null;
  next: Record<string, unknown> | null;
  id: string;
}

export interface AuthVars {
  user: string;
  roles: string[];
  claims: Record<string, unknown>;
  tenant: string;
  platform: string | null;
  device: string | null;
}

export type RuleName = 'read' | 'write' | 'create' | 'update' | 'delete' | `hide.${string}`;

export interface CompiledRule {
  /** The rule's name in the settings (`read`, `write`, `hide.costPrice`…). */
  readonly name: string;
  readonly source: string;
  /**
   * The `auth` fields the rule reads (`null`: all of `auth`, when it is used as a whole). Two callers that
   * agree on these fields get the same answer for the same record, which fan-out groups on.
   */
  readonly authFields: readonly (keyof AuthVars)[] | null;
  /** Whether the rule reads `next` (then it only applies to writes). */
  readonly usesNext: boolean;
  /** True only when the rule evaluates to `true`; any error or other value is false. */
  test(vars: RuleVars): boolean;
}

export interface CompiledCollectionRules {
  readonly read: CompiledRule | null;
  /** Per write kind: the specific rule (`create`…) or else `write`, or null when writes are not ruled. */
  readonly create: CompiledRule | null;
  readonly update: CompiledRule | null;
  readonly delete: CompiledRule | null;
  /** Fields removed from what a reader gets when their rule is true for that reader. */
  readonly hide: readonly { path: string; rule: CompiledRule }[];
}

const AUTH_FIELDS: readonly (keyof AuthVars)[] = ['user', 'roles', 'claims', 'tenant', 'platform', 'device'];

const env = new Environment({
  limits: { maxAstNodes: 1_000, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
  homogeneousAggregateLiterals: false,
})
  .registerVariable('auth', 'map')
  .registerVariable('record', 'dyn')
  .registerVariable('next', 'dyn')
  .registerVariable('id', 'string');

/** Line and column (1-based) of an offset into a rule's text. */
function positionOf(source: string, offset: number): { offset: number; line: number; column: number } {
  const before = source.slice(0, Math.max(0, Math.min(offset, source.length)));
  const lines = before.split('\n');
  return { offset, line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

function refuse(name: string, source: string, err: unknown): never {
  const e = err as {
    summary?: unknown;
    message?: unknown;
    node?: { pos?: unknown };
    range?: { start?: unknown };
  };
  const offset =
    typeof e.node?.pos === 'number' ? e.node.pos : typeof e.range?.start === 'number' ? e.range.start : 0;
  const summary =
    typeof e.summary === 'string' ? e.summary : String(e.message ?? 'invalid expression').split('\n')[0];
  const position = positionOf(source, offset);
  throw new SyncError(
    'BAD_REQUEST',
    `rules.${name} does not compile at line ${position.line}, column ${position.column}: ${summary}`,
    { rule: name, position, error: summary },
  );
}

/** The `auth` fields an expression reads, or null when it uses `auth` as a whole (`auth == …`, `auth[k]`). */
function authFieldsOf(ast: ASTNode): { fields: (keyof AuthVars)[] | null; usesNext: boolean } {
  const fields = new Set<keyof AuthVars>();
  let whole = false;
  let usesNext = false;
  const visit = (node: unknown, parentSelects: boolean): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child, false);
      return;
    }
    if (typeof node !== 'object' || node === null || !('op' in node)) return;
    const { op, args } = node as { op: string; args: unknown };
    if (op === 'id') {
      if (args === 'auth' && !parentSelects) whole = true;
      if (args === 'next') usesNext = true;
      return;
    }
    if ((op === '.' || op === '.?') && Array.isArray(args)) {
      const [target, field] = args as [unknown, unknown];
      const isAuth =
        (target as { op?: unknown; args?: unknown }).op === 'id' &&
        (target as { args?: unknown }).args === 'auth';
      if (isAuth && typeof field === 'string' && (AUTH_FIELDS as readonly string[]).includes(field)) {
        fields.add(field as keyof AuthVars);
        return;
      }
      visit(target, false);
      return;
    }
    visit(args, false);
  };
  visit(ast, false);
  return { fields: whole ? null : AUTH_FIELDS.filter((f) => fields.has(f)), usesNext };
}

/** Compiles one rule, or throws BAD_REQUEST with the position of the error. */
export function compileRule(name: string, source: string): CompiledRule {
  let evaluate: (vars: RuleVars) => unknown;
  let ast: ASTNode;
  try {
    const parsed = env.parse(source);
    const checked = parsed.check();
    if (!checked.valid) refuse(name, source, checked.error);
    if (checked.type !== 'bool' && checked.type !== 'dyn') {
      throw new SyncError('BAD_REQUEST', `rules.${name} must be true or false, not a ${checked.type}`, {
        rule: name,
        position: positionOf(source, 0),
        error: `the expression is a ${checked.type}, not a bool`,
      });
    }
    evaluate = parsed as unknown as (vars: RuleVars) => unknown;
    ast = parsed.ast;
  } catch (err) {
    if (err instanceof SyncError) throw err;
    refuse(name, source, err);
  }
  const { fields, usesNext } = authFieldsOf(ast);
  return {
    name,
    source,
    authFields: fields,
    usesNext,
    test(vars) {
      try {
        return evaluate(vars) === true;
      } catch {
        return false;
      }
    },
  };
}

/** Compiles a collection's rules (null when it has none), refusing the first that does not compile. */
export function compileCollectionRules(rules: CollectionRules | undefined): CompiledCollectionRules | null {
  if (!rules) return null;
  const one = (name: RuleName, source: string | undefined) => (source ? compileRule(name, source) : null);
  const read = one('read', rules.read);
  if (read?.usesNext) {
    throw new SyncError('BAD_REQUEST', 'rules.read cannot use next (there is no write when reading)', {
      rule: 'read',
      position: positionOf(rules.read ?? '', 0),
      error: 'next is only defined for writes',
    });
  }
  const write = one('write', rules.write);
  const hide = Object.entries(rules.hide ?? {}).map(([path, source]) => ({
    path,
    rule: compileRule(`hide.${path}`, source),
  }));
  const compiled = {
    read,
    create: one('create', rules.create) ?? write,
    update: one('update', rules.update) ?? write,
    delete: one('delete', rules.delete) ?? write,
    hide,
  };
  const empty =
    !compiled.read && !compiled.create && !compiled.update && !compiled.delete && hide.length === 0;
  return empty ? null : compiled;
}
