/**
 * What one source transaction of the `pg-cdc` stream becomes: mapped tables' inserts and updates as
 * puts (a key change also deletes the record under the old id), deletes as deletes, a truncate as the
 * deletion of every record of the table's collection, outbox inserts as domain events. Changes of a
 * table copied after the slot was made, committed before the point it was copied at, are left out:
 * the copy holds them already.
 */
import type { SyncRecord } from '@syncbridge/protocol';
import { lsnValue, type Mapped, type RowMapper } from './pg-cdc-map.ts';
import type { SourceTx } from './pg-cdc-stream.ts';

export interface ChangeContext {
  mapper: RowMapper;
  mapRow(schema: string, name: string, op: 'put' | 'delete', row: Record<string, unknown>): Mapped;
  /** `schema.table` → the LSN as of which a table mapped later was copied. */
  copiedFrom(): Readonly<Record<string, string>>;
  /** The live records of a collection (a truncate deletes them all). */
  list(collection: string): Promise<SyncRecord[]>;
}

/** A change of a table copied later, committed before the point it was copied at: the copy has it. */
function inCopy(c: ChangeContext, schema: string, name: string, commitLsn: string): boolean {
  const from = c.copiedFrom()[`${schema}.${name}`];
  return from !== undefined && lsnValue(commitLsn) < lsnValue(from);
}

export async function txChanges(tx: SourceTx, c: ChangeContext): Promise<Mapped[]> {
  const mapped: Mapped[] = [];
  for (const change of tx.changes) {
    if (change.tag === 'truncate') {
      for (const relation of change.relations) {
        const table = c.mapper.table(relation.schema, relation.name);
        if (!table || inCopy(c, relation.schema, relation.name, tx.commitLsn)) continue;
        for (const r of await c.list(table.collection)) {
          mapped.push({
            kind: 'mutation',
            mutation: { collection: table.collection, id: r.id, op: 'delete' },
          });
        }
      }
      continue;
    }
    const { schema, name } = change.relation;
    if (inCopy(c, schema, name, tx.commitLsn)) continue;
    if (c.mapper.isOutbox(schema, name)) {
      if (change.tag === 'insert') mapped.push(c.mapper.event(change.new));
      continue;
    }
    if (change.tag === 'delete') {
      mapped.push(c.mapRow(schema, name, 'delete', change.key ?? change.old ?? {}));
      continue;
    }
    if (change.tag === 'update' && change.key) {
      // The key changed: the record under the old id goes.
      const before = c.mapRow(schema, name, 'delete', change.key);
      const after = c.mapRow(schema, name, 'put', change.new);
      if (
        before.kind === 'mutation' &&
        after.kind === 'mutation' &&
        before.mutation.id !== after.mutation.id
      ) {
        mapped.push(before);
      }
      mapped.push(after);
      continue;
    }
    mapped.push(c.mapRow(schema, name, 'put', change.new));
  }
  return mapped;
}
