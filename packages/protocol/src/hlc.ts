/**
 * The hybrid logical clock's timestamp format, shared by the server's clock and the SDK's:
 * `<wall ms, 15 digits>-<counter, 4 hex>-<node>`, so that plain string comparison orders timestamps.
 * Also the step both clocks take for a local event. No TypeBox here: the SDK's bundle imports it.
 */

export interface HlcTimestamp {
  wallMs: number;
  counter: number;
  node: string;
}

/** A node name as a timestamp may carry it. */
export const HLC_NODE_PATTERN = /^[A-Za-z0-9_.:-]{1,40}$/;
const PATTERN = /^(\d{15})-([0-9a-f]{4})-([A-Za-z0-9_.:-]{1,40})$/;
export const HLC_MAX_COUNTER = 0xffff;

export function formatHlc(ts: HlcTimestamp): string {
  return `${String(ts.wallMs).padStart(15, '0')}-${ts.counter.toString(16).padStart(4, '0')}-${ts.node}`;
}

/** Parses a timestamp; null for text that is not one. */
export function parseHlc(text: string): HlcTimestamp | null {
  const m = PATTERN.exec(text);
  if (!m) return null;
  return { wallMs: Number(m[1]), counter: Number.parseInt(m[2]!, 16), node: m[3]! };
}

/** The clock state after a local event at `physicalMs`: later than every state before it. */
export function nextHlc(
  state: { wallMs: number; counter: number },
  physicalMs: number,
): {
  wallMs: number;
  counter: number;
} {
  if (physicalMs > state.wallMs) return { wallMs: physicalMs, counter: 0 };
  if (state.counter >= HLC_MAX_COUNTER) return { wallMs: state.wallMs + 1, counter: 0 };
  return { wallMs: state.wallMs, counter: state.counter + 1 };
}

/** Whether timestamp `a` is later than `b` (the clock moves forward to it when it folds `a` in). */
export function hlcAfter(
  a: { wallMs: number; counter: number },
  b: { wallMs: number; counter: number },
): boolean {
  return a.wallMs > b.wallMs || (a.wallMs === b.wallMs && a.counter > b.counter);
}
