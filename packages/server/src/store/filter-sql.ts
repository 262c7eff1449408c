/**
 * The record filter compiled to SQL, one function per dialect, both from the protocol's one definition
 * (`filterConditions`, `FILTER_MATCHED_TYPES` in @syncbridge/protocol filters.ts): the data field at a
 * dotted path, every step into an object, is a string equal to the text, or a number or boolean whose
 * JSON text equals it; anything else never matches. The drivers call these and write no filter SQL
 * of their own. Pure functions: no database access, no driver import.
 */
import { FILTER_MATCHED_TYPES, filterConditions, type RecordFilter } from '@syncbridge/protocol';

export interface FilterSql {
  /** ` AND (…) AND (…)`, or '' for no filter. */
  sql: string;
  params: unknown[];
}

function joined(clauses: string[]): string {
  return clauses.length ? ` AND ${clauses.join(' AND ')}` : '';
}

/**
 * SQLite (JSON1 on a TEXT column `data`; `?` placeholders). `json_type` names numbers 'integer' or
 * 'real' and booleans 'true' or 'false'; a path `$."a"."b"` steps into objects only. A row SQLite's
 * JSON functions cannot read (nested past their 1,000 levels: written before the server limited
 * depth) matches no filter instead of failing the whole query with "malformed JSON".
 */
export function sqliteFilter(filter: RecordFilter): FilterSql {
  const types: Record<(typeof FILTER_MATCHED_TYPES)[number], string> = {
    string: "WHEN 'text' THEN data ->> ?",
    number: "WHEN 'integer' THEN data -> ? WHEN 'real' THEN data -> ?",
    boolean: "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'",
  };
  const cases = FILTER_MATCHED_TYPES.map((t) => types[t]).join(' ');
  const clause = `(CASE WHEN json_valid(data) THEN (CASE json_type(data, ?) ${cases} ELSE NULL END) END) = ?`;
  /** Placeholders of the path in one clause (all but the last, the text's). */
  const pathParams = (clause.match(/\?/g) ?? []).length - 1;
  const clauses: string[] = [];
  const params: unknown[] = [];
  for (const { path, text } of filterConditions(filter)) {
    const jsonPath = `$${path.map((part) => `."${part}"`).join('')}`;
    clauses.push(clause);
    params.push(...Array<string>(pathParams).fill(jsonPath), text);
  }
  return { sql: joined(clauses), params };
}

/**
 * PostgreSQL (a JSONB column `data`; `$n` placeholders from `firstParam`). `#>>` renders strings as
 * they are and numbers and booleans as their JSON text; since `#>` would also index into arrays,
 * every step before the last must be an object.
 */
export function postgresFilter(filter: RecordFilter, firstParam: number): FilterSql {
  const types = FILTER_MATCHED_TYPES.map((t) => `'${t}'`).join(', ');
  const clauses: string[] = [];
  const params: unknown[] = [];
  let n = firstParam;
  for (const { path, text } of filterConditions(filter)) {
    const at = `$${n}::text[]`;
    const checks = [`jsonb_typeof(data #> ${at}) IN (${types})`];
    for (let depth = 1; depth < path.length; depth++)
      checks.push(`jsonb_typeof(data #> (${at})[1:${depth}]) = 'object'`);
    checks.push(`data #>> ${at} = $${n + 1}::text`);
    clauses.push(`(${checks.join(' AND ')})`);
    params.push(path, text);
    n += 2;
  }
  return { sql: joined(clauses), params };
}
