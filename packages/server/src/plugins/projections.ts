/**
 * Runs registered projections per tenant. A tenant's state is built from the log the first time it is
 * read, then kept current from committed events. Events are applied strictly in seq order: when one
 * arrives past a gap (it was committed while the state was being built), the missing ones are read from
 * the store first, so the view is always the fold of a prefix of the log.
 *
 * A node hears only its own commits; other nodes' commits reach it through the shared log. So every read
 * first folds in what the store holds past the view (one indexed query, empty when nothing is new): a
 * projection read on any node reflects every event committed before the read, on any node.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import { SyncError } from '../core/errors.ts';
import type { Store } from '../store/types.ts';
import type { Projection } from './types.ts';

interface TenantView {
  state: unknown;
  seq: number;
  /** Serializes builds and catch-ups of this view. */
  busy: Promise<void>;
}

const PAGE = 1000;

export class ProjectionRunner {
  private readonly projections = new Map<string, Projection>();
  private readonly views = new Map<string, TenantView>();

  constructor(
    private readonly store: Store,
    projections: readonly Projection[],
    private readonly logger: Logger,
  ) {
    for (const p of projections) {
      if (this.projections.has(p.name)) throw new Error(`projection ${p.name} is registered twice`);
      this.projections.set(p.name, p as Projection);
    }
  }

  get names(): string[] {
    return [...this.projections.keys()];
  }

  /** Applies committed events to the views already built for this tenant. */
  onCommit(tenant: string, events: LogEvent[]): void {
    for (const name of this.projections.keys()) {
      const view = this.views.get(`${name}\u0000${tenant}`);
      if (view) this.enqueue(view, () => this.advance(name, tenant, view, events));
    }
  }

  /** The projection's state for the tenant, and the seq it reflects. */
  /** Whether the projection says its state shows nothing access rules protect (undefined: no such one). */
  isPublic(name: string): boolean | undefined {
    const projection = this.projections.get(name);
    return projection && projection.public === true;
  }

  async read(name: string, tenant: string): Promise<{ state: unknown; seq: number }> {
    const projection = this.projections.get(name);
    if (!projection) throw new SyncError('NOT_FOUND', `no projection ${name}`);
    const key = `${name}\u0000${tenant}`;
    let view = this.views.get(key);
    if (!view) {
      view = { state: projection.initial(), seq: 0, busy: Promise.resolve() };
      this.views.set(key, view);
    }
    const current = view;
    this.enqueue(current, () => this.catchUp(projection, tenant, current));
    await view.busy;
    return { state: view.state, seq: view.seq };
  }

  private enqueue(view: TenantView, step: () => Promise<void>): void {
    view.busy = view.busy.then(step).catch((err: unknown) => this.logger.error({ err }, 'projection failed'));
  }

  private async advance(name: string, tenant: string, view: TenantView, events: LogEvent[]): Promise<void> {
    const projection = this.projections.get(name)!;
    for (const event of events) {
      if (event.seq <= view.seq) continue;
      if (event.seq > view.seq + 1) await this.catchUp(projection, tenant, view, event.seq - 1);
      if (event.seq !== view.seq + 1) continue;
      view.state = projection.apply(view.state, event);
      view.seq = event.seq;
    }
  }

  private async catchUp(
    projection: Projection,
    tenant: string,
    view: TenantView,
    upTo = Infinity,
  ): Promise<void> {
    for (;;) {
      const page = await this.store.readEvents(tenant, { afterSeq: view.seq, limit: PAGE });
      for (const event of page) {
        if (event.seq > upTo) return;
        view.state = projection.apply(view.state, event);
        view.seq = event.seq;
      }
      if (page.length < PAGE) return;
    }
  }
}
