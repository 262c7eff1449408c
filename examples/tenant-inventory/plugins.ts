/**
 * Server-side plugins of the inventory example, registered in code when the server starts
 * (`startServer(config, { resolvers, middleware, projections })`): a custom conflict resolver, a
 * middleware with both hooks, and a projection. docs/conflicts.md quotes this file; the test suites
 * run every part of it.
 */
import type { ConflictResolver, Middleware, Projection } from '@syncbridge/server';
import { SyncError } from '@syncbridge/server';

/**
 * A custom resolver (`strategy: custom`, `resolver: counts_as_deltas`): two devices that each set an
 * absolute count from the same base version both count. Each numeric field becomes
 * current + (proposed - base); any other field the writer changed takes the writer's value.
 */
export const countsAsDeltas: ConflictResolver = ({ current, base, proposed }) => {
  if (base === null) return { kind: 'manual', reason: 'the base version is no longer kept' };
  if (proposed === null) return { kind: 'reject', reason: 'a counted record cannot be deleted offline' };
  const data: Record<string, unknown> = { ...current.data };
  for (const [field, value] of Object.entries(proposed)) {
    const before = base[field];
    const now = data[field];
    if (typeof value === 'number' && typeof before === 'number' && typeof now === 'number') {
      data[field] = now + (value - before);
    } else if (JSON.stringify(value) !== JSON.stringify(before)) {
      data[field] = value;
    }
  }
  return { kind: 'merged', data };
};

/** Middleware: refuses a stock movement (an `increment` of `qty`) that would take stock below zero. */
export const noNegativeStock: Middleware = {
  beforeMutation({ mutation, current }) {
    if (mutation.collection !== 'stock_levels' || mutation.op !== 'increment') return undefined;
    const onHand = Number(current?.data.qty ?? 0);
    if (onHand + Number(mutation.data?.qty ?? 0) < 0) {
      throw new SyncError('BAD_REQUEST', `only ${onHand} in stock`);
    }
    return undefined;
  },
};

export interface LowStockAlert {
  tenant: string;
  id: string;
  qty: number;
  seq: number;
}

/** Middleware (after commit): reports every stock level that a committed change took below `threshold`. */
export function lowStockAlerts(threshold: number, alert: (a: LowStockAlert) => void): Middleware {
  return {
    afterCommit(tenant, events) {
      for (const e of events) {
        if (e.kind !== 'record' || e.collection !== 'stock_levels' || e.op === 'delete') continue;
        const qty = Number(e.data?.qty ?? 0);
        if (qty < threshold) alert({ tenant, id: e.id!, qty, seq: e.seq });
      }
    },
  };
}

/** `{ [sku]: { [locationId]: qty } }`, per tenant. */
export type StockByProduct = Record<string, Record<string, number>>;

/**
 * A projection: stock per product and location, folded from the log in seq order, served at
 * GET /v1/projections/stock_by_product. Rebuilt from the log after a restart.
 */
export const stockByProduct: Projection<StockByProduct> = {
  name: 'stock_by_product',
  initial: () => ({}),
  apply(state, event) {
    if (event.kind !== 'record' || event.collection !== 'stock_levels') return state;
    const sku = String(event.data?.sku ?? event.id);
    const location = String(event.data?.locationId ?? 'unknown');
    const qty = event.op === 'delete' ? 0 : Number(event.data?.qty ?? 0);
    return { ...state, [sku]: { ...state[sku], [location]: qty } };
  },
};
