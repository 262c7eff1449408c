/**
 * Server configuration: defaults, then an optional YAML/JSON file (`--config` or SYNCBRIDGE_CONFIG),
 * then SYNCBRIDGE_* environment variables. Everything is validated at start; each wrong value gets its
 * own message naming where it came from, and the server refuses to start.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { type Static, Type } from '@sinclair/typebox';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { CollectionSettings } from '@syncbridge/protocol';
import { ConnectorsSection, connectorConfigProblems } from '../connectors/config.ts';
import { DEFAULT_JSON_LIMITS, MAX_CONFIGURABLE_DEPTH } from '../core/json-limits.ts';
import { webhookConfigProblems } from '../webhooks/config.ts';
import { InboundSourceSchema } from '../webhooks/inbound.ts';

const Bucket = Type.Object(
  { ratePerSec: Type.Number({ exclusiveMinimum: 0 }), burst: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
const RateLimits = Type.Object(
  { user: Type.Optional(Bucket), tenant: Type.Optional(Bucket) },
  { additionalProperties: false },
);

const SECRETS_KEY_PATTERN = '^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$';

/** Settings whose values are never echoed back in an error message. */
const SECRET_SETTINGS = new Set([
  'jwtSecret',
  'adminKey',
  'secretsKey',
  'secretsKeysPrevious',
  'connectorEnv',
  'metricsToken',
]);

