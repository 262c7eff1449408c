/**
 * Turning an upstream feed message into ticks and order book depth, by configuration (rules of JSON
 * paths, each with an optional `match`) or by a code hook. A message no rule matches (heartbeats,
 * acknowledgements) yields nothing.
 */
import type { DepthParse, TickParse } from './config.ts';
import { getPath } from './json-path.ts';
import type { DepthInput, DepthLevel, TickInput } from './types.ts';

export interface ParsedFeedMessage {
  ticks: TickInput[];
  depth: DepthInput[];
}

/** A code hook: the ticks and depth in one parsed JSON message (null or empty lists: none). */
export type FeedParser = (message: unknown) => Partial<ParsedFeedMessage> | null;

export interface ParseRules {
  tick?: TickParse | TickParse[];
  depth?: DepthParse | DepthParse[];
}

function list<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function matches(message: unknown, match: Record<string, string | number | boolean> | undefined): boolean {
  if (!match) return true;
  for (const [path, expected] of Object.entries(match)) {
    if (getPath(message, path) !== expected) return false;
  }
  return true;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function time(value: unknown, unit: 'ms' | 's' | 'iso' | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (unit === 'iso' || (typeof value === 'string' && Number.isNaN(Number(value)))) {
    const t = Date.parse(String(value));
    return Number.isNaN(t) ? undefined : t;
  }
  const n = num(value);
  if (n === undefined) return undefined;
  return unit === 's' ? Math.round(n * 1000) : n;
}

function items(message: unknown, path: string | undefined): unknown[] {
  if (path === undefined) return [message];
  const value = getPath(message, path);
  return Array.isArray(value) ? value : [];
}

function levels(value: unknown, level: DepthParse['level']): DepthLevel[] {
  if (!Array.isArray(value)) return [];
  const out: DepthLevel[] = [];
  for (const entry of value) {
    const price = num(level ? getPath(entry, level.price) : Array.isArray(entry) ? entry[0] : undefined);
    const qty = num(level ? getPath(entry, level.qty) : Array.isArray(entry) ? entry[1] : undefined);
    if (price !== undefined && qty !== undefined) out.push([price, qty]);
  }
  return out;
}

/** Applies configured rules: every matching rule contributes its ticks or depth. */
export function parseByRules(message: unknown, rules: ParseRules): ParsedFeedMessage {
  const out: ParsedFeedMessage = { ticks: [], depth: [] };
  for (const rule of list(rules.tick)) {
    if (!matches(message, rule.match)) continue;
    for (const item of items(message, rule.items)) {
      const symbol = getPath(item, rule.symbol);
      if (typeof symbol !== 'string' && typeof symbol !== 'number') continue;
      const tick: TickInput = { symbol: String(symbol) };
      const price = rule.price ? num(getPath(item, rule.price)) : undefined;
      if (rule.price && price === undefined) continue;
      if (price !== undefined) tick.price = price;
      const volume = rule.volume ? num(getPath(item, rule.volume)) : undefined;
      if (volume !== undefined) tick.volume = volume;
      const ts = rule.ts ? time(getPath(item, rule.ts), rule.tsUnit) : undefined;
      if (ts !== undefined) tick.ts = ts;
      if (rule.fields) {
        const data: Record<string, unknown> = {};
        for (const [name, path] of Object.entries(rule.fields)) {
          const v = getPath(item, path);
          if (v !== undefined) data[name] = v;
        }
        if (Object.keys(data).length > 0) tick.data = data;
      }
      out.ticks.push(tick);
    }
  }
  for (const rule of list(rules.depth)) {
    if (!matches(message, rule.match)) continue;
    for (const item of items(message, rule.items)) {
      const symbol = getPath(item, rule.symbol);
      if (typeof symbol !== 'string' && typeof symbol !== 'number') continue;
      const depth: DepthInput = {
        symbol: String(symbol),
        bids: levels(getPath(item, rule.bids), rule.level),
        asks: levels(getPath(item, rule.asks), rule.level),
      };
      const ts = rule.ts ? time(getPath(item, rule.ts), rule.tsUnit) : undefined;
      if (ts !== undefined) depth.ts = ts;
      out.depth.push(depth);
    }
  }
  return out;
}
