/**
 * A thin REST client for the http suites: real `fetch` against a running server, returning the
 * status, the headers, the raw text and the parsed JSON body, so tests can assert what a user sees.
 */
import { expect } from 'vitest';

/** A parsed JSON body, inspected field by field by the tests. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked dynamically by the assertions
export type Json = any;

export interface RestResponse<T = Json> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

export interface RestOptions {
  token?: string;
  apiKey?: string;
  tenant?: string;
  headers?: Record<string, string>;
  /** Sent as JSON (with Content-Type: application/json unless `headers` sets another). */
  json?: unknown;
  /** Sent as is; set the Content-Type yourself in `headers`. */
  raw?: string;
}

export async function rest<T = Json>(
  baseUrl: string,
  method: string,
  path: string,
  options: RestOptions = {},
): Promise<RestResponse<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.apiKey) headers['x-api-key'] = options.apiKey;
  if (options.tenant) headers['x-tenant'] = options.tenant;
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.raw !== undefined) body = options.raw;
  Object.assign(headers, options.headers ?? {});
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = null;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, text, body: parsed as T };
}

/** A client bound to one server and one set of credentials. */
export function restClient(baseUrl: string, auth: Pick<RestOptions, 'token' | 'apiKey' | 'tenant'>) {
  const call =
    (method: string) =>
    <T = Json>(path: string, options: RestOptions = {}) =>
      rest<T>(baseUrl, method, path, { ...auth, ...options });
  return {
    get: call('GET'),
    put: call('PUT'),
    patch: call('PATCH'),
    post: call('POST'),
    delete: call('DELETE'),
  };
}

/** Asserts the DESIGN error shape `{"error":{"code","message","details"?}}` with the given status and code. */
export function expectError(res: RestResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }, res.text).toEqual({ status, code });
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.length).toBeGreaterThan(0);
  for (const key of Object.keys(res.body.error)) expect(['code', 'message', 'details']).toContain(key);
  expect(Object.keys(res.body)).toEqual(['error']);
}

/** The keys of a record as DESIGN.md names them. */
export const RECORD_KEYS = [
  'collection',
  'data',
  'deleted',
  'hlc',
  'id',
  'updatedAt',
  'updatedBy',
  'version',
];
