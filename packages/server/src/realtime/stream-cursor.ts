/**
 * The resume position of a server-sent-events stream with several channels, as its SSE `id:` carries
 * it (and `Last-Event-ID` or `since=` bring it back): one seq per channel, in the order of `channels=`,
 * joined by commas, an empty place for a channel with no position yet ("from the head"). When every
 * channel is at the same seq the id is that one number, so a one-channel stream's id is the event's seq.
 * It must never accept anything but non-negative safe integers, one per channel or one for all.
 */
import { SyncError } from '../core/errors.ts';

/** Per channel (by index): the seq it has been sent everything up to, or undefined (from the head). */
export type StreamCursor = (number | undefined)[];

const SEQ = /^(0|[1-9][0-9]{0,15})$/;

/** Encodes positions as an SSE id: `42` when all are 42, else `42,17,` (an empty place: none yet). */
export function formatStreamCursor(cursor: StreamCursor): string {
  const first = cursor[0];
  if (first !== undefined && cursor.every((seq) => seq === first)) return String(first);
  return cursor.map((seq) => (seq === undefined ? '' : String(seq))).join(',');
}

/**
 * Reads a `since=` value or `Last-Event-ID` for `channels` channels: one seq for all of them, or one
 * place per channel. Throws BAD_REQUEST otherwise.
 */
export function parseStreamCursor(text: string, channels: number, what: string): StreamCursor {
  const places = text.split(',');
  if (places.length === 1) {
    if (!SEQ.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new SyncError('BAD_REQUEST', `${what} must be a seq, or one seq (or nothing) per channel`);
    }
    return Array.from({ length: channels }, () => Number(text));
  }
  if (places.length !== channels) {
    throw new SyncError(
      'BAD_REQUEST',
      `${what} has ${places.length} places for ${channels} channels (one seq for all, or one per channel)`,
    );
  }
  return places.map((place) => {
    if (place === '') return undefined;
    if (!SEQ.test(place) || !Number.isSafeInteger(Number(place))) {
      throw new SyncError('BAD_REQUEST', `${what}: "${place.slice(0, 20)}" is not a seq`);
    }
    return Number(place);
  });
}
