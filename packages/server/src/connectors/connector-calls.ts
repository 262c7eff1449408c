/**
 * The REST calls that only the node running a connector can answer: "run now" (trigger) and a feed's
 * symbol subscriptions (make, list, read, end, and its symbols' state, which needs the feed's upstream
 * view). On the node holding the connector's lease they run here; on a node standing by for it they
 * are forwarded over the bus to the running node (leader-calls.ts) and its answer, status and body or
 * typed error, is this node's answer. So any node behind a load balancer answers them.
 *
 * Refusals every node can tell alike (no such connector, not triggerable, not a feed, disabled) are
 * answered here, without a round trip.
 */
import type { ConnectorCall } from '../bus/types.ts';
import { SyncError } from '../core/errors.ts';
import type { LeaderCalls } from './leader-calls.ts';
import type { ConnectorManager } from './manager.ts';

export type { ConnectorCall } from '../bus/types.ts';

/** A successful answer: the HTTP status (2xx) and body. Failures are thrown as SyncErrors. */
export interface CallAnswer {
  status: number;
  body: unknown;
}

export interface SymbolState {
  symbol: string;
  subscribed: boolean;
  active: boolean;
  ticks: number;
  lastTickAt: string | null;
  price?: number;
}

/** The statuses each call answers with when it succeeds (another node's answer is held to them). */
const STATUSES: Record<ConnectorCall['action'], readonly number[]> = {
  trigger: [200, 202],
  subscribe: [201],
  unsubscribe: [204],
  subscriptions: [200],
  subscription: [200],
  symbols: [200],
};

export class ConnectorCalls {
  constructor(
    private readonly manager: ConnectorManager,
    /** The bus side, when there are other nodes (absent on one node: every call runs here). */
    private readonly remote: LeaderCalls | null,
  ) {
    remote?.serve((tenant, name) => this.leadsHere(tenant, name), this.local.bind(this));
  }

  /** Answers a call: here when this node runs the connector (or must refuse it), else on the node that does. */
  run(tenant: string, name: string, call: ConnectorCall): Promise<CallAnswer> {
    const status = this.manager.status(tenant, name);
    const fitting = call.action === 'trigger' ? status.triggerable : status.topic !== undefined;
    if (!this.remote || status.role === 'leader' || !status.enabled || !fitting) {
      return this.local(tenant, name, call);
    }
    return this.remote.call(tenant, name, call).then((answer) => {
      if (!STATUSES[call.action].includes(answer.status)) {
        throw new SyncError('INTERNAL', `the node running connector ${name} answered HTTP ${answer.status}`);
      }
      return answer;
    });
  }

  /** Whether this node holds the connector's lease (unknown connectors: no). */
  private leadsHere(tenant: string, name: string): boolean {
    try {
      return this.manager.status(tenant, name).role === 'leader';
    } catch {
      return false;
    }
  }

  /** Performs a call on this node. */
  async local(tenant: string, name: string, call: ConnectorCall): Promise<CallAnswer> {
    const manager = this.manager;
    switch (call.action) {
      case 'trigger': {
        const { wait, action: _action, ...request } = call;
        const run = manager.trigger(tenant, name, request);
        if (wait) return { status: 200, body: await run };
        run.catch(() => undefined);
        // Refusals (unknown connector or connection) still answer as errors.
        await Promise.race([run, new Promise((r) => setImmediate(r))]);
        return { status: 202, body: { queued: true } };
      }
      case 'subscribe': {
        const { subs } = manager.subscriptions(tenant, name);
        return { status: 201, body: await subs.add(call.symbols, call.user) };
      }
      case 'unsubscribe': {
        const { subs } = manager.subscriptions(tenant, name);
        if (!(await subs.remove(call.id))) throw new SyncError('NOT_FOUND', `no subscription ${call.id}`);
        return { status: 204, body: null };
      }
      case 'subscriptions':
        return { status: 200, body: { subscriptions: manager.subscriptions(tenant, name).subs.list() } };
      case 'subscription': {
        const sub = manager.subscriptions(tenant, name).subs.get(call.id);
        if (!sub) throw new SyncError('NOT_FOUND', `no subscription ${call.id}`);
        return { status: 200, body: { ...sub, status: this.symbolStates(tenant, name, sub.symbols) } };
      }
      case 'symbols': {
        const { feed, subs } = manager.subscriptions(tenant, name);
        const all = new Set([...subs.symbols(), ...feed.activeSymbols()]);
        for (const s of manager.topics.symbols(tenant, feed.topic)) all.add(s.symbol);
        return {
          status: 200,
          body: { topic: feed.topic, symbols: this.symbolStates(tenant, name, [...all].sort()) },
        };
      }
    }
  }

  /** Each symbol's state: wanted by a subscription, active upstream, ticks seen in the topic. */
  private symbolStates(tenant: string, name: string, symbols: string[]): SymbolState[] {
    const { feed, subs } = this.manager.subscriptions(tenant, name);
    const wanted = new Set(subs.symbols());
    const active = new Set(feed.activeSymbols());
    const seen = new Map(this.manager.topics.symbols(tenant, feed.topic).map((s) => [s.symbol, s]));
    return symbols.map((symbol) => {
      const s = seen.get(symbol);
      const out: SymbolState = {
        symbol,
        subscribed: wanted.has(symbol) || active.has(symbol),
        active: active.has(symbol),
        ticks: s?.ticks ?? 0,
        lastTickAt: s?.tick ? new Date(s.tick.ts).toISOString() : null,
      };
      if (s?.tick?.price !== undefined) out.price = s.tick.price;
      return out;
    });
  }

  /** Answers every call still waiting for another node (UNAVAILABLE) and stops answering the others'. */
  close(): void {
    this.remote?.close();
  }
}
