/**
 * Access rules, the module itself: compiling (and refusing with a position), the decision functions,
 * admins bypassing, hidden fields, and the fan-out groups and removals of rules/fanout.ts.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.ts';
import { SyncError } from '../../src/core/errors.ts';
import { compileCollectionRules, compileRule } from '../../src/rules/compile.ts';
import {
  canRead,
  canWrite,
  groupKey,
  hiddenFields,
  hide,
  visibleFields,
  writeKind,
} from '../../src/rules/decide.ts';
import { dataBefore, EventAccess, eventWithout, removalOf } from '../../src/rules/fanout.ts';

const STOCK = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  write: 'record.locationId in auth.claims.locations',
  hide: { costPrice: "!auth.roles.exists(r, r == 'manager')" },
};
const DOCS = {
  read: 'record.ownerId == auth.user',
  write: 'record.ownerId == auth.user && next.ownerId == auth.user',
  create: 'next.ownerId == auth.user',
};

function user(name: string, claims: Record<string, unknown> = {}, roles: string[] = []): Principal {
  return { tenant: 't', user: name, roles, claims, via: 'jwt' };
}
const clerk1 = user('c1', { locations: ['wh-1'] });
const clerk2 = user('c2', { locations: ['wh-2'] });
const manager = user('m', {}, ['manager']);
const admin = user('a', {}, ['admin']);
const apiKey: Principal = { tenant: 't', user: 'key', roles: [], via: 'tenant_key' };

const stock = { rules: compileCollectionRules(STOCK) };
const docs = { rules: compileCollectionRules(DOCS) };
const wh1 = { id: 's1', data: { locationId: 'wh-1', sku: 'A', costPrice: 3.5 } };

function refusal(fn: () => unknown): SyncError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('compiling rules', () => {
  it('refuses a rule that does not parse, with its name and the position of the error', () => {
    const err = refusal(() => compileCollectionRules({ read: 'record.ownerId === auth.user' }));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.details).toMatchObject({ rule: 'read', position: { offset: 17, line: 1, column: 18 } });
    expect(err.message).toContain('rules.read does not compile at line 1, column 18');
  });

  it('refuses unknown variables, non-boolean rules and next in a read rule', () => {
    expect(refusal(() => compileRule('write', 'recrd.x == 1')).details).toMatchObject({
      rule: 'write',
      position: { column: 1 },
    });
    expect(refusal(() => compileRule('read', '"yes"')).message).toContain('must be true or false');
    expect(refusal(() => compileCollectionRules({ read: 'next.a == 1' })).details).toMatchObject({
      rule: 'read',
    });
    expect(refusal(() => compileCollectionRules({ hide: { secret: 'auth.user ==' } })).details).toMatchObject(
      { rule: 'hide.secret' },
    );
  });

  it('has no rules when none are set', () => {
    expect(compileCollectionRules(undefined)).toBeNull();
    expect(compileCollectionRules({})).toBeNull();
  });

  it('knows which auth fields a rule reads, for fan-out groups', () => {
    expect(compileRule('read', STOCK.read).authFields).toEqual(['roles', 'claims']);
    expect(compileRule('read', DOCS.read).authFields).toEqual(['user']);
    expect(compileRule('read', 'auth == auth').authFields).toBeNull();
    expect(compileRule('read', 'has(auth.claims.x)').authFields).toEqual(['claims']);
  });
});

describe('deciding', () => {
  it('lets a clerk read and write their own location only, and a manager read all', () => {
    expect(canRead(clerk1, stock, wh1)).toBe(true);
    expect(canRead(clerk2, stock, wh1)).toBe(false);
    expect(canRead(manager, stock, wh1)).toBe(true);
    expect(canWrite(clerk1, stock, wh1, { ...wh1.data, sku: 'B' })).toBe(true);
    expect(canWrite(clerk2, stock, wh1, { ...wh1.data, sku: 'B' })).toBe(false);
    // The write rule reads the stored record: a create has none, so `record.locationId` refuses.
    expect(canWrite(clerk1, stock, { id: 'new', data: null }, { locationId: 'wh-1' })).toBe(false);
  });

  it('checks the record before and after a write, and create on its own rule', () => {
    const mine = { id: 'd1', data: { ownerId: 'c1', title: 'x' } };
    expect(canWrite(clerk1, docs, mine, { ownerId: 'c1', title: 'y' })).toBe(true);
    expect(canWrite(clerk1, docs, mine, { ownerId: 'c2', title: 'y' })).toBe(false);
    expect(canWrite(clerk2, docs, mine, { ownerId: 'c2' })).toBe(false);
    expect(canWrite(clerk1, docs, { id: 'd2', data: null }, { ownerId: 'c1' })).toBe(true);
    expect(canWrite(clerk1, docs, { id: 'd2', data: null }, { ownerId: 'c2' })).toBe(false);
    // A delete has no next: `next.ownerId` errors, so only the owner... cannot delete with this rule.
    expect(canWrite(clerk1, docs, mine, null)).toBe(false);
    expect(writeKind('delete', mine.data)).toBe('delete');
    expect(writeKind('patch', null)).toBe('create');
    expect(writeKind('put', mine.data)).toBe('update');
  });

  it('lets tenant admins and API keys bypass, and no rules allow everyone', () => {
    expect(canRead(admin, docs, { id: 'd1', data: { ownerId: 'someone' } })).toBe(true);
    expect(canWrite(apiKey, docs, { id: 'd1', data: { ownerId: 'x' } }, { ownerId: 'y' })).toBe(true);
    const open = { rules: null };
    expect(canRead(clerk2, open, wh1)).toBe(true);
    expect(canWrite(clerk2, open, wh1, null)).toBe(true);
    expect(canRead(clerk1, open, { id: 'gone', data: null })).toBe(false);
  });

  it('refuses on a rule error or a missing field, never throws', () => {
    const strict = { rules: compileCollectionRules({ read: 'record.qty > 5' }) };
    expect(canRead(clerk1, strict, { id: 'x', data: { qty: 7 } })).toBe(true);
    expect(canRead(clerk1, strict, { id: 'x', data: { qty: 'many' } })).toBe(false);
    expect(canRead(clerk1, strict, { id: 'x', data: {} })).toBe(false);
  });

  it('hides fields from readers whose hide rule is true', () => {
    expect(hiddenFields(clerk1, stock, wh1)).toEqual(['costPrice']);
    expect(hide(clerk1, stock, wh1)).toEqual({ locationId: 'wh-1', sku: 'A' });
    expect(wh1.data.costPrice).toBe(3.5);
    expect(visibleFields(clerk1, stock, wh1)).toEqual(['locationId', 'sku']);
    expect(hide(manager, stock, wh1)).toBe(wh1.data);
    expect(visibleFields(manager, stock, wh1)).toBeNull();
    const nested = { rules: compileCollectionRules({ hide: { 'price.cost': 'true' } }) };
    expect(hide(clerk1, nested, { id: 'n', data: { price: { cost: 1, list: 2 } } })).toEqual({
      price: { list: 2 },
    });
  });
});

function event(over: Partial<LogEvent>): LogEvent {
  return {
    seq: 5,
    eventId: 'e5',
    kind: 'record',
    collection: 'stock',
    id: 's1',
    op: 'patch',
    version: 2,
    data: { locationId: 'wh-1', sku: 'A', costPrice: 3.5 },
    actor: 'x',
    ts: '2026-12-07T00:00:00.000Z',
    ...over,
  };
}

describe('fan-out', () => {
  it('evaluates a claims rule once per group of equal claims, whatever the users', () => {
    const rule = stock.rules!.read!;
    const a = user('u1', { locations: ['wh-1'] });
    const b = user('u2', { locations: ['wh-1'] });
    expect(groupKey(rule, a)).toBe(groupKey(rule, b));
    expect(groupKey(rule, a)).not.toBe(groupKey(rule, clerk2));
    const docRule = docs.rules!.read!;
    expect(groupKey(docRule, a)).not.toBe(groupKey(docRule, b));

    let tests = 0;
    const counted = {
      rules: {
        ...stock.rules!,
        read: {
          ...rule,
          test: (v: Parameters<typeof rule.test>[0]) => {
            tests += 1;
            return rule.test(v);
          },
        },
      },
    };
    const access = new EventAccess(counted, event({}));
    for (let i = 0; i < 100; i++) {
      expect(access.delivery(user(`w1-${i}`, { locations: ['wh-1'] }))).toBe('send');
      expect(access.delivery(user(`w2-${i}`, { locations: ['wh-2'] }))).toBe('skip');
    }
    // wh-1 group: after readable (1 test); wh-2 group: after and before (2 tests).
    expect(tests).toBe(3);
  });

  it('turns a record that left the readable set into a removal, and a delete of a readable one into the delete', () => {
    const moved = event({ data: { locationId: 'wh-2', sku: 'A' }, previous: { locationId: 'wh-1' } });
    expect(dataBefore(moved)).toEqual({ locationId: 'wh-1', sku: 'A' });
    expect(new EventAccess(stock, moved).delivery(clerk1)).toBe('remove');
    expect(new EventAccess(stock, moved).delivery(clerk2)).toBe('arrive');
    expect(removalOf(moved)).toMatchObject({ op: 'delete', data: null, version: 2, id: 's1' });
    expect(removalOf(moved)).not.toHaveProperty('previous');
    const deleted = event({ op: 'delete', version: 3 });
    expect(new EventAccess(stock, deleted).delivery(clerk1)).toBe('send');
    expect(new EventAccess(stock, deleted).delivery(clerk2)).toBe('skip');
    const created = event({ op: 'put', version: 1, data: { locationId: 'wh-2' } });
    expect(new EventAccess(stock, created).delivery(clerk1)).toBe('skip');
  });

  it('builds one view per distinct set of hidden fields, and hides them in previous too', () => {
    const changed = event({ previous: { costPrice: 3, sku: 'Z' } });
    const access = new EventAccess(stock, changed);
    expect(access.view(clerk1)).toEqual({ key: 'costPrice', paths: ['costPrice'] });
    expect(access.view(manager)).toEqual({ key: '', paths: [] });
    expect(eventWithout(changed, ['costPrice'])).toMatchObject({
      data: { locationId: 'wh-1', sku: 'A' },
      previous: { sku: 'Z' },
    });
    expect(eventWithout(changed, ['costPrice']).data).not.toHaveProperty('costPrice');
  });
});
