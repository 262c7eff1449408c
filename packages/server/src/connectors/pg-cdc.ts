/**
 * The `pg-cdc` connector: a platform publishes from its own PostgreSQL. It tails a logical replication
 * slot of the platform's database (its publication, `pgoutput`) and turns each source transaction into
 * one write group of the tenant's log: mapped tables' rows become records, outbox rows domain events.
 *
 * Exactly once: a group is committed under a marker naming its source transaction's commit LSN, in the
 * same syncbridge transaction as the writes (log/tenant-writer.ts), and the LSN is acknowledged to
 * PostgreSQL only after that commit. After a crash the source resends from the last acknowledged
 * position; a transaction committed here but not yet acknowledged meets its marker and writes nothing.
 * Without a position it starts with a snapshot of the mapped tables consistent with the slot
 * (pg-cdc-snapshot.ts), then streams; a table mapped later is copied as of a temporary slot's snapshot
 * when it next starts, its earlier changes left out of the stream (pg-cdc-changes.ts). Reports lag
 * (bytes, seconds), retained WAL (with a warning past a limit) and snapshot progress; removing it drops
 * its slot.
 */
import pg from 'pg';
import { SyncError } from '../core/errors.ts';
import { renderTemplate } from './json-path.ts';
import { type ChangeContext, txChanges } from './pg-cdc-changes.ts';
import { type PgCdcOptions, slotName } from './pg-cdc-config.ts';
import { lsnText, type Mapped, RowMapper } from './pg-cdc-map.ts';
import {
  addedTables,
  addSlotName,
  type CreatedSlot,
  copyTables,
  createSlot,
  dropSlot,
  primaryKeys,
  type SnapshotProgress,
  slotExists,
} from './pg-cdc-snapshot.ts';
import { ReplicationStream, type SourceTx } from './pg-cdc-stream.ts';
import type { Connector, ConnectorContext, ConnectorHealth, ConnectorState } from './types.ts';

type Group = Parameters<ConnectorContext['groups']>[0][number];

/** What the connector keeps in its state: where the slot stands. */
interface Position {
  slot: string;
  phase: 'streaming';
  consistentPoint: string;
  /** The mapped tables whose rows are in (unknown for a position written before this was kept). */
  tables?: string[];
  /** A table mapped after the slot was made: the point as of which it was copied (changes before it are in). */
  copiedFrom?: Record<string, string>;
}

const POSITION_KEY = 'position';
const MAX_BACKOFF_MS = 30_000;
const GIB = 1024 ** 3;

export interface PgCdcHooks {
  variables?: () => Promise<Record<string, unknown>>;
}

export class PgCdcConnector implements Connector {
  readonly kind = 'pg-cdc';
  readonly name: string;
  readonly tenant: string;
  private readonly slot: string;
  private readonly mapper: RowMapper;
  private ctx: ConnectorContext | null = null;
  private state: ConnectorState = 'stopped';
  private stopped = true;
  private loop: Promise<void> | null = null;
  private stream: ReplicationStream | null = null;
  private admin: pg.Client | null = null;
  private wake: (() => void) | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private keys = new Map<string, string[]>();
  private copiedFrom: Record<string, string> = {};
  /** What the mapping of stream changes needs (txChanges). */
  private readonly changeContext: ChangeContext;
  private startedAt = Date.now();
  private lastSuccessAt: number | null = null;
  private lastError: string | null = null;
  private phase: 'connecting' | 'snapshot' | 'streaming' = 'connecting';
  private snapshot: SnapshotProgress[] = [];
  private committedLsn: string | null = null;
  private lagBytes = 0;
  private lagSeconds = 0;
  private retainedWalBytes = 0;
  private walWarning = false;
  private reading = false;
  private sessions = 0;
  private readonly counts = {
    transactions: 0,
    duplicates: 0,
    changes: 0,
    events: 0,
    skipped: 0,
    reconnects: 0,
    snapshotRows: 0,
  };

