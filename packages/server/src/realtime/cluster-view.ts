/**
 * The cluster view: which nodes are alive (heartbeats over the bus) and who is connected to a tenant
 * across all of them (a presence request answered by every live node). A standalone node is a
 * cluster of one and answers from its own connections without touching the bus. A peer whose heartbeat
 * shows its clock more than CLOCK_SKEW_WARN_MS away from this node's is reported through `warn`: the
 * server-clock HLCs that settle last-writer-wins would disagree between the two nodes by that much.
 */
import { randomUUID } from 'node:crypto';
import type { Bus, BusMessage } from '../bus/types.ts';
import type { ConnectionInfo } from './gateway.ts';

export interface NodeInfo {
  node: string;
  url: string;
  connections: number;
  startedAt: string;
  lastSeen: string;
  self: boolean;
}

interface Peer extends Omit<NodeInfo, 'lastSeen' | 'self'> {
  lastSeenMs: number;
}

/** A peer's clock further than this from ours (transit time included) is worth a warning. */
export const CLOCK_SKEW_WARN_MS = 1_000;

export interface LocalNode {
  node: string;
  url: () => string;
  connections: () => number;
  list: (tenant: string) => ConnectionInfo[];
  /** Told once when a peer's clock is found off by more than CLOCK_SKEW_WARN_MS, and once when it is back. */
  warn?: (message: string) => void;
}

const PRESENCE_WAIT_MS = 400;

export class ClusterView {
  private readonly peers = new Map<string, Peer>();
  private readonly skewed = new Set<string>();
  private readonly waiting = new Map<string, (node: string, connections: ConnectionInfo[]) => void>();
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly bus: Bus,
    private readonly local: LocalNode,
    private readonly heartbeatMs = 2000,
  ) {}

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Handles the cluster messages of the bus; returns false for messages that are not its own. */
  handle(message: BusMessage): boolean {
    switch (message.type) {
      case 'heartbeat': {
        const now = Date.now();
        const { sentAt, type: _type, ...peer } = message;
        this.peers.set(message.node, { ...peer, lastSeenMs: now });
        if (sentAt !== undefined) this.checkClock(message.node, sentAt - now);
        return true;
      }
      case 'presence_request':
        this.bus.publish({
          type: 'presence',
          node: this.local.node,
          requestId: message.requestId,
          connections: this.local.list(message.tenant),
        });
        return true;
      case 'presence':
        this.waiting.get(message.requestId)?.(message.node, message.connections as ConnectionInfo[]);
        return true;
      default:
        return false;
    }
  }

  private checkClock(node: string, offsetMs: number): void {
    const off = Math.abs(offsetMs) > CLOCK_SKEW_WARN_MS;
    if (off === this.skewed.has(node)) return;
    if (off) {
      this.skewed.add(node);
      this.local.warn?.(
        `node ${node}'s clock is ${Math.round(Math.abs(offsetMs))} ms ${offsetMs > 0 ? 'ahead of' : 'behind'} ` +
          `this node's (${this.local.node}): writes without a client HLC get server timestamps that disagree by ` +
          'that much between the two, so last-writer-wins may keep the earlier change; keep every node on NTP',
      );
    } else {
      this.skewed.delete(node);
      this.local.warn?.(`node ${node}'s clock agrees with this node's again`);
    }
  }

  private beat(): void {
    this.bus.publish({
      type: 'heartbeat',
      node: this.local.node,
      url: this.local.url(),
      connections: this.local.connections(),
      startedAt: this.startedAt,
      sentAt: Date.now(),
    });
  }

  /** Live nodes: this one, and peers heard from within three heartbeats. */
  nodes(): NodeInfo[] {
    const cutoff = Date.now() - this.heartbeatMs * 3;
    const out: NodeInfo[] = [
      {
        node: this.local.node,
        url: this.local.url(),
        connections: this.local.connections(),
        startedAt: this.startedAt,
        lastSeen: new Date().toISOString(),
        self: true,
      },
    ];
    for (const peer of this.peers.values()) {
      if (peer.lastSeenMs < cutoff) continue;
      const { lastSeenMs, ...info } = peer;
      out.push({ ...info, lastSeen: new Date(lastSeenMs).toISOString(), self: false });
    }
    return out;
  }

  /** The tenant's connections on every live node (each tagged with its node). */
  async connections(tenant: string): Promise<Array<ConnectionInfo & { node: string }>> {
    const own = this.local.list(tenant).map((c) => ({ ...c, node: this.local.node }));
    const peers = this.nodes().filter((n) => !n.self);
    if (peers.length === 0) return own;
    const requestId = randomUUID();
    const answers = new Map<string, ConnectionInfo[]>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, PRESENCE_WAIT_MS);
      this.waiting.set(requestId, (node, connections) => {
        answers.set(node, connections);
        if (peers.every((p) => answers.has(p.node))) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.bus.publish({ type: 'presence_request', node: this.local.node, requestId, tenant });
    });
    this.waiting.delete(requestId);
    const remote = [...answers].flatMap(([node, list]) => list.map((c) => ({ ...c, node })));
    return [...own, ...remote];
  }
}
