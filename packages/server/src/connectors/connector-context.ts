/**
 * What a running connector is handed: its tenant's write path as the principal `connector:<name>`, its
 * records, its topics (relayed to the other nodes), its own state, tick persistence; and what its
 * definition's templates may read (template-policy.ts decides which names). It must never give a
 * connector another tenant's data or an environment variable its origin may not read.
 */
import type { Principal } from '../auth/principal.ts';
import type { ConnectorManagerDeps } from './manager-deps.ts';
import { envNames, secretNames } from './template-policy.ts';
import type { Connector, ConnectorBuildContext, ConnectorContext, ConnectorSpec } from './types.ts';

const LIST_PAGE = 1000;

export type ContextDeps = Pick<
  ConnectorManagerDeps,
  'writer' | 'records' | 'store' | 'topics' | 'ticks' | 'relay' | 'logger'
>;

/**
 * What a definition's templates may read, asked for at each connect or request: the listed
 * environment variables it names (config file only) and its tenant's secrets it names.
 */
export function templateContext(
  spec: ConnectorSpec,
  origin: 'config' | 'api',
  deps: Pick<ConnectorManagerDeps, 'env' | 'settings' | 'secrets'>,
): ConnectorBuildContext {
  const env: Record<string, string> = {};
  if (origin === 'config') {
    for (const name of envNames(spec)) {
      const value = deps.env[name];
      if (value !== undefined && deps.settings.env.includes(name)) env[`env.${name}`] = value;
    }
  }
  const secrets = secretNames(spec);
  const { tenant } = spec;
  return {
    variables: async () => ({ ...env, ...(await deps.secrets.variables(tenant, secrets)) }),
  };
}

export function connectorContext(connector: Connector, deps: ContextDeps): ConnectorContext {
  const { tenant, name } = connector;
  const principal: Principal = {
    tenant,
    user: `connector:${name}`,
    roles: ['connector'],
    via: 'tenant_key',
  };
  const { writer, records, store, topics, ticks, relay } = deps;
  return {
    tenant,
    name,
    logger: deps.logger.child({ tenant, connector: name }),
    mutate: (mutations) => writer.mutate(principal, mutations),
    publish: (event, options) => writer.publish(principal, event, options),
    groups: (groups) => writer.groups(principal, groups),
    records: {
      get: (collection, id) => records.getRecord(tenant, collection, id),
      list: async (collection, filter = {}) => {
        const out = [];
        let after: string | undefined;
        for (;;) {
          const page = await records.listRecords(tenant, collection, {
            limit: LIST_PAGE,
            after,
            filter,
            includeDeleted: false,
          });
          out.push(...page);
          if (page.length < LIST_PAGE) return out;
          after = page[page.length - 1]!.id;
        }
      },
    },
    topics: {
      declare: async (topic) => topics.declare(tenant, topic, await store.lastTickSeq(tenant, topic)),
      tick: (topic, input) => {
        const tick = topics.tick(tenant, topic, input);
        relay?.tick(tenant, topic, tick);
        return tick;
      },
      depth: (topic, input) => {
        const depth = topics.depth(tenant, topic, input);
        relay?.depth(tenant, topic, depth);
        return depth;
      },
    },
    state: {
      get: async <T>(key: string) => (await store.getState(tenant, name, key)) as T | null,
      put: (key, value) => store.putState(tenant, name, key, value),
    },
    persistTicks: (topic, list) => ticks.add(tenant, topic, list),
  };
}