export const ServerConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    host: Type.String({ minLength: 1 }),
    dataDir: Type.String({ minLength: 1 }),
    databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    databaseSchema: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$' })),
    busUrl: Type.Optional(Type.String({ pattern: '^(redis|nats|memory|postgres|postgresql)://' })),
    jwtSecret: Type.Optional(Type.String({ minLength: 32 })),
    jwtPublicKey: Type.Optional(Type.String({ minLength: 1 })),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    jwtIssuer: Type.Optional(Type.String({ minLength: 1 })),
    jwtAudience: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Where an outside issuer's token keeps the claims access rules read as `auth.claims`: a claim name
     * (`https://example.com/claims`) or a dotted path (`app_metadata.syncbridge`). Default `claims`.
     */
    jwtClaimsPath: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    adminKey: Type.Optional(Type.String({ minLength: 16 })),
    /** Seals webhook secrets at rest: 32 bytes as 64 hex digits or base64 (store/secret-box.ts). */
    secretsKey: Type.Optional(Type.String({ pattern: SECRETS_KEY_PATTERN })),
    /** Earlier secrets keys, still used to open values they sealed (key rotation). */
    secretsKeysPrevious: Type.Array(Type.String({ pattern: SECRETS_KEY_PATTERN })),
    webhookAllowPrivate: Type.Array(Type.String()),
    webhookRetrySchedule: Type.String({ minLength: 1 }),
    webhookTimeoutMs: Type.Integer({ minimum: 100, maximum: 300_000 }),
    webhookDisableAfterFailures: Type.Integer({ minimum: 0 }),
    webhookConcurrency: Type.Integer({ minimum: 1, maximum: 256 }),
    webhookPollMs: Type.Integer({ minimum: 50 }),
    webhookLeaseMs: Type.Integer({ minimum: 1000 }),
    inbound: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.\\-]{1,64}$' }), InboundSourceSchema),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
    sqliteSynchronous: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')]),
    /** SQLite log commits on a thread of their own (`on`) or on the event loop (`off`). */
    sqliteCommitThread: Type.Union([Type.Literal('on'), Type.Literal('off')]),
    maxFrameBytes: Type.Integer({ minimum: 1024 }),
    /** Most levels of nesting in stored JSON (record data, event payloads...); see core/json-limits.ts. */
    maxJsonDepth: Type.Integer({ minimum: 2, maximum: MAX_CONFIGURABLE_DEPTH }),
    /** Most bytes of JSON text in one record's data, event payload or resolution data. */
    maxJsonBytes: Type.Integer({ minimum: 1024 }),
    /** Open WebSocket connections (and upgrades in progress) this node accepts; more get HTTP 503. */
    maxConnections: Type.Integer({ minimum: 1 }),
    /** Time a client has to send a complete HTTP request head (upgrades included). */
    headersTimeoutMs: Type.Integer({ minimum: 100 }),
    /** Time a client has to send a whole HTTP request, head and body (a body sent a byte at a time). */
    requestTimeoutMs: Type.Integer({ minimum: 100 }),
    /** Time from a complete upgrade request to an open WebSocket (token checks included). */
    upgradeTimeoutMs: Type.Integer({ minimum: 100 }),
    /** Frames refused RATE_LIMITED within 10 s after which a connection is closed (4008). */
    floodCloseAfter: Type.Integer({ minimum: 1 }),
    /** Bearer token GET /metrics needs before it shows tenant-labelled series (see docs/metrics.md). */
    metricsToken: Type.Optional(Type.String({ minLength: 16 })),
    maxBufferedBytes: Type.Integer({ minimum: 65536 }),
    heartbeatMs: Type.Integer({ minimum: 100 }),
    idleTimeoutMs: Type.Integer({ minimum: 1000 }),
    helloTimeoutMs: Type.Integer({ minimum: 100 }),
    allowedOrigins: Type.Array(Type.String()),
    shutdownTimeoutMs: Type.Integer({ minimum: 0 }),
    hlcMaxDriftMs: Type.Integer({ minimum: 0 }),
    retentionIntervalMs: Type.Integer({ minimum: 0 }),
    busResyncMs: Type.Integer({ minimum: 100 }),
    /** How long a start retries an unreachable database or bus before it gives up (startup/reach.ts). */
    connectRetryMs: Type.Integer({ minimum: 0, maximum: 3_600_000 }),
    rateLimits: Type.Object(
      {
        user: Bucket,
        tenant: Bucket,
        maxConnectionsPerUser: Type.Integer({ minimum: 1 }),
        /** Per-tenant overrides of the user and tenant buckets. */
        tenants: Type.Record(Type.String(), RateLimits),
      },
      { additionalProperties: false },
    ),
    resultRetentionDays: Type.Number({ exclusiveMinimum: 0 }),
    /** How long finished and idle rows are kept (days, 0: forever); see log/retention.ts. */
    retention: Type.Object(
      {
        deliveriesDays: Type.Number({ minimum: 0 }),
        deadLettersDays: Type.Number({ minimum: 0 }),
        resolvedConflictsDays: Type.Number({ minimum: 0 }),
        devicesUnseenDays: Type.Number({ minimum: 0 }),
        /** Registering one more evicts the user's least recently seen device (devices/registry.ts). */
        maxDevicesPerUser: Type.Integer({ minimum: 1 }),
        batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
      },
      { additionalProperties: false },
    ),
    /** Compaction of superseded record versions to deltas and keyframes (log/history-compaction.ts). */
    historyCompaction: Type.Object(
      {
        intervalMs: Type.Integer({ minimum: 0 }),
        afterMs: Type.Integer({ minimum: 0 }),
        batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
      },
      { additionalProperties: false },
    ),
    nodeId: Type.String({ minLength: 1, maxLength: 40, pattern: '^[A-Za-z0-9_.:-]+$' }),
    collections: Type.Record(
      Type.String({ pattern: '^(?!\\.{1,2}$)[A-Za-z0-9_.\\-]{1,128}$' }),
      CollectionSettings,
    ),
    /** Upstream feeds and scheduled pulls (see docs/connectors.md). */
    connectors: ConnectorsSection,
    /**
     * The values of the variables `connectors.env` lists, read from the environment at start (never from
     * the file): all that config-file connectors can read as `{{env.NAME}}`.
     */
    connectorEnv: Type.Record(Type.String(), Type.String()),
  },
  { additionalProperties: false },
);
export type ServerConfig = Static<typeof ServerConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** A node id unique per process on this host (HLC tie-breaks and bus echo suppression rely on it). */
function defaultNodeId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 24) || 'node';
  return `${host}-${process.pid}`;
}

