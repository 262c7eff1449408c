/**
 * Connector settings: the config file's `connectors` section (topic and tick-persistence settings and
 * the connector definitions), and the options of the built-in kinds `ws-feed` and `pull`, validated the
 * same way whether a definition comes from the file or from `POST /v1/connectors`.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Cron } from 'croner';
import { PgCdcOptions, pgCdcProblems } from './pg-cdc-config.ts';
import { ENV_NAME_PATTERN, templatePolicyProblems } from './template-policy.ts';
import { type ConnectorSpec, ConnectorSpecError } from './types.ts';

const NAME = '^[A-Za-z0-9_.\\-]{1,128}$';
const PATH = Type.String({ minLength: 1, maxLength: 200 });

export const ConnectorSpecSchema = Type.Object(
  {
    name: Type.String({ pattern: NAME }),
    tenant: Type.String({ pattern: NAME }),
    kind: Type.String({ pattern: NAME }),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export const ConnectorsSection = Type.Object(
  {
    /** A topic subscriber with more bytes than this unsent gets conflated values (default 256 KiB). */
    conflateAboveBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
    /** Ticks kept in memory per symbol (default 1000). */
    historySize: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    /** Ticks are written every this many ms (default 500)... */
    tickFlushMs: Type.Optional(Type.Integer({ minimum: 10 })),
    /** ...or once this many wait (default 5000). */
    tickFlushRows: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Ticks kept for the store while it is unreachable; older ones are dropped (default 500000). */
    tickMaxBufferedRows: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Stored ticks older than this many days are deleted (default 7; 0 keeps them forever). */
    tickRetentionDays: Type.Optional(Type.Number({ minimum: 0 })),
    /** How often old ticks are looked for (default 600000 ms: every 10 minutes, and once at start). */
    tickPruneIntervalMs: Type.Optional(Type.Integer({ minimum: 100 })),
    /**
     * On several nodes, how often a node standing by for a connector tries to take its lease over, and
     * a running one checks it still holds it (default 2000 ms).
     */
    leaseCheckMs: Type.Optional(Type.Integer({ minimum: 50 })),
    /**
     * Environment variables that connectors of this file may read as `{{env.NAME}}` (none by default);
     * connectors defined over REST never may (they use connector secrets, `{{secrets.NAME}}`).
     */
    env: Type.Optional(Type.Array(Type.String({ pattern: ENV_NAME_PATTERN }), { uniqueItems: true })),
    instances: Type.Optional(Type.Array(ConnectorSpecSchema)),
  },
  { additionalProperties: false },
);
export type ConnectorsSection = Static<typeof ConnectorsSection>;

export interface ConnectorsSettings {
  conflateAboveBytes: number;
  historySize: number;
  tickFlushMs: number;
  tickFlushRows: number;
  tickMaxBufferedRows: number;
  tickRetentionDays: number;
  tickPruneIntervalMs: number;
  leaseCheckMs: number;
  /** The `connectors.env` names. */
  env: string[];
  instances: ConnectorSpec[];
}

/**
 * The effective connector settings. Unless set, the conflation threshold is 256 KiB or a quarter of
 * `maxBufferedBytes`, whichever is lower, so conflation always starts before the slow-consumer cut-off.
 */
export function connectorsSettings(
  section: ConnectorsSection | undefined,
  maxBufferedBytes = Number.POSITIVE_INFINITY,
): ConnectorsSettings {
  return {
    conflateAboveBytes: section?.conflateAboveBytes ?? Math.min(256 * 1024, Math.floor(maxBufferedBytes / 4)),
    historySize: section?.historySize ?? 1000,
    tickFlushMs: section?.tickFlushMs ?? 500,
    tickFlushRows: section?.tickFlushRows ?? 5000,
    tickMaxBufferedRows: section?.tickMaxBufferedRows ?? 500_000,
    tickRetentionDays: section?.tickRetentionDays ?? 7,
    tickPruneIntervalMs: section?.tickPruneIntervalMs ?? 600_000,
    leaseCheckMs: section?.leaseCheckMs ?? 2000,
    env: section?.env ?? [],
    instances: (section?.instances ?? []) as ConnectorSpec[],
  };
}

const Backoff = Type.Object(
  {
    initialMs: Type.Optional(Type.Integer({ minimum: 1 })),
    maxMs: Type.Optional(Type.Integer({ minimum: 1 })),
    factor: Type.Optional(Type.Number({ minimum: 1 })),
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

/** Which messages a rule applies to: every path must hold the given value. */
const Match = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));

