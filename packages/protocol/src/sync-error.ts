/**
 * SyncError: the one error type the server raises on purpose. Its `code` is a stable DESIGN.md code;
 * the HTTP and WebSocket layers map it to a status or an `error` frame in one place each.
 * Anything else that escapes is reported as INTERNAL without its message or stack.
 *
 * It lives in protocol, below every server folder, so the storage drivers can translate their failures
 * (UNAVAILABLE, CONFLICT) without importing the domain core. It must never import TypeBox (see index.ts).
 */
import { type ErrorCode, HTTP_STATUS } from './errors.ts';

export class SyncError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/** The public view of any thrown value: a SyncError as is, anything else as an opaque INTERNAL error. */
export function toPublicError(err: unknown): { code: ErrorCode; message: string; details?: unknown } {
  if (err instanceof SyncError) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  return { code: 'INTERNAL', message: 'internal error' };
}
