/**
 * The local check of a write before it is queued: the collection name, the record id and the data's
 * shape, against the same patterns the protocol's schemas use (`@syncbridge/protocol` names.ts). The
 * server validates every message in full; this only refuses early, with BAD_REQUEST, what the server
 * would refuse anyway, and keeps TypeBox out of the SDK's bundle. It must never accept what the
 * protocol's `Mutation` schema refuses for the fields a caller controls.
 */
import {
  COLLECTION_REF_MAX_LENGTH,
  COLLECTION_REF_PATTERN,
  RECORD_ID_MAX_LENGTH,
  RECORD_ID_PATTERN,
} from '@syncbridge/protocol';

/** A collection, or a branch of it (`<collection>@<branch>`). */
const NAME = new RegExp(COLLECTION_REF_PATTERN);
const RECORD_ID = new RegExp(RECORD_ID_PATTERN);

function stringProblem(value: unknown, max: number, pattern: RegExp): string | null {
  if (typeof value !== 'string') return 'expected a string';
  if (value.length === 0) return 'expected at least 1 character';
  if (value.length > max) return `expected at most ${max} characters`;
  if (!pattern.test(value)) return `expected to match ${pattern.source}`;
  return null;
}

/** What is wrong with a write's collection, id or data, as `path: message`; null when nothing is. */
export function writeProblem(collection: unknown, id: unknown, data: unknown): string | null {
  const name = stringProblem(collection, COLLECTION_REF_MAX_LENGTH, NAME);
  if (name) return `/collection: ${name}`;
  const recordId = stringProblem(id, RECORD_ID_MAX_LENGTH, RECORD_ID);
  if (recordId) return `/id: ${recordId}`;
  if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data)))
    return '/data: expected an object';
  return null;
}
