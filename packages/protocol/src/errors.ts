/**
 * Stable error codes shared by the server and the client, and their HTTP statuses.
 * A code never changes meaning once published; clients branch on it.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** The body of every REST error: `{"error":{"code","message","details"?}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/**
 * WebSocket close codes the server uses besides the standard ones.
 * A client that sees a code from {@link RESUMABLE_CLOSE_CODES} reconnects and resumes from its last seq.
 */
export const CLOSE_CODES = {
  /** Policy violation: bad or missing credentials, forbidden origin. Do not retry with the same token. */
  POLICY: 1008,
  /** A frame exceeded the server's frame limit. */
  TOO_BIG: 1009,
  /** The server is shutting down; reconnect (to another node) and resume. */
  GOING_AWAY: 1001,
  /** The connection's outbound buffer overflowed (a slow reader); reconnect and resume from the last seq. */
  SLOW_CONSUMER: 4001,
  /** No message or pong within the idle timeout. */
  IDLE_TIMEOUT: 4002,
  /** The client did not authenticate in time. */
  HELLO_TIMEOUT: 4003,
  /** Too many connections for this user right now: reconnect later (with backoff) and resume. */
  TRY_AGAIN_LATER: 1013,
  /**
   * The client kept sending past its rate limit (a flood): the connection is closed. Reconnect only
   * after a pause, and send less.
   */
  RATE_LIMITED: 4008,
} as const;

export const RESUMABLE_CLOSE_CODES: readonly number[] = [
  CLOSE_CODES.GOING_AWAY,
  CLOSE_CODES.SLOW_CONSUMER,
  CLOSE_CODES.IDLE_TIMEOUT,
  CLOSE_CODES.TRY_AGAIN_LATER,
];
