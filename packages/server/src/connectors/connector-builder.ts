/**
 * Builds a connector from its definition: the definition is parsed into its kind's options (a
 * discriminated union, never cast), its templates are held to what its origin may read, and the kind's
 * factory (built-in, or one given in code) makes the connector. It must never build a definition from
 * REST whose templates name the server's environment, nor one its factory made under another name.
 */
import { SyncError } from '../core/errors.ts';
import type { CircuitRegistry } from './circuit-breaker.ts';
import { parseConnectorSpec } from './config.ts';
import { templateContext } from './connector-context.ts';
import type { ConnectorManagerDeps } from './manager-deps.ts';
import { PgCdcConnector } from './pg-cdc.ts';
import { PullConnector } from './pull.ts';
import { templatePolicyProblems } from './template-policy.ts';
import { type Connector, type ConnectorSpec, ConnectorSpecError } from './types.ts';
import { WsFeedConnector } from './ws-feed.ts';

const BUILT_IN_KINDS = ['ws-feed', 'pull', 'pg-cdc'];

export class ConnectorBuilder {
  constructor(
    private readonly deps: Pick<ConnectorManagerDeps, 'settings' | 'env' | 'secrets' | 'kinds'>,
    private readonly circuits: CircuitRegistry,
  ) {}

  /** The `connectors.env` names. */
  get allowedEnv(): ReadonlySet<string> {
    return new Set(this.deps.settings.env);
  }

  build(spec: ConnectorSpec, origin: 'config' | 'api'): Connector {
    const parsed = parseConnectorSpec(spec);
    const problems = templatePolicyProblems(spec, origin, this.allowedEnv);
    if (problems.length > 0) throw new ConnectorSpecError(problems);
    const build = templateContext(spec, origin, this.deps);
    // A kind given in code replaces a built-in one of the same name.
    const custom = this.deps.kinds?.[spec.kind];
    let connector: Connector;
    if (custom) connector = custom(spec, build);
    else if (parsed.kind === 'ws-feed') {
      connector = new WsFeedConnector(parsed.options, { variables: build.variables });
    } else if (parsed.kind === 'pull') {
      const options = parsed.options;
      connector = new PullConnector(options, {
        breaker: this.circuits.breaker(spec.tenant, options.provider ?? options.name, options.circuit),
        variables: build.variables,
      });
    } else if (parsed.kind === 'pg-cdc') {
      connector = new PgCdcConnector(parsed.options, { variables: build.variables });
    } else {
      const kinds = [...new Set([...BUILT_IN_KINDS, ...Object.keys(this.deps.kinds ?? {})])];
      throw new ConnectorSpecError([
        `${spec.name}: unknown connector kind "${spec.kind}" (kinds: ${kinds.join(', ')})`,
      ]);
    }
    if (connector.name !== spec.name || connector.tenant !== spec.tenant) {
      throw new ConnectorSpecError([
        `${spec.name}: the ${spec.kind} factory built a connector of another name or tenant`,
      ]);
    }
    return connector;
  }

  /** A REST definition of the caller's tenant, checked by building it (a bad one is BAD_REQUEST). */
  checkRest(tenant: string, name: string, spec: Record<string, unknown>): ConnectorSpec {
    if (spec.tenant !== undefined && spec.tenant !== tenant) {
      throw new SyncError('FORBIDDEN', 'a connector belongs to the tenant of the caller');
    }
    const full: ConnectorSpec = { kind: String(spec.kind), ...spec, tenant, name };
    try {
      this.build(full, 'api');
    } catch (err) {
      if (err instanceof ConnectorSpecError) {
        throw new SyncError('BAD_REQUEST', `invalid connector: ${err.message}`, { problems: err.problems });
      }
      throw err;
    }
    return full;
  }
}
