/** What the connector manager is given by the composition root: settings, ports and collaborators. */
import type { Logger } from 'pino';
import type { LogWriter } from '../log/log-writer.ts';
import type { RecordReader } from '../log/ports.ts';
import type { TopicHub } from '../realtime/topic-hub.ts';
import type { ConnectorsSettings } from './config.ts';
import type { DefinitionNotices } from './definition-notices.ts';
import type { ConnectorLeases } from './leases.ts';
import type { ConnectorSecrets } from './secrets.ts';
import type { ConnectorStore } from './store.ts';
import type { TickWriter } from './tick-writer.ts';
import type { TopicRelay } from './topic-relay.ts';
import type { Connector, ConnectorFactory } from './types.ts';

export interface ConnectorManagerDeps {
  settings: ConnectorsSettings;
  store: ConnectorStore;
  records: RecordReader;
  writer: LogWriter;
  topics: TopicHub;
  ticks: TickWriter;
  logger: Logger;
  /** Further kinds definitions may name (StartOptions.connectorKinds). */
  kinds?: Record<string, ConnectorFactory>;
  /** Connectors built in code (StartOptions.connectors). */
  instances?: Connector[];
  /**
   * Private addresses REST-defined connectors may reach (the webhooks' allow-list): other loopback,
   * private and link-local addresses are refused, as for outbound webhooks.
   */
  allowPrivate?: readonly string[];
  /** Which node runs each connector (one node: every lease is its own). */
  leases: ConnectorLeases;
  /** How often a standing-by node tries to take free leases over, and a leader checks it still holds them. */
  leaseCheckMs: number;
  /** Sends this node's topic values to the other nodes (absent on one node). */
  relay?: TopicRelay | null;
  /** Tells the other nodes of REST definition changes, and hears theirs (absent on one node). */
  notices?: DefinitionNotices | null;
  /** The tenants' connector secrets (`{{secrets.NAME}}`). */
  secrets: ConnectorSecrets;
  /** The values of the variables `connectors.env` lists (`{{env.NAME}}` in config-file definitions). */
  env: Readonly<Record<string, string>>;
}
