/**
 * What a connector definition's templates may read: `{{env.NAME}}` only in definitions from the
 * operator's config file and only for the names listed in `connectors.env`; `{{secrets.NAME}}` (the
 * tenant's own connector secrets) in any definition. Checked when a definition is loaded or submitted,
 * with the place of every refused placeholder, so a bad definition never starts.
 *
 * It must never let a connector defined over REST name the server's environment: that would hand a
 * tenant admin the secrets the server runs with (its JWT signing secret, database password...).
 */
import type { ConnectorSpec } from './types.ts';

/** Names of connector secrets: what a `{{secrets.NAME}}` placeholder can spell (no dots). */
export const SECRET_NAME_PATTERN = '^[A-Za-z0-9_]{1,64}$';
const SECRET_NAME = new RegExp(SECRET_NAME_PATTERN);
/** Environment variables the config may list in `connectors.env`. */
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';

/** The same placeholder syntax `renderTemplate` fills (json-path.ts), with or without spaces inside. */
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

export type DefinitionOrigin = 'config' | 'api';

/** One placeholder found in a definition: where (a JSON pointer into it) and what it names. */
export interface TemplateReference {
  path: string;
  name: string;
}

function pointer(parts: readonly string[]): string {
  return parts.map((p) => `/${p.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** Every placeholder in every string of the definition (any field: a template may sit anywhere). */
export function templateReferences(spec: unknown): TemplateReference[] {
  const out: TemplateReference[] = [];
  const walk = (value: unknown, path: string[]): void => {
    if (typeof value === 'string') {
      for (const m of value.matchAll(PLACEHOLDER)) out.push({ path: pointer(path), name: m[1]! });
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) walk(v, [...path, String(i)]);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    }
  };
  walk(spec, []);
  return out;
}

function namespaced(name: string, namespace: 'env' | 'secrets'): string | null {
  const prefix = `${namespace}.`;
  return name.toLowerCase().startsWith(prefix) ? name.slice(prefix.length) : null;
}

/** The connector secrets a definition's templates name. */
export function secretNames(spec: ConnectorSpec): string[] {
  const names = new Set<string>();
  for (const ref of templateReferences(spec)) {
    const name = namespaced(ref.name, 'secrets');
    if (name !== null && ref.name.startsWith('secrets.')) names.add(name);
  }
  return [...names].sort();
}

/** The environment variables a definition's templates name. */
export function envNames(spec: ConnectorSpec): string[] {
  const names = new Set<string>();
  for (const ref of templateReferences(spec)) {
    const name = namespaced(ref.name, 'env');
    if (name !== null && ref.name.startsWith('env.')) names.add(name);
  }
  return [...names].sort();
}

/**
 * The placeholders a definition may not use, one problem each with its place: any `env.` one in a
 * definition made over REST, an `env.` one not in `allowedEnv` in the config file, and a malformed
 * secret name anywhere.
 */
export function templatePolicyProblems(
  spec: ConnectorSpec,
  origin: DefinitionOrigin,
  allowedEnv: ReadonlySet<string>,
  where: string = spec.name,
): string[] {
  const problems: string[] = [];
  for (const ref of templateReferences(spec)) {
    const at = `${where}${ref.path}`;
    const env = namespaced(ref.name, 'env');
    if (env !== null) {
      if (origin === 'api') {
        problems.push(
          `${at}: {{${ref.name}}} reads the server's environment, which a connector defined over REST may not; store the value as a connector secret (PUT /v1/connector-secrets/NAME) and write {{secrets.NAME}}`,
        );
      } else if (!ref.name.startsWith('env.') || !allowedEnv.has(env)) {
        problems.push(
          `${at}: {{${ref.name}}} names an environment variable not listed in connectors.env (listed: ${[...allowedEnv].join(', ') || 'none'})`,
        );
      }
      continue;
    }
    const secret = namespaced(ref.name, 'secrets');
    if (secret !== null && (!ref.name.startsWith('secrets.') || !SECRET_NAME.test(secret))) {
      problems.push(
        `${at}: {{${ref.name}}} is not a connector secret's name (secrets.NAME, NAME of letters, digits and _)`,
      );
    }
  }
  return problems;
}
