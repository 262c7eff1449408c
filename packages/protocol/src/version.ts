/**
 * The protocol version. Kept apart from the message schemas so that a client bundle needing only this
 * constant never pulls in TypeBox.
 */

/** Protocol version spoken by this package. The server answers `hello` with a higher one by its own. */
export const PROTOCOL_VERSION = 1;

/**
 * The longest token (JWT) the server takes, on every path (`hello`, `?token=`, `Authorization`,
 * `?access_token=`): room for the 8 KiB of access-rule claims a minted token may carry.
 */
export const MAX_TOKEN_LENGTH = 16_384;
