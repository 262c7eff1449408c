/**
 * SyncError, the one error type the server raises on purpose, and its public view. Defined in protocol
 * (sync-error.ts) so the storage drivers can raise it without importing core; re-exported here for the
 * domain code that has always imported it from core.
 */
export { SyncError, toPublicError } from '@syncbridge/protocol';