const TickParse = Type.Object(
  {
    match: Type.Optional(Match),
    /** The message holds an array of items at this path (each one a tick). */
    items: Type.Optional(PATH),
    symbol: PATH,
    price: Type.Optional(PATH),
    volume: Type.Optional(PATH),
    ts: Type.Optional(PATH),
    /** How `ts` is written: ms (default), s, or iso. */
    tsUnit: Type.Optional(Type.Union([Type.Literal('ms'), Type.Literal('s'), Type.Literal('iso')])),
    /** Further fields carried in the tick's `data`, by name. */
    fields: Type.Optional(Type.Record(Type.String({ pattern: NAME }), PATH)),
  },
  { additionalProperties: false },
);

const DepthParse = Type.Object(
  {
    match: Type.Optional(Match),
    items: Type.Optional(PATH),
    symbol: PATH,
    bids: PATH,
    asks: PATH,
    ts: Type.Optional(PATH),
    tsUnit: Type.Optional(Type.Union([Type.Literal('ms'), Type.Literal('s'), Type.Literal('iso')])),
    /** Levels as objects: the paths of price and quantity in each (default: [price, qty] pairs). */
    level: Type.Optional(Type.Object({ price: PATH, qty: PATH }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export const WsFeedOptions = Type.Object(
  {
    name: Type.String({ pattern: NAME }),
    tenant: Type.String({ pattern: NAME }),
    kind: Type.Literal('ws-feed'),
    enabled: Type.Optional(Type.Boolean()),
    url: Type.String({ pattern: '^wss?://' }),
    /** The topic its ticks go to (default: the connector's name). */
    topic: Type.Optional(Type.String({ pattern: NAME })),
    /** Headers of the upgrade request (e.g. Authorization); `{{env.NAME}}` reads the environment. */
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    /** Sent first on every connection (a login message); a template. */
    authMessage: Type.Optional(Type.Unknown()),
    /** Subscribes symbols: `{{symbols}}` (the array) or `{{symbol}}` (one message each). */
    subscribeMessage: Type.Unknown(),
    unsubscribeMessage: Type.Optional(Type.Unknown()),
    /** Symbols subscribed from the start, whatever REST subscriptions exist. */
    symbols: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }))),
    /** At most this many symbols per subscribe message (`{{symbols}}` templates; default 500). */
    symbolsPerMessage: Type.Optional(Type.Integer({ minimum: 1 })),
    heartbeat: Type.Optional(
      Type.Object(
        {
          /** Ping (or send `message`) after this long without a message from upstream (default 10 s). */
          intervalMs: Type.Optional(Type.Integer({ minimum: 10 })),
          /** Reconnect after this long without any message or pong (default 30 s). */
          timeoutMs: Type.Optional(Type.Integer({ minimum: 20 })),
          /** An application-level heartbeat message instead of a WebSocket ping; a template. */
          message: Type.Optional(Type.Unknown()),
        },
        { additionalProperties: false },
      ),
    ),
    reconnect: Type.Optional(Backoff),
    parse: Type.Optional(
      Type.Object(
        {
          tick: Type.Optional(Type.Union([TickParse, Type.Array(TickParse)])),
          depth: Type.Optional(Type.Union([DepthParse, Type.Array(DepthParse)])),
        },
        { additionalProperties: false },
      ),
    ),
    /** Store ticks in batches for history queries (default true). */
    persist: Type.Optional(Type.Boolean()),
    /** Marked stale after this long without a tick while symbols are subscribed (default 60 s). */
    staleAfterMs: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type WsFeedOptions = Static<typeof WsFeedOptions>;
export type TickParse = Static<typeof TickParse>;
export type DepthParse = Static<typeof DepthParse>;

const Resource = Type.Object(
  {
    /** The collection its records go to. */
    collection: Type.String({ pattern: NAME }),
    /** The array of items in a changes or snapshot response. */
    path: PATH,
    /** The provider's id of an item (default `id`). */
    id: Type.Optional(PATH),
    /** The provider's version or update time of an item; the content's hash when absent. */
    version: Type.Optional(PATH),
    /** Ids removed since the cursor, in a changes response. */
    deletedPath: Type.Optional(PATH),
  },
  { additionalProperties: false },
);
export type PullResource = Static<typeof Resource>;

export const Priority = Type.Union([
  Type.Literal('critical'),
  Type.Literal('high'),
  Type.Literal('normal'),
  Type.Literal('low'),
]);
export type Priority = Static<typeof Priority>;

export const PullConnection = Type.Object(
  {
    id: Type.String({ pattern: NAME }),
    /** Critical connections are pulled first (default normal). */
    priority: Type.Optional(Priority),
    /** An alert is raised when its data is older than this (default: the connector's, 4 h). */
    stalenessLimitMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Values for the path templates (`{{connection}}` is the id). */
    params: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
export type PullConnection = Static<typeof PullConnection>;

export const PullOptions = Type.Object(
  {
    name: Type.String({ pattern: NAME }),
    tenant: Type.String({ pattern: NAME }),
    kind: Type.Literal('pull'),
    enabled: Type.Optional(Type.Boolean()),
    /** The provider, for its circuit breaker (shared by connectors naming the same one); default the name. */
    provider: Type.Optional(Type.String({ pattern: NAME })),
    /** Delta syncs: a cron expression (croner; 5 fields, or 6 with seconds). */
    schedule: Type.Optional(Type.String({ minLength: 1 })),
    /** Full reconciliations: a cron expression. */
    reconcileSchedule: Type.Optional(Type.String({ minLength: 1 })),
    /** Default staleness limit of its connections (default 4 h). */
    stalenessLimitMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** How often staleness is checked (default: a quarter of the smallest limit, at most 60 s). */
    staleCheckMs: Type.Optional(Type.Integer({ minimum: 10 })),
    /** Connections pulled at once (default 2). */
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** Pull every connection once at start (default true). */
    pullOnStart: Type.Optional(Type.Boolean()),
    /** Retries of a failed run: exponential backoff (default from 1 s up to 5 min). */
    retry: Type.Optional(Backoff),
    /** Pages of changes read in one run at most (default 100). */
    maxPages: Type.Optional(Type.Integer({ minimum: 1 })),
    circuit: Type.Optional(
      Type.Object(
        {
          failureThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
          openMs: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    http: Type.Object(
      {
        baseUrl: Type.String({ pattern: '^https?://' }),
        headers: Type.Optional(Type.Record(Type.String(), Type.String())),
        timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
        /** Changes since a cursor; `{{connection}}`, `{{cursor}}` (empty the first time) and params. */
        changesPath: Type.String({ minLength: 1 }),
        /** Everything the provider holds for a connection (reconciliation). */
        snapshotPath: Type.Optional(Type.String({ minLength: 1 })),
        /** The next cursor in a changes response (default `cursor`). */
        cursorPath: Type.Optional(PATH),
        /** True when more changes follow at once (default `hasMore`). */
        hasMorePath: Type.Optional(PATH),
      },
      { additionalProperties: false },
    ),
    /** What the responses hold (default: `accounts` and `transactions` with `id` and `version`). */
    resources: Type.Optional(Type.Array(Resource, { minItems: 1 })),
    /**
     * Pull at once when a domain event of this type is committed (e.g. the event an inbound provider
     * webhook becomes): the connection whose id is at `connectionPath` in its payload, or every one.
     */
    triggerOn: Type.Optional(
      Type.Object(
        { type: Type.String({ pattern: NAME }), connectionPath: Type.Optional(PATH) },
        { additionalProperties: false },
      ),
    ),
    /** The data field naming the connection a record came from (default `connectionId`). */
    connectionField: Type.Optional(Type.String({ pattern: NAME })),
    connections: Type.Array(PullConnection),
  },
  { additionalProperties: false },
);
export type PullOptions = Static<typeof PullOptions>;

function schemaProblems(schema: TSchema, value: unknown, where: string): string[] {
  const out: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    out.push(
      `${where}${error.path || ''}: ${error.message}${error.value !== undefined ? ` (got ${JSON.stringify(error.value)})` : ''}`,
    );
    if (out.length >= 10) break;
  }
  return out;
}

function cronProblems(expr: string | undefined, where: string): string[] {
  if (expr === undefined) return [];
  try {
    new Cron(expr, { paused: true }).stop();
    return [];
  } catch (err) {
    return [`${where}: not a cron expression: ${(err as Error).message}`];
  }
}

/**
 * A definition read for what it is: a built-in kind with its checked options, or a kind its factory
 * (StartOptions.connectorKinds) checks itself.
 */
export type ParsedConnectorSpec =
  | { kind: 'ws-feed'; options: WsFeedOptions }
  | { kind: 'pull'; options: PullOptions }
  | { kind: 'pg-cdc'; options: PgCdcOptions }
  | { kind: 'other'; spec: ConnectorSpec };

function pullProblems(pull: PullOptions, where: string): string[] {
  const problems = [
    ...cronProblems(pull.schedule, `${where}/schedule`),
    ...cronProblems(pull.reconcileSchedule, `${where}/reconcileSchedule`),
  ];
  const ids = pull.connections.map((c) => c.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) problems.push(`${where}/connections: connection ${dup} is listed twice`);
  if (pull.reconcileSchedule && !pull.http.snapshotPath) {
    problems.push(`${where}/http/snapshotPath: reconciliation needs a snapshot path`);
  }
  return problems;
}

/** Reads a definition, or lists every problem with a built-in kind's options. */
function parse(spec: ConnectorSpec, where: string): { parsed: ParsedConnectorSpec } | { problems: string[] } {
  if (spec.kind === 'ws-feed') {
    if (Value.Check(WsFeedOptions, spec)) return { parsed: { kind: 'ws-feed', options: spec } };
    return { problems: schemaProblems(WsFeedOptions, spec, where) };
  }
  if (spec.kind === 'pull') {
    if (!Value.Check(PullOptions, spec)) return { problems: schemaProblems(PullOptions, spec, where) };
    const problems = pullProblems(spec, where);
    return problems.length > 0 ? { problems } : { parsed: { kind: 'pull', options: spec } };
  }
  if (spec.kind === 'pg-cdc') {
    if (!Value.Check(PgCdcOptions, spec)) return { problems: schemaProblems(PgCdcOptions, spec, where) };
    const problems = pgCdcProblems(spec, where);
    return problems.length > 0 ? { problems } : { parsed: { kind: 'pg-cdc', options: spec } };
  }
  return { parsed: { kind: 'other', spec } };
}

/** Problems with a built-in kind's options (an empty list for other kinds: their factory checks). */
export function builtInSpecProblems(spec: ConnectorSpec, where = spec.name): string[] {
  const read = parse(spec, where);
  return 'problems' in read ? read.problems : [];
}

/** Reads a definition into its kind's options; throws a ConnectorSpecError listing every problem. */
export function parseConnectorSpec(spec: ConnectorSpec): ParsedConnectorSpec {
  const read = parse(spec, spec.name);
  if ('problems' in read) throw new ConnectorSpecError(read.problems);
  return read.parsed;
}

/** Checks a spec and throws a ConnectorSpecError listing every problem. */
export function assertValidSpec(spec: ConnectorSpec): void {
  parseConnectorSpec(spec);
}

/**
 * The config file's connector problems, for loadConfig: bad options, names given twice, a conflation
 * threshold the slow-consumer limit would cut off first, `{{env.NAME}}` placeholders naming a variable
 * `connectors.env` does not list, and listed variables that the environment does not set.
 */
export function connectorConfigProblems(
  section: ConnectorsSection | undefined,
  maxBufferedBytes: number,
  env: Readonly<Record<string, string | undefined>> = {},
): string[] {
  const instances = (section?.instances ?? []) as ConnectorSpec[];
  const problems: string[] = [];
  const allowed = new Set(section?.env ?? []);
  for (const name of allowed) {
    if (name.startsWith('SYNCBRIDGE_')) {
      problems.push(
        `connectors.env: ${name} is one of the server's own settings, which connectors may not read`,
      );
    } else if (env[name] === undefined) {
      problems.push(`connectors.env: ${name} is not set in the environment`);
    }
  }
  const conflate = connectorsSettings(section, maxBufferedBytes).conflateAboveBytes;
  if (conflate >= maxBufferedBytes) {
    problems.push(
      `connectors.conflateAboveBytes (${conflate}) must be below maxBufferedBytes (${maxBufferedBytes}): a subscriber is disconnected as a slow consumer past the latter`,
    );
  }
  const seen = new Set<string>();
  instances.forEach((spec, i) => {
    const key = `${spec.tenant}/${spec.name}`;
    if (seen.has(key))
      problems.push(
        `connectors.instances[${i}]: connector ${spec.name} of tenant ${spec.tenant} is defined twice`,
      );
    seen.add(key);
    problems.push(...builtInSpecProblems(spec, `connectors.instances[${i}]`));
    problems.push(...templatePolicyProblems(spec, 'config', allowed, `connectors.instances[${i}]`));
  });
  return problems;
}
