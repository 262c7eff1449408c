/**
 * Dotted paths into parsed JSON (`data.ltp`, `levels.0.price`, a leading `$.` is allowed) and message
 * templates: JSON values whose strings may hold `{{name}}` placeholders. A string that is exactly one
 * placeholder takes the variable's value as is (an array of symbols stays an array); elsewhere the
 * value is written into the string.
 */
const splitPaths = new Map<string, string[]>();

function parts(path: string): string[] {
  let out = splitPaths.get(path);
  if (!out) {
    out = path
      .replace(/^\$\.?/, '')
      .split('.')
      .filter((p) => p !== '');
    // Paths come from configuration: a handful per connector, so the cache stays small.
    if (splitPaths.size < 10_000) splitPaths.set(path, out);
  }
  return out;
}

export function getPath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of parts(path)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;
const WHOLE = /^\{\{\s*([A-Za-z0-9_.]+)\s*\}\}$/;

/** Fills a template; variables missing from `vars` are left empty (strings) or null (whole values). */
export function renderTemplate(template: unknown, vars: Record<string, unknown>): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole) return vars[whole[1]!] ?? null;
    return template.replace(PLACEHOLDER, (_m, name: string) => {
      const v = vars[name];
      if (v === undefined || v === null) return '';
      return typeof v === 'string' ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(template)) return template.map((t) => renderTemplate(t, vars));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[k] = renderTemplate(v, vars);
    return out;
  }
  return template;
}

/** The placeholder names a template uses. */
export function templateVariables(template: unknown, out = new Set<string>()): Set<string> {
  if (typeof template === 'string') {
    for (const m of template.matchAll(PLACEHOLDER)) out.add(m[1]!);
  } else if (Array.isArray(template)) {
    for (const t of template) templateVariables(t, out);
  } else if (template !== null && typeof template === 'object') {
    for (const v of Object.values(template)) templateVariables(v, out);
  }
  return out;
}

/** JSON with object keys sorted, so equal documents compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
