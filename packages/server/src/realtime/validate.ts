/**
 * Parsing and validation of client frames against the protocol's schemas. Returns a typed message or
 * a SyncError describing what is wrong; never throws on bad input.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  CLIENT_MESSAGE_SCHEMAS,
  type ClientMessage,
  type ClientMessageType,
  type Rid,
} from '@syncbridge/protocol';
import { SyncError } from '../core/errors.ts';
import { nulPath } from '../core/nul.ts';

type Checker = {
  Check(value: unknown): boolean;
  Errors(value: unknown): Iterable<{ path: string; message: string }>;
};
const checkers: Record<string, Checker> = Object.fromEntries(
  Object.entries(CLIENT_MESSAGE_SCHEMAS).map(([type, schema]) => [
    type,
    TypeCompiler.Compile(schema) as Checker,
  ]),
);

export type ParsedFrame = { ok: true; message: ClientMessage } | { ok: false; error: SyncError; rid?: Rid };

function ridIn(value: Record<string, unknown>): Rid | undefined {
  const rid = value.rid;
  return (typeof rid === 'string' && rid.length <= 128) || Number.isInteger(rid) ? (rid as Rid) : undefined;
}

/** A frame's rid when it is its first key, or its second after `type` (as JSON.stringify of a message writes them). */
const LEADING_RID =
  /^\s*\{(?:\s*"type"\s*:\s*"[a-z]{1,16}"\s*,)?\s*"rid"\s*:\s*("[^"\\]{0,128}"|-?\d{1,15})\s*[,}]/;

/** The rid of a frame refused before it is parsed, read from its first characters only (or undefined). */
export function leadingRid(text: string): Rid | undefined {
  const m = LEADING_RID.exec(text.slice(0, 256));
  return m ? (JSON.parse(m[1]!) as Rid) : undefined;
}

/** The rid of a frame that is not otherwise handled (refused by the rate limit), if it has a readable one. */
export function ridOf(frame: Buffer): Rid | undefined {
  try {
    const value: unknown = JSON.parse(frame.toString('utf8'));
    return typeof value === 'object' && value !== null ? ridIn(value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function parseClientFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: new SyncError('BAD_REQUEST', 'frame is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: new SyncError('BAD_REQUEST', 'a message must be a JSON object with a "type"'),
    };
  }
  const obj = value as Record<string, unknown>;
  const rid = ridIn(obj);
  // U+0000 can only arrive escaped: frames without the escape need no walk (core/nul.ts).
  if (text.includes('\\u0000')) {
    const at = nulPath(value);
    if (at !== null) {
      return {
        ok: false,
        rid,
        error: new SyncError(
          'BAD_REQUEST',
          `the message holds the NUL character (\\u0000) at ${at}; text with it cannot be stored`,
          { path: at },
        ),
      };
    }
  }
  const type = obj.type;
  if (typeof type !== 'string' || !Object.hasOwn(checkers, type)) {
    return {
      ok: false,
      rid,
      error: new SyncError(
        'BAD_REQUEST',
        `unknown message type ${JSON.stringify(type ?? null).slice(0, 64)}`,
        {
          known: Object.keys(checkers),
        },
      ),
    };
  }
  const checker = checkers[type as ClientMessageType]!;
  if (!checker.Check(value)) {
    const problems = [...checker.Errors(value)]
      .slice(0, 5)
      .map((e) => ({ path: e.path || '/', message: e.message }));
    return {
      ok: false,
      rid,
      error: new SyncError(
        'BAD_REQUEST',
        `invalid ${type} message: ${problems[0]?.path} ${problems[0]?.message}`,
        {
          problems,
        },
      ),
    };
  }
  return { ok: true, message: value as ClientMessage };
}
