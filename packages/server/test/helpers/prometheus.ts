/**
 * A small parser of the Prometheus text exposition format (version 0.0.4) for tests: every sample with
 * its labels, and each family's TYPE, so a test reads `syncbridge_x_total{type="ping"}` by name and
 * labels instead of matching the text loosely.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name → counter, gauge, histogram, summary or untyped. */
  types: Map<string, string>;
  /** Samples of `name` whose labels include every given label (throws for a name no family declares). */
  find(name: string, labels?: Record<string, string>): Sample[];
  /** The value of the one sample of `name` with these labels; 0 when there is none (an unset child). */
  value(name: string, labels?: Record<string, string>): number;
  /** The sum of every sample of `name` whose labels include these. */
  sum(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0 || text[eq + 1] !== '"') throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j += 1;
        const c = text[j];
        value += c === 'n' ? '\n' : c;
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
  }
  return labels;
}

/** A sample value as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`). */
function parseValue(text: string): number {
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`bad sample value ${text}`);
  return n;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    let value: number;
    try {
      value = parseValue(m[4]!);
    } catch (err) {
      throw new Error(`${(err as Error).message} in: ${line}`);
    }
    samples.push({ name: m[1]!, labels: m[3] ? parseLabels(m[3], line) : {}, value });
  }
  // A name no family declares is a typo or a missing metric, not a zero.
  const known = (name: string) => {
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`no metric family ${name} in the exposition`);
  };
  const find = (name: string, labels: Record<string, string> = {}) => {
    known(name);
    return samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  };
  return {
    samples,
    types,
    find,
    value(name, labels = {}) {
      const found = find(name, labels).filter(
        (s) => Object.keys(s.labels).length === Object.keys(labels).length,
      );
      if (found.length > 1)
        throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value ?? 0;
    },
    sum(name, labels = {}) {
      return find(name, labels).reduce((n, s) => n + s.value, 0);
    },
  };
}

/**
 * Scrapes a server's /metrics and parses it. Series labelled by tenant are only there with the admin
 * key (`apiKey`) or the metrics token (`token`).
 */
export async function scrape(
  url: string,
  auth: { apiKey?: string; token?: string } = {},
): Promise<Exposition> {
  const headers: Record<string, string> = {};
  if (auth.apiKey) headers['x-api-key'] = auth.apiKey;
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  const res = await fetch(`${url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}