export function defaultConfig(): ServerConfig {
  return {
    port: 4025,
    host: '127.0.0.1',
    dataDir: './data',
    webhookAllowPrivate: [],
    secretsKeysPrevious: [],
    webhookRetrySchedule: 'default',
    webhookTimeoutMs: 10_000,
    webhookDisableAfterFailures: 100,
    webhookConcurrency: 10,
    webhookPollMs: 1_000,
    webhookLeaseMs: 30_000,
    inbound: {},
    logLevel: 'info',
    sqliteSynchronous: 'FULL',
    // Off until it measures faster: on a shared 2-core machine it acknowledged fewer writes (docs/benchmarks.md).
    sqliteCommitThread: 'off',
    maxFrameBytes: 1024 * 1024,
    maxJsonDepth: DEFAULT_JSON_LIMITS.maxDepth,
    maxJsonBytes: DEFAULT_JSON_LIMITS.maxBytes,
    maxConnections: 20_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    upgradeTimeoutMs: 10_000,
    floodCloseAfter: 1_000,
    maxBufferedBytes: 8 * 1024 * 1024,
    heartbeatMs: 25_000,
    idleTimeoutMs: 60_000,
    helloTimeoutMs: 5_000,
    allowedOrigins: [],
    shutdownTimeoutMs: 10_000,
    hlcMaxDriftMs: 60_000,
    retentionIntervalMs: 600_000,
    busResyncMs: 2_000,
    connectRetryMs: 10_000,
    rateLimits: {
      user: { ratePerSec: 5_000, burst: 10_000 },
      tenant: { ratePerSec: 100_000, burst: 200_000 },
      maxConnectionsPerUser: 100,
      tenants: {},
    },
    resultRetentionDays: 30,
    retention: {
      deliveriesDays: 30,
      deadLettersDays: 90,
      resolvedConflictsDays: 90,
      devicesUnseenDays: 180,
      maxDevicesPerUser: 50,
      batchSize: 1_000,
    },
    historyCompaction: { intervalMs: 60_000, afterMs: 600_000, batchSize: 500 },
    nodeId: defaultNodeId(),
    collections: {},
    connectors: {},
    connectorEnv: {},
  };
}

