/**
 * PostgreSQL schema migrations: numbered, append-only, never edited once released.
 * Add a new entry at the end to change the schema. Equivalent to the SQLite schema (sqlite/migrations.ts):
 * same tables and keys, with jsonb for JSON documents and bigint for seqs and versions.
 *
 * Key columns use COLLATE "C" so `ORDER BY id` and `id > $after` paging compare bytes, exactly like
 * SQLite's BINARY collation, whatever the database's default locale is. `records.updated_at` and
 * `events.ts` are text so the ISO strings clients sent or the server stamped come back unchanged
 * (timestamptz would re-render them); the server-internal times are timestamptz.
 */
import type { Migration } from '../sqlite/migrations.ts';
import { CHECKS_V1, CHECKS_V2, commitFunctionSql, DELIVERIES_V1, DELIVERIES_V2 } from './commit-function.ts';

export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'log, records, idempotency, collections, keys, cursors',
    sql: `
      CREATE TABLE tenant_heads (
        tenant text COLLATE "C" PRIMARY KEY,
        seq bigint NOT NULL
      );
      CREATE TABLE events (
        tenant text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        event_id text NOT NULL,
        kind text NOT NULL,
        collection text COLLATE "C",
        record_id text COLLATE "C",
        op text,
        version bigint,
        data jsonb,
        type text COLLATE "C",
        payload jsonb,
        source text,
        target text,
        priority integer,
        hlc text,
        actor text NOT NULL,
        ts text NOT NULL,
        PRIMARY KEY (tenant, seq)
      );
      CREATE INDEX events_by_record ON events (tenant, collection, record_id, seq) WHERE kind = 'record';
      CREATE INDEX events_by_type ON events (tenant, type, seq) WHERE kind = 'event';
      CREATE TABLE records (
        tenant text COLLATE "C" NOT NULL,
        collection text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        data jsonb NOT NULL,
        version bigint NOT NULL,
        hlc text NOT NULL,
        updated_at text NOT NULL,
        updated_by text NOT NULL,
        deleted boolean NOT NULL DEFAULT false,
        PRIMARY KEY (tenant, collection, id)
      );
      CREATE TABLE mutation_results (
        tenant text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        result jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, key)
      );
      CREATE TABLE collections (
        tenant text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        settings jsonb NOT NULL,
        PRIMARY KEY (tenant, name)
      );
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        tenant text,
        hash text NOT NULL UNIQUE,
        label text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE cursors (
        tenant text COLLATE "C" NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, user_id, device_id)
      );
    `,
  },
  {
    version: 2,
    name: 'conflict queue, record versions by number',
    sql: `
      CREATE TABLE conflicts (
        tenant text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        collection text COLLATE "C" NOT NULL,
        status text NOT NULL,
        created_at text NOT NULL,
        doc jsonb NOT NULL,
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX conflicts_by_status ON conflicts (tenant, status, created_at);
      CREATE INDEX events_by_version ON events (tenant, collection, record_id, version) WHERE kind = 'record';
    `,
  },
  {
    version: 3,
    name: 'device of each log entry',
    sql: `ALTER TABLE events ADD COLUMN device text;`,
  },
  {
    version: 4,
    name: 'previous values of the fields a record change modified',
    sql: `ALTER TABLE events ADD COLUMN previous jsonb;`,
  },
  {
    version: 5,
    name: 'webhook endpoints, delivery outbox, delivery attempts',
    sql: `
      CREATE TABLE webhooks (
        tenant text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        config jsonb NOT NULL,
        secrets jsonb NOT NULL,
        status text NOT NULL,
        status_reason text,
        total_calls bigint NOT NULL DEFAULT 0,
        failed_calls bigint NOT NULL DEFAULT 0,
        consecutive_failures bigint NOT NULL DEFAULT 0,
        last_triggered_at bigint,
        last_success_at bigint,
        last_failure_at bigint,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (tenant, id)
      );
      CREATE TABLE webhook_deliveries (
        id text COLLATE "C" PRIMARY KEY,
        tenant text COLLATE "C" NOT NULL,
        webhook_id text COLLATE "C" NOT NULL,
        event_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        event_type text NOT NULL,
        platform text COLLATE "C",
        priority integer,
        body text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        budget_start integer NOT NULL DEFAULT 0,
        next_attempt_at bigint NOT NULL,
        locked_until bigint,
        locked_by text,
        created_at bigint NOT NULL,
        completed_at bigint,
        last_status integer,
        last_error text,
        last_duration_ms integer
      );
      CREATE UNIQUE INDEX webhook_deliveries_by_event ON webhook_deliveries (tenant, webhook_id, event_id);
      CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (tenant, webhook_id, seq) WHERE status = 'pending';
      CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (tenant, webhook_id, created_at);
      CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (tenant, created_at);
      CREATE TABLE webhook_attempts (
        delivery_id text COLLATE "C" NOT NULL,
        attempt integer NOT NULL,
        tenant text COLLATE "C" NOT NULL,
        webhook_id text COLLATE "C" NOT NULL,
        started_at bigint NOT NULL,
        duration_ms integer NOT NULL,
        status_code integer,
        error text,
        success boolean NOT NULL,
        response text,
        PRIMARY KEY (delivery_id, attempt)
      );
    `,
  },
  {
    version: 7,
    name: 'devices',
    sql: `
      CREATE TABLE devices (
        tenant text COLLATE "C" NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        doc jsonb NOT NULL,
        PRIMARY KEY (tenant, user_id, id)
      );
    `,
  },
  {
    version: 8,
    name: 'connectors: persisted ticks, connector state, connectors defined over REST',
    sql: `
      CREATE TABLE ticks (
        tenant text COLLATE "C" NOT NULL,
        topic text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        symbol text COLLATE "C" NOT NULL,
        ts bigint NOT NULL,
        price double precision,
        volume double precision,
        data jsonb,
        PRIMARY KEY (tenant, topic, seq)
      );
      CREATE INDEX ticks_by_symbol ON ticks (tenant, topic, symbol, ts, seq);
      CREATE TABLE connector_state (
        tenant text COLLATE "C" NOT NULL,
        connector text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, connector, key)
      );
      CREATE TABLE connector_configs (
        tenant text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
      );
    `,
  },
  {
    version: 9,
    name: 'one index of record events: events_by_version dropped, events_by_record kept',
    // A record's version and seq grow together, so events_by_record (tenant, collection, record_id, seq)
    // also finds a version: newest first, it stops at the wanted one. The second index cost a share of
    // every commit's writes (WAL and index pages) for lookups the first one serves.
    sql: 'DROP INDEX IF EXISTS events_by_version;',
  },
  {
    version: 10,
    name: 'a version of the webhook endpoints of each tenant, read with its write lock',
    // Bumped by every endpoint change in the same transaction, under the tenant's head row lock, so a
    // commit that takes the lock after an endpoint change sees it (store/types.ts, TenantLock).
    sql: 'ALTER TABLE tenant_heads ADD COLUMN hooks_version bigint NOT NULL DEFAULT 0;',
  },
  {
    version: 11,
    name: 'a version of the collection settings of each tenant, read with its write lock',
    // Bumped by every collection settings change in the same transaction, under the tenant's head row
    // lock, so a commit that takes the lock after the change sees it (core/collections.ts, TenantLock).
    sql: 'ALTER TABLE tenant_heads ADD COLUMN collections_version bigint NOT NULL DEFAULT 0;',
  },
  {
    version: 12,
    name: "tenants' connector secrets, sealed",
    // A value is sealed before it reaches the store (connectors/secrets.ts): the column holds only
    // `sbx1.` ciphertext under SYNCBRIDGE_SECRETS_KEY, never a plain secret.
    sql: `
      CREATE TABLE connector_secrets (
        tenant text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        sealed text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
      );
    `,
  },
  {
    version: 13,
    name: 'finished webhook deliveries by completion time; no cursors of anonymous connections',
    // The retention job deletes finished deliveries oldest first (log/retention.ts). Cursors used to be
    // kept for connections without a deviceId too, under a random connection id (a UUID) that nobody can
    // read again; those without a registered device are dropped here.
    sql: `
      CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (status, completed_at)
        WHERE status <> 'pending';
      DELETE FROM cursors WHERE length(device_id) = 36
        AND device_id LIKE '________-____-4___-____-____________'
        AND NOT EXISTS (SELECT 1 FROM devices d
          WHERE d.tenant = cursors.tenant AND d.user_id = cursors.user_id AND d.id = cursors.device_id);
    `,
  },
  {
    version: 14,
    name: 'a commit of one tenant in one call: head lock, checks, records, log, results, outbox',
    // postgres/one-call-commit.ts calls it with everything a commit computed against the state it
    // remembered (head, settings versions, record versions, absent idempotency keys). Under the tenant's
    // head row lock it checks that state is still current and writes everything, or writes nothing and
    // returns 'moved' (the caller then commits in a transaction of its own). `last`, when given, is the
    // event id the head must hold (a commit computed on top of one still in flight). A migration that changes
    // a table written here must replace this function.
    sql: `
${commitFunctionSql({ checks: CHECKS_V1, deliveries: DELIVERIES_V1 }, 'CREATE')}    `,
  },
  {
    version: 15,
    name: 'branches of records: where each was forked from, and whether it was merged',
    // A branch's own versions are records and log entries of the collection `<collection>@<branch>`
    // (core/branches.ts); this table keeps the fork point, the base of the three-way merge back.
    sql: `
      CREATE TABLE record_branches (
        tenant text COLLATE "C" NOT NULL,
        collection text COLLATE "C" NOT NULL,
        record_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        fork_version bigint NOT NULL,
        fork_data jsonb NOT NULL,
        created_at text NOT NULL,
        created_by text NOT NULL,
        merged_at text,
        merged_version bigint,
        PRIMARY KEY (tenant, collection, record_id, name)
      );
    `,
  },
  {
    version: 16,
    name: 'progress of sealed-fields backfills, one row per tenant and collection',
    // The backfill (store/sealed-backfill.ts) saves where it is after every batch, in the batch's own
    // transaction, so a pass stopped anywhere resumes after the last batch written.
    sql: `
      CREATE TABLE sealed_backfills (
        tenant text COLLATE "C" NOT NULL,
        collection text COLLATE "C" NOT NULL,
        doc text NOT NULL,
        done integer NOT NULL,
        updated_at text NOT NULL,
        PRIMARY KEY (tenant, collection)
      );
    `,
  },
  {
    version: 17,
    name: "compact history: packed superseded versions and each tenant's compaction watermark",
    // A compacted log entry's data moves to \`packed\` (a keyframe or a delta against the record's next
    // entry, store/history/packing.ts) and \`data\` becomes NULL. Existing history is converted by the
    // compaction job in bounded batches (\`syncbridge history compact\`), never here.
    sql: `
      ALTER TABLE events ADD COLUMN packed bytea;
      CREATE TABLE history_compaction (
        tenant text COLLATE "C" PRIMARY KEY,
        seq bigint NOT NULL
      );
    `,
  },
  {
    version: 18,
    name: 'the one-call commit looks up each key and record by primary key',
    // Migration 14's set-valued checks could be planned as a read of every result the tenant stored, so
    // each write cost more than the one before (postgres/commit-function.ts).
    sql: commitFunctionSql({ checks: CHECKS_V2, deliveries: DELIVERIES_V1 }, 'CREATE OR REPLACE'),
  },
  {
    version: 19,
    name: 'a commit writes the deliveries its node sends at once already leased to it',
    sql: commitFunctionSql({ checks: CHECKS_V2, deliveries: DELIVERIES_V2 }, 'CREATE OR REPLACE'),
  },
];
