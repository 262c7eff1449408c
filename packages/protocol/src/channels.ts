/**
 * Channel names: `records:<collection>[?field=value&…]`, `events:<type>|*[?source=…&target=…]`,
 * `topic:<name>`. Parsing is shared so the client and server agree on what a name means.
 */

export type ChannelSpec =
  | { kind: 'records'; name: string; collection: string; filter: Record<string, string> }
  | { kind: 'events'; name: string; eventType: string; source?: string; target?: string }
  | { kind: 'topic'; name: string; topic: string };

/** As NAME_PATTERN in names.ts: `.` and `..` alone are not names. */
const NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$/;

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
    if (key in filter) return { error: `filter field "${key}" is given twice` };
    filter[key] = value;
  }
  switch (prefix) {
    case 'records':
      if (!NAME.test(base)) return { error: `"${base}" is not a valid collection name` };
      return { kind: 'records', name, collection: base, filter };
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
