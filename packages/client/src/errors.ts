/**
 * The one error type the SDK throws or rejects with. `code` is either a server error code from the
 * protocol (`NOT_FOUND`, `UNAUTHORIZED`, …) or one of the client's own: the client is closed, the
 * connection is down or was lost mid-request, a request timed out, or local storage failed.
 * Applications branch on `code`, never on `message`.
 */
import type { ErrorCode } from '@syncbridge/protocol';

export type ClientErrorCode =
  | ErrorCode
  /** `close()` was called (or the server refused the token for good). */
  | 'CLOSED'
  /** The request needs a live connection and there is none right now. */
  | 'DISCONNECTED'
  /** No answer within the request timeout. */
  | 'TIMEOUT'
  /** The offline queue's storage failed (disk full, quota, corrupt file). */
  | 'STORAGE';

export class SyncClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'SyncClientError';
  }
}
