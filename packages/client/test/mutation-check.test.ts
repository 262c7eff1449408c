/**
 * The SDK checks a write's collection, id and data by hand (no TypeBox in the bundle): it must agree with
 * the protocol's `Mutation` schema, which the server enforces, on every field a caller controls.
 */
import { Value } from '@sinclair/typebox/value';
import { Mutation } from '@syncbridge/protocol';
import { describe, expect, it } from 'vitest';
import { writeProblem } from '../src/mutation-check.ts';

const collections = [
  'todos',
  'stock_levels',
  'a.b-c',
  '',
  'bad name!',
  'x'.repeat(128),
  'x'.repeat(129),
  'é',
  'docs@review',
  `docs@${'x'.repeat(64)}`,
  `docs@${'x'.repeat(65)}`,
  'docs@',
  '@review',
  'docs@..',
  '..@review',
  'docs@a@b',
  'docs@a b',
  7,
];
const ids = ['t1', 'a:b', 'x'.repeat(256), 'x'.repeat(257), '', 'has/slash', 'sp ace', 'q?', 'h#', null];
const datas = [undefined, {}, { title: 'x' }, [], null, 'text', 3];

describe('the client-side write check', () => {
  it('accepts exactly what the protocol schema accepts', () => {
    for (const collection of collections)
      for (const id of ids)
        for (const data of datas) {
          const mutation: Record<string, unknown> = { mid: 'm1', collection, id, op: 'put', hlc: '1' };
          if (data !== undefined) mutation.data = data;
          const schemaOk = Value.Check(Mutation, mutation);
          expect({ collection, id, data, ok: writeProblem(collection, id, data) === null }).toEqual({
            collection,
            id,
            data,
            ok: schemaOk,
          });
        }
  });

  it('names the field that is wrong', () => {
    expect(writeProblem('bad name!', 'x', {})).toMatch(/^\/collection: expected to match/);
    expect(writeProblem('todos', 'has/slash', {})).toMatch(/^\/id: /);
    expect(writeProblem('todos', 'x', [])).toBe('/data: expected an object');
  });
});
