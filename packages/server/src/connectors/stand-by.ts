/**
 * A connector another node runs (that node holds its lease): this node stands by for it. A feed's topic
 * is declared here at its stored seq, and the running node is asked for its latest values once, so this
 * node's topic subscribers get them (the relay then brings the live ones).
 */
import type { Entry } from './connector-status.ts';
import type { ConnectorManagerDeps } from './manager-deps.ts';

export async function standBy(
  entry: Entry,
  deps: Pick<ConnectorManagerDeps, 'topics' | 'store' | 'relay' | 'logger'>,
): Promise<void> {
  if (entry.standingBy) return;
  entry.standingBy = true;
  const feed = entry.connector.feed;
  if (!feed) return;
  const { tenant } = entry.connector;
  try {
    deps.topics.declare(tenant, feed.topic, await deps.store.lastTickSeq(tenant, feed.topic));
  } catch (err) {
    deps.logger.warn({ err, connector: entry.connector.name }, 'could not read the topic seq');
    deps.topics.declare(tenant, feed.topic);
  }
  deps.relay?.requestLatest(tenant, feed.topic);
}
