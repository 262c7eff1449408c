/**
 * Access rules at fan-out: what one committed record event looks like to each subscriber. A rule reads only
 * `auth` and the record, so subscribers whose `auth` agrees on the fields a rule reads (its group,
 * `groupKey`) get the same answer: the rule runs once per event per group, not once per subscriber, and
 * the frame of each distinct view (hidden fields) is built once.
 *
 * A record that a subscriber could read before the change and cannot after it reaches that subscriber as a
 * removal (`op: "delete"`, `data: null`), so it leaves the subscriber's cache the way a record leaves a
 * filtered room. This module must never do I/O; it asks rules/decide.ts for every answer.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { authVars, bypassesRules, groupKey, type RuledCollection, withoutFields } from './decide.ts';

/**
 * `arrive`: the record enters what the subscriber may read with this change; it gets the change without
 * `previous`, which would show values of a version it was not allowed to read.
 */
export type Delivery = 'send' | 'arrive' | 'remove' | 'skip';

const NO_VIEW: { key: string; paths: string[] } = Object.freeze({ key: '', paths: [] }) as {
  key: string;
  paths: string[];
};

/** The record's data before a change, rebuilt from the event's `previous` (the old values of changed fields). */
export function dataBefore(event: LogEvent): Record<string, unknown> | null {
  if (event.op === 'delete') return event.data ?? null;
  if (!event.previous || !event.data) return event.version === 1 ? null : (event.data ?? null);
  const before = structuredClone(event.data) as Record<string, unknown>;
  for (const [path, value] of Object.entries(event.previous)) {
    const parts = path.split('.');
    let at: Record<string, unknown> = before;
    for (const part of parts.slice(0, -1)) {
      const child = at[part];
      if (typeof child !== 'object' || child === null || Array.isArray(child)) at[part] = {};
      at = at[part] as Record<string, unknown>;
    }
    at[parts.at(-1)!] = value;
  }
  return before;
}

/** One record event's decisions, shared by every subscriber it is offered to. */
export class EventAccess {
  private readonly reads = new Map<string, Delivery>();
  private readonly hidden = new Map<string, string[]>();
  private before: Record<string, unknown> | null | undefined;

  constructor(
    private readonly collection: RuledCollection,
    readonly event: LogEvent,
  ) {}

  private beforeData(): Record<string, unknown> | null {
    if (this.before === undefined) this.before = dataBefore(this.event);
    return this.before;
  }

  /**
   * Whether this subscriber gets the event, gets it as a removal, or does not get it. `key`, when the
   * caller knows it, is the subscriber's `groupKey` for the collection's read rule.
   */
  delivery(principal: Principal, known?: { rule: unknown; key: string }): Delivery {
    const rule = this.collection.rules?.read;
    if (!rule || bypassesRules(principal)) return 'send';
    const key = known && known.rule === rule ? known.key : groupKey(rule, principal);
    let answer = this.reads.get(key);
    if (answer === undefined) {
      const event = this.event;
      const id = event.id ?? '';
      const auth = authVars(principal);
      const after = event.op === 'delete' ? null : (event.data ?? null);
      const readableAfter = after !== null && rule.test({ auth, record: after, next: null, id });
      if (readableAfter) {
        // With `previous`, the version before may hold what this reader may not see: check it too.
        const before = event.previous ? this.beforeData() : null;
        answer =
          !event.previous || (before !== null && rule.test({ auth, record: before, next: null, id }))
            ? 'send'
            : 'arrive';
      } else {
        const before = this.beforeData();
        // A delete was readable if its last data was; a removal tells the subscriber to drop it.
        const readableBefore = before !== null && rule.test({ auth, record: before, next: null, id });
        answer = readableBefore ? (event.op === 'delete' ? 'send' : 'remove') : 'skip';
      }
      this.reads.set(key, answer);
    }
    return answer;
  }

  /**
   * The hidden fields for this subscriber and a key naming that view ('' when nothing is hidden), so a
   * frame per distinct view is built once.
   */
  view(principal: Principal): { key: string; paths: string[] } {
    const hide = this.collection.rules?.hide;
    if (!hide || hide.length === 0 || bypassesRules(principal)) return NO_VIEW;
    const event = this.event;
    const data = event.data ?? null;
    if (data === null) return NO_VIEW;
    const groups = hide.map(({ rule }) => groupKey(rule, principal)).join('|');
    let paths = this.hidden.get(groups);
    if (!paths) {
      const auth = authVars(principal);
      const vars = { auth, record: data, next: null, id: event.id ?? '' };
      paths = hide.filter(({ rule }) => rule.test(vars)).map(({ path }) => path);
      this.hidden.set(groups, paths);
    }
    return { key: paths.join('\u0000'), paths };
  }
}

/** The event as a subscriber sees it: hidden fields removed from `data` and `previous`. */
export function eventWithout(event: LogEvent, paths: readonly string[]): LogEvent {
  if (paths.length === 0) return event;
  const out: LogEvent = { ...event, data: withoutFields(event.data, paths) };
  if (event.previous) {
    const previous: Record<string, unknown> = {};
    for (const [path, value] of Object.entries(event.previous)) {
      if (!paths.some((p) => path === p || path.startsWith(`${p}.`))) previous[path] = value;
    }
    if (Object.keys(previous).length > 0) out.previous = previous;
    else delete out.previous;
  }
  return out;
}

/** The removal a subscriber gets when a record leaves what it may read. */
export function removalOf(event: LogEvent): LogEvent {
  const { previous: _previous, ...rest } = event;
  return { ...rest, op: 'delete', data: null };
}
