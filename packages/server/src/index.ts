/**
 * @syncbridge/server: embed the server in a Node program.
 *
 * @example
 * ```ts
 * import { loadConfig, startServer } from '@syncbridge/server';
 * const server = await startServer(loadConfig({ overrides: { port: 0 } }));
 * console.log(server.url);
 * await server.close();
 * ```
 */
export { ConfigError, loadConfig, type ServerConfig } from './config/config.ts';
export {
  type Connector,
  type ConnectorContext,
  type ConnectorFactory,
  type ConnectorHealth,
  type ConnectorSpec,
  ConnectorSpecError,
  type ConnectorState,
  type DepthInput,
  type FeedControl,
  HttpPullProvider,
  ProviderError,
  PullConnector,
  type PullProvider,
  type Tick,
  type TickInput,
  type TriggerRequest,
  type TriggerResult,
  WsFeedConnector,
  type WsFeedHooks,
} from './connectors/index.ts';
export { SyncError } from './core/errors.ts';
export type { ConflictDecision, ConflictInput, ConflictResolver } from './core/strategies.ts';
export type { BeforeMutationContext, Middleware, Projection } from './plugins/types.ts';
export { type StartOptions, type SyncbridgeServer, startServer } from './server.ts';
export type { Store } from './store/types.ts';
