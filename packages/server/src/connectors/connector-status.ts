/**
 * A connector as the REST API and metrics see it: its health and metrics (a failing health check is a
 * `failed` state, never a thrown error), its role on this node, its feed's topic, and its definition with
 * header values and login messages hidden. It must never show a secret of a definition.
 */

import type { TopicHub } from '../realtime/topic-hub.ts';
import type { FeedSubscriptions } from './feed-subscriptions.ts';
import type { Connector, ConnectorHealth, ConnectorSpec } from './types.ts';

export type ConnectorOrigin = 'config' | 'api' | 'code';

export interface ConnectorStatus extends ConnectorHealth {
  name: string;
  tenant: string;
  kind: string;
  origin: ConnectorOrigin;
  enabled: boolean;
  /** The topic a feed publishes to. */
  topic?: string;
  metrics: Record<string, number>;
  /** The definition, with header values and login messages hidden. */
  spec?: ConnectorSpec;
  startError?: string;
  /** leader: it runs on this node; standby: another node holds its lease, this one takes over if it stops. */
  role: 'leader' | 'standby';
  /** It can be run now (`POST /v1/connectors/{name}/trigger`); streaming kinds (ws-feed, pg-cdc) cannot. */
  triggerable: boolean;
}

export interface Entry {
  connector: Connector;
  spec: ConnectorSpec | null;
  origin: ConnectorOrigin;
  started: boolean;
  /** Its `start` (and a feed's subscriptions' load) is under way on this node. */
  starting?: boolean;
  startError?: string;
  subscriptions: FeedSubscriptions | null;
  /** This node holds the connector's lease. */
  leader: boolean;
  /** Another node holds it; its topic is declared here. */
  standingBy?: boolean;
}

/** The definition with header values and login messages hidden. */
export function redact(spec: ConnectorSpec): ConnectorSpec {
  const out: ConnectorSpec = { ...spec };
  if (out.headers && typeof out.headers === 'object') {
    out.headers = Object.fromEntries(Object.keys(out.headers as object).map((k) => [k, '***']));
  }
  if (out.authMessage !== undefined) out.authMessage = '***';
  if (out.http && typeof out.http === 'object') {
    const http = { ...(out.http as Record<string, unknown>) };
    if (http.headers && typeof http.headers === 'object') {
      http.headers = Object.fromEntries(Object.keys(http.headers as object).map((k) => [k, '***']));
    }
    out.http = http;
  }
  return out;
}

export function statusOf(entry: Entry, topics: TopicHub): ConnectorStatus {
  const { connector } = entry;
  let health: ConnectorHealth;
  let metrics: Record<string, number> = {};
  try {
    health = connector.health();
    metrics = connector.metrics?.() ?? {};
  } catch (err) {
    health = {
      state: 'failed',
      lastSuccessAt: null,
      lastError: `health check failed: ${(err as Error).message}`,
      stalenessMs: null,
      stale: false,
    };
  }
  if (entry.starting && health.state !== 'failed') {
    health = { ...health, state: 'starting' };
  } else if (!entry.started && health.state !== 'failed') {
    health = { ...health, state: entry.startError ? 'failed' : 'stopped' };
  }
  const status: ConnectorStatus = {
    name: connector.name,
    tenant: connector.tenant,
    kind: connector.kind,
    origin: entry.origin,
    enabled: entry.spec?.enabled !== false,
    ...health,
    metrics,
    role: entry.leader ? 'leader' : 'standby',
    triggerable: typeof connector.trigger === 'function',
  };
  if (connector.feed) {
    status.topic = connector.feed.topic;
    const topic = topics.stats(connector.tenant, connector.feed.topic);
    status.details = { ...status.details, subscribers: topic.subscribers, conflating: topic.conflating };
  }
  if (entry.spec) status.spec = redact(entry.spec);
  if (entry.startError) {
    status.startError = entry.startError;
    status.lastError ??= entry.startError;
  }
  return status;
}

/** Why a connector's trigger or feed routes cannot answer on this node. */
export function notRunning(entry: Entry): string {
  const { name } = entry.connector;
  return entry.standingBy && !entry.leader
    ? `connector ${name} runs on another node (this node stands by for it); ask that node`
    : `connector ${name} is not running`;
}