type Kind = 'int' | 'string' | 'list';
const ENV: Record<string, [keyof ServerConfig, Kind]> = {
  SYNCBRIDGE_PORT: ['port', 'int'],
  SYNCBRIDGE_HOST: ['host', 'string'],
  SYNCBRIDGE_DATA_DIR: ['dataDir', 'string'],
  SYNCBRIDGE_DATABASE_URL: ['databaseUrl', 'string'],
  SYNCBRIDGE_DATABASE_SCHEMA: ['databaseSchema', 'string'],
  SYNCBRIDGE_BUS_URL: ['busUrl', 'string'],
  SYNCBRIDGE_JWT_SECRET: ['jwtSecret', 'string'],
  SYNCBRIDGE_JWT_PUBLIC_KEY: ['jwtPublicKey', 'string'],
  SYNCBRIDGE_JWKS_URL: ['jwksUrl', 'string'],
  SYNCBRIDGE_JWT_ISSUER: ['jwtIssuer', 'string'],
  SYNCBRIDGE_JWT_AUDIENCE: ['jwtAudience', 'string'],
  SYNCBRIDGE_JWT_CLAIMS_PATH: ['jwtClaimsPath', 'string'],
  SYNCBRIDGE_ADMIN_KEY: ['adminKey', 'string'],
  SYNCBRIDGE_SECRETS_KEY: ['secretsKey', 'string'],
  SYNCBRIDGE_SECRETS_KEYS_PREVIOUS: ['secretsKeysPrevious', 'list'],
  SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: ['webhookAllowPrivate', 'list'],
  SYNCBRIDGE_WEBHOOK_RETRY_SCHEDULE: ['webhookRetrySchedule', 'string'],
  SYNCBRIDGE_WEBHOOK_TIMEOUT_MS: ['webhookTimeoutMs', 'int'],
  SYNCBRIDGE_WEBHOOK_DISABLE_AFTER_FAILURES: ['webhookDisableAfterFailures', 'int'],
  SYNCBRIDGE_WEBHOOK_CONCURRENCY: ['webhookConcurrency', 'int'],
  SYNCBRIDGE_WEBHOOK_POLL_MS: ['webhookPollMs', 'int'],
  SYNCBRIDGE_WEBHOOK_LEASE_MS: ['webhookLeaseMs', 'int'],
  SYNCBRIDGE_LOG_LEVEL: ['logLevel', 'string'],
  SYNCBRIDGE_SQLITE_SYNCHRONOUS: ['sqliteSynchronous', 'string'],
  SYNCBRIDGE_SQLITE_COMMIT_THREAD: ['sqliteCommitThread', 'string'],
  SYNCBRIDGE_MAX_FRAME_BYTES: ['maxFrameBytes', 'int'],
  SYNCBRIDGE_MAX_JSON_DEPTH: ['maxJsonDepth', 'int'],
  SYNCBRIDGE_MAX_JSON_BYTES: ['maxJsonBytes', 'int'],
  SYNCBRIDGE_MAX_CONNECTIONS: ['maxConnections', 'int'],
  SYNCBRIDGE_HEADERS_TIMEOUT_MS: ['headersTimeoutMs', 'int'],
  SYNCBRIDGE_REQUEST_TIMEOUT_MS: ['requestTimeoutMs', 'int'],
  SYNCBRIDGE_UPGRADE_TIMEOUT_MS: ['upgradeTimeoutMs', 'int'],
  SYNCBRIDGE_FLOOD_CLOSE_AFTER: ['floodCloseAfter', 'int'],
  SYNCBRIDGE_METRICS_TOKEN: ['metricsToken', 'string'],
  SYNCBRIDGE_MAX_BUFFERED_BYTES: ['maxBufferedBytes', 'int'],
  SYNCBRIDGE_HEARTBEAT_MS: ['heartbeatMs', 'int'],
  SYNCBRIDGE_IDLE_TIMEOUT_MS: ['idleTimeoutMs', 'int'],
  SYNCBRIDGE_HELLO_TIMEOUT_MS: ['helloTimeoutMs', 'int'],
  SYNCBRIDGE_ALLOWED_ORIGINS: ['allowedOrigins', 'list'],
  SYNCBRIDGE_SHUTDOWN_TIMEOUT_MS: ['shutdownTimeoutMs', 'int'],
  SYNCBRIDGE_HLC_MAX_DRIFT_MS: ['hlcMaxDriftMs', 'int'],
  SYNCBRIDGE_RETENTION_INTERVAL_MS: ['retentionIntervalMs', 'int'],
  SYNCBRIDGE_BUS_RESYNC_MS: ['busResyncMs', 'int'],
  SYNCBRIDGE_CONNECT_RETRY_MS: ['connectRetryMs', 'int'],
  SYNCBRIDGE_RESULT_RETENTION_DAYS: ['resultRetentionDays', 'int'],
  SYNCBRIDGE_NODE_ID: ['nodeId', 'string'],
};

/** Where each key's value came from, for error messages. */
type Origins = Partial<Record<string, string>>;

