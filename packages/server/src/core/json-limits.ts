/**
 * The one check every JSON value passes before the server stores it: record data, patches, increments,
 * resolution data, event payloads, collection schemas and connector ticks, whatever the transport
 * (WebSocket, REST, inbound webhook, connector). A value that fails gets a `BAD_REQUEST` naming the
 * first problem and its path; it never reaches a write transaction, so it can neither overflow the stack
 * inside a group commit nor be stored as something other than what was sent.
 *
 * What it refuses, and why:
 * - nesting deeper than `maxDepth` (JSON.stringify, merge patch and SQLite's JSON functions recurse);
 * - more than `maxBytes` of JSON text (measured as it walks, so a huge value is refused early);
 * - numbers that JSON cannot carry back exactly: not finite (`1e400` parses to Infinity, stored as
 *   `null`) or beyond ±(2^53 − 1) (`9007199254740993` parses to …992 without a word);
 * - strings and keys that are not well-formed UTF-16 (a lone surrogate has no UTF-8 encoding:
 *   PostgreSQL refuses it, SQLite stores replacement bytes);
 * - keys `__proto__`, and `prototype` inside `constructor` (prototype poisoning; REST's JSON parser
 *   refuses these too, so both transports answer alike).
 *
 * It must never recurse (the values it checks are the ones that break recursion) and never throw.
 */
import { SyncError } from './errors.ts';

export interface JsonLimits {
  /** Most levels of objects and arrays, the value itself being level 1. */
  maxDepth: number;
  /** Most bytes of the value's JSON text (UTF-8). */
  maxBytes: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxDepth: 64, maxBytes: 1024 * 1024 };
/**
 * The highest depth the configuration may allow: SQLite's JSON functions refuse documents nested past
 * 1,000 levels, and a stored record they cannot read would break every filtered query of its collection.
 */
export const MAX_CONFIGURABLE_DEPTH = 512;

export interface JsonProblem {
  /** Where in the value, as a JSON pointer (`/a/0/b`; empty for the value itself). */
  path: string;
  message: string;
}

interface Frame {
  value: unknown;
  depth: number;
  key: string;
  parent: Frame | null;
}

function pointer(frame: Frame | null, key?: string): string {
  const parts: string[] = key === undefined ? [] : [key];
  for (let f = frame; f?.parent; f = f.parent) parts.push(f.key);
  return parts
    .reverse()
    .map((p) => `/${p.replace(/~/g, '~0').replace(/\//g, '~1')}`)
    .join('');
}

function numberProblem(n: number): string | null {
  if (!Number.isFinite(n)) return 'is not a finite number (JSON cannot carry it)';
  if (Math.abs(n) > Number.MAX_SAFE_INTEGER) {
    return 'is beyond ±9007199254740991 and cannot be stored exactly; send it as a string';
  }
  return null;
}

const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** The first reason `value` cannot be stored as JSON within `limits`, or null when it can. */
export function jsonProblem(value: unknown, limits: JsonLimits): JsonProblem | null {
  let bytes = 0;
  const stack: Frame[] = [{ value, depth: 1, key: '', parent: null }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const v = frame.value;
    if (v === null || typeof v === 'boolean') {
      bytes += 5;
    } else if (typeof v === 'number') {
      const problem = numberProblem(v);
      if (problem) return { path: pointer(frame), message: `number ${problem}` };
      bytes += 8;
    } else if (typeof v === 'string') {
      if (!wellFormed(v)) {
        return { path: pointer(frame), message: 'string holds a lone surrogate (not valid Unicode)' };
      }
      bytes += Buffer.byteLength(v) + 2;
    } else if (typeof v === 'object') {
      if (frame.depth > limits.maxDepth) {
        return { path: pointer(frame), message: `nested deeper than ${limits.maxDepth} levels` };
      }
      if (Array.isArray(v)) {
        bytes += 2 + v.length;
        for (let i = v.length - 1; i >= 0; i--) {
          stack.push({ value: v[i], depth: frame.depth + 1, key: String(i), parent: frame });
        }
      } else {
        bytes += 2;
        for (const key of Object.keys(v)) {
          if (key === '__proto__' || (key === 'prototype' && frame.key === 'constructor')) {
            return { path: pointer(frame, key), message: `key "${key}" is not accepted` };
          }
          if (!wellFormed(key)) {
            return { path: pointer(frame), message: 'key holds a lone surrogate (not valid Unicode)' };
          }
          const child = (v as Record<string, unknown>)[key];
          if (child === undefined) continue;
          bytes += Buffer.byteLength(key) + 4;
          stack.push({ value: child, depth: frame.depth + 1, key, parent: frame });
        }
      }
    } else if (v !== undefined) {
      return { path: pointer(frame), message: `${typeof v} is not a JSON value` };
    }
    if (bytes > limits.maxBytes) {
      return { path: '', message: `larger than ${limits.maxBytes} bytes of JSON` };
    }
  }
  return null;
}

/** Throws a BAD_REQUEST naming `what` (e.g. "data") when `value` cannot be stored within `limits`. */
export function assertStorableJson(value: unknown, limits: JsonLimits, what: string): void {
  const problem = jsonProblem(value, limits);
  if (problem) throw storableJsonError(problem, what);
}

export function storableJsonError(problem: JsonProblem, what: string): SyncError {
  const path = problem.path.length > 120 ? `/…${problem.path.slice(-100)}` : problem.path;
  const details: { path: string; limit?: 'depth' } = { path: problem.path };
  if (problem.message.startsWith('nested deeper')) details.limit = 'depth';
  return new SyncError('BAD_REQUEST', `${what}${path}: ${problem.message}`, details);
}

/** Whether an error (or a result's error) is a refusal for nesting past the depth limit. */
export function isDepthRefusal(error: { details?: unknown } | undefined): boolean {
  return (error?.details as { limit?: string } | undefined)?.limit === 'depth';
}

/**
 * Whether JSON text nests deeper than `max` levels, found by scanning it without parsing (about a
 * third of JSON.parse's time, and it stops at the first level too many). Used on frames of clients
 * that already sent one too deep: parsing a 10,000-level frame costs milliseconds.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/**
 * Collection names and record ids that a URL cannot address: `.` and `..` are path segments every
 * HTTP client and router normalizes away, so a record stored under them could never be read over REST.
 */
export function unreachableName(name: string): boolean {
  return name === '.' || name === '..';
}
