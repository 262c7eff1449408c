/**
 * The client's view of the server's manual conflict queue. Conflicts reach it as `conflict` frames (the
 * server pushes one to the writer's connections when it stores a conflict, when a stale resolve shows a
 * newer server side, and when someone resolves it) or, for a `conflict` result whose frame this client
 * never saw (the write was answered after a reconnect), fetched over REST. Each state of a conflict is
 * reported once: opened (again with every new server version) and resolved.
 */
import type { Conflict, Resolution } from '@syncbridge/protocol';

/** What a conflict handler may answer: resolve it this way (and with this data, for `merge`). */
export interface ConflictDecision {
  resolution: Resolution;
  /** The merged record, for `merge`. */
  data?: Record<string, unknown>;
}

/**
 * Called for every open conflict (of the collection given, if any). Return a decision to have the client
 * resolve the conflict with it, or nothing to leave it open (for a person to decide, say).
 */
export type ConflictHandler = (conflict: Conflict) => MaybeDecision | Promise<MaybeDecision>;

/** A decision, or nothing (a handler that decides nothing may simply return). */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers written as `(c) => { … }` return void
type MaybeDecision = ConflictDecision | undefined | void;

export interface ConflictTrackerHooks {
  opened(conflict: Conflict): void;
  resolved(conflict: Conflict): void;
}

export class ConflictTracker {
  private readonly open = new Map<string, Conflict>();
  private readonly known = new Set<string>();
  private readonly resolvedIds = new Set<string>();
  private readonly reported = new Set<string>();

  constructor(private readonly hooks: ConflictTrackerHooks) {}

  /** Takes a conflict as the server describes it now; reports it when its state is new to the client. */
  observe(conflict: Conflict): void {
    this.known.add(conflict.id);
    if (this.resolvedIds.has(conflict.id)) return; // an older description arriving late
    const key = `${conflict.id}\u0000${conflict.status}\u0000${conflict.serverVersion}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    if (conflict.status === 'open') {
      this.open.set(conflict.id, conflict);
      this.hooks.opened(conflict);
    } else {
      this.resolvedIds.add(conflict.id);
      this.open.delete(conflict.id);
      this.hooks.resolved(conflict);
    }
  }

  /** True once the client has a description of this conflict (in any state). */
  knows(id: string): boolean {
    return this.known.has(id);
  }

  /** The open conflicts this client knows of, oldest first. */
  list(): Conflict[] {
    return [...this.open.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  }

  get(id: string): Conflict | undefined {
    return this.open.get(id);
  }
}
