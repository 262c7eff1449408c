/**
 * The shapes of names and record ids, as plain constants. The TypeBox schemas in model.ts are built from
 * them, and the client checks its writes against them without bundling TypeBox; the two can never drift.
 */

/**
 * Collections, event types, platforms: printable, bounded, none of the separators channel names use, and
 * not `.` or `..` alone (URL path segments that clients and routers normalize away, so REST could never
 * reach a collection so named).
 */
export const NAME_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9_.\\-]+$';
export const NAME_MAX_LENGTH = 128;

/** Record ids: no whitespace, nothing that would break a URL path segment, and (like names) not `.` or `..`. */
export const RECORD_ID_PATTERN = '^(?!\\.{1,2}$)[^\\s/?#]+$';
export const RECORD_ID_MAX_LENGTH = 256;

/** Branch names (core of `<collection>@<branch>`): as names, shorter. */
export const BRANCH_NAME_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9_.\\-]+$';
export const BRANCH_NAME_MAX_LENGTH = 64;

/**
 * Where a record lives: a collection, or a branch of it as `<collection>@<branch>` (its own versions,
 * history and channel; see docs/rest.md#branches). Settings, schema and access rules are the collection's.
 */
export const COLLECTION_REF_PATTERN =
  '^(?!\\.{1,2}(?:@|$))[A-Za-z0-9_.\\-]+(?:@(?!\\.{1,2}$)[A-Za-z0-9_.\\-]{1,64})?$';
export const COLLECTION_REF_MAX_LENGTH = NAME_MAX_LENGTH + 1 + BRANCH_NAME_MAX_LENGTH;