  constructor(
    private readonly options: PgCdcOptions,
    private readonly hooks: PgCdcHooks = {},
  ) {
    this.name = options.name;
    this.tenant = options.tenant;
    this.slot = slotName(options);
    this.mapper = new RowMapper(options);
    this.changeContext = {
      mapper: this.mapper,
      mapRow: (schema, name, op, row) => this.mapRow(schema, name, op, row),
      copiedFrom: () => this.copiedFrom,
      list: (collection) => this.ctx!.records.list(collection),
    };
  }

  start(ctx: ConnectorContext): void {
    this.ctx = ctx;
    this.stopped = false;
    this.startedAt = Date.now();
    this.state = 'starting';
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.stream?.stop();
    await this.admin?.end().catch(() => {});
    await this.loop;
    this.state = 'stopped';
  }

  /** The connector is removed: its slot goes, so the source keeps no WAL for it. */
  async remove(): Promise<void> {
    const client = new pg.Client({ connectionString: await this.url() });
    client.on('error', () => {});
    await client.connect();
    try {
      await dropSlot(client, this.slot);
    } finally {
      await client.end().catch(() => {});
    }
  }

  private async url(): Promise<string> {
    const vars = (await this.hooks.variables?.()) ?? {};
    return String(renderTemplate(this.options.connection, vars) ?? '');
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        await this.session();
      } catch (err) {
        if (this.stopped) break;
        this.lastError = (err as Error).message;
        this.ctx?.logger.warn({ err: (err as Error).message }, 'pg-cdc session ended; reconnecting');
      }
      if (this.stopped) break;
      this.state = 'backing_off';
      this.counts.reconnects += 1;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, backoff).unref();
      });
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      if (this.lastSuccessAt && Date.now() - this.lastSuccessAt < 5000) backoff = 500;
    }
  }

  /** Connects, makes sure there is a slot (with a snapshot when it is new), and streams. */
  private async session(): Promise<void> {
    const ctx = this.ctx!;
    const url = await this.url();
    this.phase = 'connecting';
    const admin = new pg.Client({ connectionString: url, application_name: `syncbridge-${this.name}` });
    admin.on('error', () => {});
    this.admin = admin;
    try {
      await admin.connect();
      const publication = await admin.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [
        this.options.publication,
      ]);
      if (publication.rows.length === 0) {
        throw new Error(`publication ${this.options.publication} does not exist in the source database`);
      }
      this.keys = await primaryKeys(admin, this.mapper.tableNames());
      const position = await ctx.state.get<Position>(POSITION_KEY);
      const exists = await slotExists(admin, this.slot);
      this.sessions += 1;
      if (!exists && position?.slot === this.slot && this.sessions > 1) {
        // Gone while this connector ran: dropped outside syncbridge, or the connector was removed through
        // another node. Starting over here could leave a slot nobody reads; a restart or PUT starts over.
        throw new Error(
          `replication slot ${this.slot} disappeared while streaming; redefine (PUT) or restart the connector to start over with a new snapshot`,
        );
      }
      if (!exists || position?.slot !== this.slot || position.phase !== 'streaming') {
        if (position && !exists) ctx.logger.warn({ slot: this.slot }, 'pg-cdc slot is gone; starting over');
        if (exists) await dropSlot(admin, this.slot);
        this.copiedFrom = (await this.begin(url)).copiedFrom ?? {};
      } else {
        this.copiedFrom = (await this.copyAdded(url, position)).copiedFrom ?? {};
      }
      if (this.stopped) return;
      this.phase = 'streaming';
      this.state = 'running';
      this.lastError = null;
      this.lastSuccessAt = Date.now();
      void this.readStatus();
      this.statusTimer = setInterval(() => void this.readStatus(), this.options.statusIntervalMs ?? 5000);
      this.statusTimer.unref();
      this.stream = new ReplicationStream(url, this.slot, this.options.publication, {
        transactions: (txs) => this.apply(txs),
        caughtUp: () => {
          this.lagSeconds = 0;
        },
        heard: () => {
          this.lastSuccessAt = Date.now();
        },
      });
      await this.stream.run();
    } finally {
      if (this.statusTimer) clearInterval(this.statusTimer);
      this.statusTimer = null;
      await this.stream?.stop();
      this.stream = null;
      this.admin = null;
      await admin.end().catch(() => {});
    }
  }

  /** A new slot; with the snapshot option (default), the mapped tables copied as of its snapshot. */
  private async begin(url: string): Promise<Position> {
    const ctx = this.ctx!;
    const tables = this.mapper.tableNames();
    const copy = this.options.snapshot !== false && tables.length > 0;
    const created = await createSlot(url, this.slot, copy);
    try {
      if (copy) await this.copy(url, created, tables, 'snapshot');
    } finally {
      await created.connection.end().catch(() => {});
    }
    const position: Position = {
      slot: this.slot,
      phase: 'streaming',
      consistentPoint: created.consistentPoint,
      tables,
    };
    await ctx.state.put(POSITION_KEY, position);
    ctx.logger.info({ slot: this.slot, at: created.consistentPoint, copied: copy }, 'pg-cdc slot created');
    return position;
  }

  /**
   * Tables mapped since the rows were last copied (a PUT added them): copied as of a temporary slot's
   * snapshot, and their changes committed before its consistent point skipped when the stream resends
   * them, so each row change lands once. A crash during the copy copies them again.
   */
  private async copyAdded(url: string, position: Position): Promise<Position> {
    const tables = this.mapper.tableNames();
    const added = this.options.snapshot === false ? [] : addedTables(tables, position.tables);
    const next: Position = { ...position, tables };
    if (added.length > 0) {
      const created = await createSlot(url, addSlotName(this.slot), true, true);
      try {
        await this.copy(url, created, added, 'added');
      } finally {
        await created.connection.end().catch(() => {});
      }
      next.copiedFrom = { ...position.copiedFrom };
      for (const table of added) next.copiedFrom[table] = created.consistentPoint;
      this.ctx!.logger.info({ tables: added, at: created.consistentPoint }, 'pg-cdc copied added tables');
    }
    if (added.length > 0 || position.tables?.join() !== tables.join()) {
      await this.ctx!.state.put(POSITION_KEY, next);
    }
    return next;
  }

  /** Copies tables as of a slot's exported snapshot, a write group per page (once, by its marker). */
  private async copy(url: string, created: CreatedSlot, tables: string[], what: string): Promise<void> {
    if (!created.snapshotName) throw new Error('the source exported no snapshot');
    this.phase = 'snapshot';
    this.state = 'running';
    this.snapshot = [];
    const batch = this.options.snapshotBatch ?? 500;
    await copyTables(
      url,
      created.snapshotName,
      tables,
      batch,
      async (table, rows, pageNo) => {
        if (this.stopped) throw new Error('stopped during the snapshot');
        const [schema, name] = table.split('.') as [string, string];
        const mapped = rows.map((row) => this.mapRow(schema, name, 'put', row));
        const marker = `pgcdc:${this.slot}:${created.consistentPoint}:${what}:${table}:${pageNo}`;
        await this.commit([this.group(marker, mapped)]);
        this.counts.snapshotRows += rows.length;
        this.lastSuccessAt = Date.now();
      },
      (p) => {
        const at = this.snapshot.findIndex((s) => s.table === p.table);
        if (at >= 0) this.snapshot[at] = p;
        else this.snapshot.push(p);
      },
    );
  }

  /** Source transactions, each as one write group (once), all in one syncbridge transaction. */
  private async apply(txs: SourceTx[]): Promise<void> {
    const groups: Group[] = [];
    for (const tx of txs)
      groups.push(this.group(`pgcdc:${this.name}:${tx.commitLsn}`, await txChanges(tx, this.changeContext)));
    await this.commit(groups);
    const last = txs.at(-1)!;
    this.counts.transactions += txs.length;
    this.committedLsn = lsnText(last.endLsn);
    this.lagSeconds = Math.max(0, (Date.now() - last.commitTimeMs) / 1000);
  }

  private mapRow(schema: string, name: string, op: 'put' | 'delete', row: Record<string, unknown>): Mapped {
    const table = this.mapper.table(schema, name);
    if (!table) return { kind: 'skip', reason: `table ${schema}.${name} is not mapped` };
    return this.mapper.change(table, this.keys.get(`${schema}.${name}`) ?? [], op, row);
  }

  /** A write group of mapped changes under its marker (changes that cannot be mapped are counted). */
  private group(marker: string, mapped: Mapped[]): Group {
    const mutations: Group['mutations'] = [];
    const events: Group['events'] = [];
    for (const m of mapped) {
      if (m.kind === 'mutation') mutations.push({ ...m.mutation, mid: `${marker}:${mutations.length}` });
      else if (m.kind === 'event') events.push(m.event);
      else {
        this.counts.skipped += 1;
        this.ctx!.logger.warn({ marker, reason: m.reason }, 'pg-cdc change skipped');
      }
    }
    return { marker, mutations, events };
  }

  /**
   * Commits groups in one transaction, retrying while the store is unavailable (nothing of them is
   * committed then, so order holds). Anything else (a row too large to store) stops the stream
   * unacknowledged: nothing is skipped silently.
   */
  private async commit(all: Group[]): Promise<void> {
    const groups = all.filter((g) => g.mutations.length > 0 || g.events.length > 0);
    if (groups.length === 0) return;
    for (let delay = 100; ; delay = Math.min(5000, delay * 2)) {
      try {
        const results = await this.ctx!.groups(groups);
        results.forEach((result, i) => {
          if (result.duplicate) this.counts.duplicates += 1;
          else {
            this.counts.changes += groups[i]!.mutations.length;
            this.counts.events += groups[i]!.events.length;
          }
        });
        return;
      } catch (err) {
        if (!(err instanceof SyncError && err.code === 'UNAVAILABLE') || this.stopped) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Reads lag and retained WAL from the source, and warns when the slot holds too much. */
  private async readStatus(): Promise<void> {
    const admin = this.admin;
    // One status query at a time on the connection, however slow the source answers.
    if (!admin || this.reading) return;
    this.reading = true;
    try {
      const result = await admin.query(
        `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
                pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
           FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slot],
      );
      const row = result.rows[0] as { lag: string | null; retained: string | null } | undefined;
      if (!row) return;
      this.lagBytes = Math.max(0, Number(row.lag ?? 0));
      this.retainedWalBytes = Math.max(0, Number(row.retained ?? 0));
      const limit = this.options.maxRetainedWalBytes ?? GIB;
      const over = this.retainedWalBytes > limit;
      if (over && !this.walWarning) {
        this.ctx?.logger.warn(
          { slot: this.slot, retainedWalBytes: this.retainedWalBytes, limit },
          'pg-cdc slot holds more WAL than its limit',
        );
      }
      this.walWarning = over;
    } catch {
      // The session's own connection reports a lost source.
    } finally {
      this.reading = false;
    }
  }

  health(): ConnectorHealth {
    const now = Date.now();
    const stalenessMs = this.stopped ? null : now - (this.lastSuccessAt ?? this.startedAt);
    return {
      state: this.stopped ? 'stopped' : this.state,
      lastSuccessAt: this.lastSuccessAt ? new Date(this.lastSuccessAt).toISOString() : null,
      lastError: this.lastError,
      stalenessMs,
      stale: false,
      details: {
        slot: this.slot,
        publication: this.options.publication,
        phase: this.phase,
        snapshot: this.snapshot,
        committedLsn: this.committedLsn,
        lagBytes: this.lagBytes,
        lagSeconds: this.lagSeconds,
        retainedWalBytes: this.retainedWalBytes,
        ...(this.walWarning
          ? { warning: `the slot holds ${this.retainedWalBytes} bytes of WAL, past its limit` }
          : {}),
        ...this.counts,
      },
    };
  }

  metrics(): Record<string, number> {
    return {
      ...this.counts,
      lag_bytes: this.lagBytes,
      lag_seconds: this.lagSeconds,
      retained_wal_bytes: this.retainedWalBytes,
      wal_warning: this.walWarning ? 1 : 0,
    };
  }
}
