/**
 * SQLite schema migrations: numbered, append-only, never edited once released.
 * Add a new entry at the end to change the schema.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'log, records, idempotency, collections, keys, cursors',
    sql: `
      CREATE TABLE tenant_heads (
        tenant TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE events (
        tenant TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        collection TEXT,
        record_id TEXT,
        op TEXT,
        version INTEGER,
        data TEXT,
        type TEXT,
        payload TEXT,
        source TEXT,
        target TEXT,
        priority INTEGER,
        hlc TEXT,
        actor TEXT NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (tenant, seq)
      ) WITHOUT ROWID;
      CREATE INDEX events_by_record ON events (tenant, collection, record_id, seq) WHERE kind = 'record';
      CREATE INDEX events_by_type ON events (tenant, type, seq) WHERE kind = 'event';
      CREATE TABLE records (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        hlc TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, collection, id)
      ) WITHOUT ROWID;
      CREATE TABLE mutation_results (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant, key)
      ) WITHOUT ROWID;
      CREATE TABLE collections (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        settings TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
      ) WITHOUT ROWID;
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT,
        hash TEXT NOT NULL UNIQUE,
        label TEXT,
        created_at TEXT NOT NULL
      );
      CREATE TABLE cursors (
        tenant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, user_id, device_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'conflict queue, record versions by number',
    sql: `
      CREATE TABLE conflicts (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        collection TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
      ) WITHOUT ROWID;
      CREATE INDEX conflicts_by_status ON conflicts (tenant, status, created_at);
      CREATE INDEX events_by_version ON events (tenant, collection, record_id, version) WHERE kind = 'record';
    `,
  },
  {
    version: 3,
    name: 'device of each log entry',
    sql: `ALTER TABLE events ADD COLUMN device TEXT;`,
  },
  {
    version: 4,
    name: 'previous values of the fields a record change modified',
    sql: `ALTER TABLE events ADD COLUMN previous TEXT;`,
  },
  {
    version: 5,
    name: 'webhook endpoints, delivery outbox, delivery attempts',
    sql: `
      CREATE TABLE webhooks (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        config TEXT NOT NULL,
        secrets TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT,
        total_calls INTEGER NOT NULL DEFAULT 0,
        failed_calls INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        last_triggered_at INTEGER,
        last_success_at INTEGER,
        last_failure_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
      ) WITHOUT ROWID;
      CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        platform TEXT,
        priority INTEGER,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        budget_start INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        locked_until INTEGER,
        locked_by TEXT,
        created_at INTEGER NOT NULL,
        completed_at INTEGER,
        last_status INTEGER,
        last_error TEXT,
        last_duration_ms INTEGER
      );
      CREATE UNIQUE INDEX webhook_deliveries_by_event ON webhook_deliveries (tenant, webhook_id, event_id);
      CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (tenant, webhook_id, seq) WHERE status = 'pending';
      CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (tenant, webhook_id, created_at);
      CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (tenant, created_at);
      CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status_code INTEGER,
        error TEXT,
        success INTEGER NOT NULL,
        response TEXT,
        PRIMARY KEY (delivery_id, attempt)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    name: 'devices',
    sql: `
      CREATE TABLE devices (
        tenant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, user_id, id)
      ) WITHOUT ROWID;
    `,
  },
  {
    // 9, as on PostgreSQL (8 is the connectors' schema there; on SQLite it lives in connectors.db).
    version: 9,
    name: 'one index of record events: events_by_version dropped, events_by_record kept',
    // A record's version and seq grow together, so events_by_record (tenant, collection, record_id, seq)
    // also finds a version: newest first, it stops at the wanted one. The second index cost about a
    // third of the pages each group commit wrote.
    sql: 'DROP INDEX IF EXISTS events_by_version;',
  },
  {
    version: 10,
    name: 'a version of the webhook endpoints of each tenant, read with its write lock',
    // Bumped by every endpoint change in the same transaction; a commit that reads a version its node
    // has not seen reloads the tenant's endpoints before planning deliveries (store/types.ts, TenantLock).
    sql: 'ALTER TABLE tenant_heads ADD COLUMN hooks_version INTEGER NOT NULL DEFAULT 0;',
  },
  {
    // 12 (tenants' connector secrets) lives in connectors.db on SQLite, as 8 does.
    version: 11,
    name: 'a version of the collection settings of each tenant, read with its write lock',
    // Bumped by every PUT /v1/collections in the same transaction; a commit that reads a version its node
    // has not seen reloads the tenant's collection settings before applying mutations (core/collections.ts).
    sql: 'ALTER TABLE tenant_heads ADD COLUMN collections_version INTEGER NOT NULL DEFAULT 0;',
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
    // PostgreSQL gains a server-side function here, so a commit costs one round trip. SQLite commits in
    // the server's own process, where a round trip costs nothing: no change, and the two stores keep the
    // same schema version.
    sql: 'SELECT 1;',
  },
  {
    version: 15,
    name: 'branches of records: where each was forked from, and whether it was merged',
    // A branch's own versions are records and log entries of the collection `<collection>@<branch>`
    // (core/branches.ts); this table keeps the fork point, the base of the three-way merge back.
    sql: `
      CREATE TABLE record_branches (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        name TEXT NOT NULL,
        fork_version INTEGER NOT NULL,
        fork_data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        merged_at TEXT,
        merged_version INTEGER,
        PRIMARY KEY (tenant, collection, record_id, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 16,
    name: 'progress of sealed-fields backfills, one row per tenant and collection',
    // The backfill (store/sealed-backfill.ts) saves where it is after every batch, in the batch's own
    // transaction, so a pass stopped anywhere resumes after the last batch written.
    sql: `
      CREATE TABLE sealed_backfills (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        doc TEXT NOT NULL,
        done INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, collection)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 17,
    name: "compact history: packed superseded versions and each tenant's compaction watermark",
    // A compacted log entry's data moves to \`packed\` (a keyframe or a delta against the record's next
    // entry, store/history/packing.ts) and \`data\` becomes NULL. Existing history is converted by the
    // compaction job in bounded batches (\`syncbridge history compact\`), never here.
    sql: `
      ALTER TABLE events ADD COLUMN packed BLOB;
      CREATE TABLE history_compaction (
        tenant TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 18,
    name: 'the one-call commit looks up each key and record by primary key',
    // PostgreSQL's function changed; SQLite's commit thread already looks each key up by its primary key.
    sql: '-- no change on SQLite',
  },
  {
    version: 19,
    name: 'a commit writes the deliveries its node sends at once already leased to it',
    // PostgreSQL's one-call commit function changes; SQLite's commit is statements run by the server
    // (commit-ops.ts), which write the lease columns this schema already has. Nothing to change here.
    sql: 'SELECT 1;',
  },
];
