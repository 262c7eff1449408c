/**
 * The text of `syncbridge_commit` (postgres/one-call-commit.ts), the function that writes one tenant's
 * commit in one call. Migration 14 created it; migration 18 replaced its checks of the idempotency keys
 * and record versions a commit assumed. PL/pgSQL keeps a generic plan per connection, made while the
 * tables were new and had no statistics, and those two set-valued checks were planned as a read of
 * every result (and record) the tenant stored, filtered: each write read more than the one before, so
 * a lone writer slowed down as its tenant's results accumulated. Each key and record is now looked up
 * alone, by primary key equality, which is an index lookup whatever the statistics say. Migration 19
 * writes the deliveries a commit's node sends at once already leased to it. Released versions are never
 * edited: a later change adds parts here and a migration that uses them.
 */

/** Migration 14's checks: set-valued, so their plan depends on the tables' statistics. */
export const CHECKS_V1 = `
        IF EXISTS (SELECT 1 FROM mutation_results WHERE tenant = t
          AND key IN (SELECT jsonb_array_elements_text(p->'absent'))) THEN
          RETURN 'moved';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p->'expect') AS k (collection text, id text, version bigint)
          LEFT JOIN records r ON r.tenant = t AND r.collection = k.collection AND r.id = k.id
          WHERE coalesce(r.version, 0) <> k.version) THEN
          RETURN 'moved';
        END IF;
`;

/** One primary-key lookup per idempotency key and per assumed record version. */
export const CHECKS_V2 = `
        FOR absent_key IN SELECT jsonb_array_elements_text(p->'absent') LOOP
          IF EXISTS (SELECT 1 FROM mutation_results WHERE tenant = t AND key = absent_key) THEN
            RETURN 'moved';
          END IF;
        END LOOP;
        FOR assumed IN SELECT * FROM jsonb_to_recordset(p->'expect') AS x (collection text, id text,
            version bigint)
        LOOP
          stored := NULL;
          SELECT r.version INTO stored FROM records r
            WHERE r.tenant = t AND r.collection = assumed.collection AND r.id = assumed.id;
          IF coalesce(stored, 0) <> assumed.version THEN
            RETURN 'moved';
          END IF;
        END LOOP;
`;

/** Migration 14's outbox rows: every delivery written pending, unclaimed. */
export const DELIVERIES_V1 = `            body, status, next_attempt_at, created_at)
          SELECT x.id, t, x.webhook_id, x.event_id, x.seq, x.event_type, x.platform, x.priority, x.body,
            'pending', x.created_at, x.created_at
          FROM jsonb_to_recordset(p->'deliveries') AS x (id text, webhook_id text, event_id text, seq bigint,
            event_type text, platform text, priority integer, body text, created_at bigint);
`;

/**
 * Migration 19's: a delivery the committing node sends at once is written already leased to it (its
 * first attempt counted), so the webhook worker needs no claim for it (webhooks/leased.ts).
 */
export const DELIVERIES_V2 = `            body, status, next_attempt_at, created_at, attempts, locked_until, locked_by)
          SELECT x.id, t, x.webhook_id, x.event_id, x.seq, x.event_type, x.platform, x.priority, x.body,
            'pending', x.created_at, x.created_at, coalesce(x.attempts, 0), x.locked_until, x.locked_by
          FROM jsonb_to_recordset(p->'deliveries') AS x (id text, webhook_id text, event_id text, seq bigint,
            event_type text, platform text, priority integer, body text, created_at bigint, attempts integer,
            locked_until bigint, locked_by text);
`;

export function commitFunctionSql(
  parts: { checks: string; deliveries: string },
  create: 'CREATE' | 'CREATE OR REPLACE',
): string {
  const { checks, deliveries } = parts;
  return `
      ${create} FUNCTION syncbridge_commit(p jsonb) RETURNS text LANGUAGE plpgsql AS $fn$
      DECLARE
        t text := p->>'tenant';
        h record;
        absent_key text;
        assumed record;
        stored bigint;
      BEGIN
        SELECT seq, hooks_version, collections_version INTO h FROM tenant_heads WHERE tenant = t FOR UPDATE;
        IF NOT FOUND OR h.seq <> (p->>'head')::bigint OR h.hooks_version <> (p->>'hooks')::bigint
          OR h.collections_version <> (p->>'collections')::bigint THEN
          RETURN 'moved';
        END IF;
        -- A commit computed on top of one still in flight names that one's last event: it must be the
        -- head, so the earlier commit (and all it assumed) committed.
        IF p->>'last' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events
          WHERE tenant = t AND seq = h.seq AND event_id = p->>'last') THEN
          RETURN 'moved';
        END IF;
${checks}        INSERT INTO records (tenant, collection, id, data, version, hlc, updated_at, updated_by, deleted)
          SELECT t, x.* FROM jsonb_to_recordset(p->'records') AS x (collection text, id text, data jsonb,
            version bigint, hlc text, updated_at text, updated_by text, deleted boolean)
          ON CONFLICT (tenant, collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
            hlc = excluded.hlc, updated_at = excluded.updated_at, updated_by = excluded.updated_by,
            deleted = excluded.deleted;
        INSERT INTO events (tenant, seq, event_id, kind, collection, record_id, op, version, data, type,
            payload, source, target, priority, hlc, actor, ts, device, previous)
          SELECT t, x.seq, x.event_id, x.kind, x.collection, x.record_id, x.op, x.version, x.data, x.type,
            x.payload -> 0, x.source, x.target, x.priority, x.hlc, x.actor, x.ts, x.device, x.previous
          FROM jsonb_to_recordset(p->'events') AS x (seq bigint, event_id text, kind text, collection text,
            record_id text, op text, version bigint, data jsonb, type text, payload jsonb, source text,
            target text, priority integer, hlc text, actor text, ts text, device text, previous jsonb);
        INSERT INTO mutation_results (tenant, key, result)
          SELECT t, x.key, x.result FROM jsonb_to_recordset(p->'results') AS x (key text, result jsonb)
          ON CONFLICT DO NOTHING;
        INSERT INTO conflicts (tenant, id, collection, status, created_at, doc)
          SELECT t, x.doc->>'id', x.doc->>'collection', x.doc->>'status', x.doc->>'createdAt', x.doc
          FROM jsonb_array_elements(p->'conflicts') AS x (doc)
          ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, doc = excluded.doc;
        INSERT INTO webhook_deliveries (id, tenant, webhook_id, event_id, seq, event_type, platform, priority,
${deliveries}        UPDATE tenant_heads SET seq = (p->>'next')::bigint WHERE tenant = t;
        RETURN 'committed';
      END
      $fn$;
    `;
}
