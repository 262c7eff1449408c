/**
 * The shapes of names and record ids, as plain constants. The TypeBox schemas in model.ts are built from
 * them, and the client checks its writes against them without bundling TypeBox; the two can never drift.
 */

/** Collections, event types, platforms: printable, bounded, none of the separators channel names use. */
export const NAME_PATTERN = '^[A-Za-z0-9_.\\-]+$';
export const NAME_MAX_LENGTH = 128;

/** Record ids: no whitespace and nothing that would break a URL path segment. */
export const RECORD_ID_PATTERN = '^[^\\s/?#]+$';
export const RECORD_ID_MAX_LENGTH = 256;
