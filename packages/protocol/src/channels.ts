/**
 * Channel names: `records:<collection>[@<branch>][?field=value&…]`, `events:<type>|*[?source=…&target=…]`,
 * `topic:<name>`. Parsing is shared so the client and server agree on what a name means.
 */

export type ChannelSpec =
  /** `collection` is `<collection>@<branch>` for a branch's channel (only that branch's writes). */
  | { kind: 'records'; name: string; collection: string; filter: Record<string, string> }
  | { kind: 'events'; name: string; eventType: string; source?: string; target?: string }
  | { kind: 'topic'; name: string; topic: string };

/** As NAME_PATTERN in names.ts: `.` and `..` alone are not names. */
const NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$/;
/** As BRANCH_NAME_PATTERN in names.ts. */
const BRANCH = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$/;

/** Parses a channel name; returns a message describing the problem instead of throwing. */
export function parseChannel(name: string): ChannelSpec | { error: string } {
  const colon = name.indexOf(':');
  if (colon < 0)
    return { error: 'channel must look like records:<collection>, events:<type> or topic:<name>' };
  const prefix = name.slice(0, colon);
  const rest = name.slice(colon + 1);
  const q = rest.indexOf('?');
  const base = q < 0 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
  const filter: Record<string, string> = {};
  for (const [key, value] of params) {
    if (!NAME.test(key)) return { error: `filter field "${key}" is not a valid name` };
    // Records never hold a __proto__ key (the server refuses it), and as a plain property it would be
    // dropped from the filter, which would then match every record.
    if (key === '__proto__') return { error: 'filter field "__proto__" is not accepted' };
    // Own keys only: "constructor" or "toString" are data fields like any other.
    if (Object.hasOwn(filter, key)) return { error: `filter field "${key}" is given twice` };
    filter[key] = value;
  }
  switch (prefix) {
    case 'records': {
      const at = base.indexOf('@');
      const collection = at < 0 ? base : base.slice(0, at);
      if (!NAME.test(collection)) return { error: `"${collection}" is not a valid collection name` };
      if (at >= 0 && !BRANCH.test(base.slice(at + 1)))
        return { error: `"${base.slice(at + 1)}" is not a valid branch name` };
      return { kind: 'records', name, collection: base, filter };
    }
    case 'events': {
      if (base !== '*' && !NAME.test(base)) return { error: `"${base}" is not a valid event type` };
      const extra = Object.keys(filter).filter((k) => k !== 'source' && k !== 'target');
      if (extra.length > 0)
        return { error: `events channels filter only by source and target, not ${extra[0]}` };
      return { kind: 'events', name, eventType: base, source: filter.source, target: filter.target };
    }
    case 'topic':
      if (!NAME.test(base)) return { error: `"${base}" is not a valid topic name` };
      return { kind: 'topic', name, topic: base };
    default:
      return { error: `unknown channel kind "${prefix}"` };
  }
}