// The YAML parser is loaded only for a YAML config file: most starts read none, and it is a large module.
const load = createRequire(import.meta.url);
function parseYaml(text: string): unknown {
  return (load('yaml') as typeof import('yaml')).parse(text);
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${path}: ${(err as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([
      `config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    ]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([`config file ${path} must hold an object of settings`]);
  }
  return parsed as Record<string, unknown>;
}

/** A plain object (from YAML or JSON), not an array or null. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `given` laid over `base`: objects are merged key by key at every depth, so a section given in part
 * keeps the defaults of the fields it leaves out; anything else (numbers, strings, arrays) replaces.
 */
function withDefaults(base: unknown, given: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(given)) return given;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(given)) out[key] = withDefaults(base[key], value);
  return out;
}

/** A per-tenant rate-limit bucket given in part takes the missing fields from the server-wide bucket. */
function fillTenantBuckets(merged: Record<string, unknown>): void {
  const limits = merged.rateLimits;
  if (!isPlainObject(limits) || !isPlainObject(limits.tenants)) return;
  for (const override of Object.values(limits.tenants)) {
    if (!isPlainObject(override)) continue;
    for (const bucket of ['user', 'tenant'] as const) {
      if (isPlainObject(override[bucket]) && isPlainObject(limits[bucket]))
        override[bucket] = withDefaults(limits[bucket], override[bucket]);
    }
  }
}

/** The literal values a union schema allows, or null when it is not a union of literals. */
function literalChoices(schema: unknown): string[] | null {
  const anyOf = isPlainObject(schema) ? schema.anyOf : undefined;
  if (!Array.isArray(anyOf) || anyOf.length === 0) return null;
  const values: string[] = [];
  for (const member of anyOf) {
    if (!isPlainObject(member) || !('const' in member)) return null;
    values.push(String(member.const));
  }
  return values;
}

/** One line of the problems of a setting: what is wrong with it, in words an operator reads. */
function describeError(error: ValueError): string {
  const choices = literalChoices(error.schema);
  if (choices) return `must be one of ${choices.join(', ')}`;
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  return error.message;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  file?: string;
  overrides?: Partial<ServerConfig>;
}

export function loadConfig(options: LoadConfigOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  const merged: Record<string, unknown> = { ...defaultConfig() };
  const origins: Origins = {};
  const problems: string[] = [];

  const file = options.file ?? env.SYNCBRIDGE_CONFIG;
  if (file) {
    for (const [key, value] of Object.entries(readFile(file))) {
      merged[key] = withDefaults(merged[key], value);
      origins[key] = `${key} in ${file}`;
    }
  }
  for (const [name, [key, kind]] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    origins[key] = name;
    if (kind === 'int') {
      if (!/^-?\d+$/.test(raw.trim())) {
        problems.push(`${name}="${raw}" must be a whole number`);
        continue;
      }
      merged[key] = Number(raw);
    } else if (kind === 'list') {
      merged[key] = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    } else merged[key] = raw;
  }
  // Only the variables the operator lists are read for connectors; the file cannot set their values.
  const listed = (merged.connectors as { env?: unknown } | undefined)?.env;
  merged.connectorEnv = Object.fromEntries(
    (Array.isArray(listed) ? listed : [])
      .filter((name): name is string => typeof name === 'string' && typeof env[name] === 'string')
      .map((name) => [name, env[name] as string]),
  );
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    merged[key] = withDefaults(merged[key], value);
  }
  fillTenantBuckets(merged);

  for (const key of Object.keys(merged)) {
    if (!(key in ServerConfigSchema.properties))
      problems.push(`${origins[key] ?? key}: unknown setting "${key}"`);
  }
  // Validate even when problems were found above, so every wrong value is reported in one go;
  // unknown keys were reported already. A value can fail several checks (missing, then not a number):
  // the first one per path is its problem.
  const seen = new Set<string>();
  for (const error of Value.Errors(ServerConfigSchema, merged)) {
    const key = error.path.split('/')[1] ?? '';
    if (!(key in ServerConfigSchema.properties) || seen.has(error.path)) continue;
    seen.add(error.path);
    const where = origins[key] ?? key;
    const got =
      error.value === undefined
        ? ''
        : SECRET_SETTINGS.has(key)
          ? ' (the value is not shown)'
          : ` (got ${JSON.stringify(error.value)})`;
    problems.push(
      `${where}${error.path.split('/').length > 2 ? ` (${error.path})` : ''}: ${describeError(error)}${got}`,
    );
  }
  if (problems.length === 0) problems.push(...webhookConfigProblems(merged as ServerConfig));
  if (problems.length === 0) {
    const { connectors, maxBufferedBytes, connectorEnv } = merged as ServerConfig;
    problems.push(...connectorConfigProblems(connectors, maxBufferedBytes, connectorEnv));
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return merged as ServerConfig;
}
