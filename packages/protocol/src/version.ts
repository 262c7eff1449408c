/**
 * The protocol version. Kept apart from the message schemas so that a client bundle needing only this
 * constant never pulls in TypeBox.
 */

/** Protocol version spoken by this package. The server answers `hello` with a higher one by its own. */
export const PROTOCOL_VERSION = 1;
