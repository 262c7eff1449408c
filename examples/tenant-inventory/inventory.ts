/**
 * Multi-tenant inventory on syncbridge, as a function: the realtime stock flow of scenario 5
 * (tenant rooms, location rooms, initial sync, stock updates, an offline queue, a sync conflict resolved
 * by a person, the audit trail) done with syncbridge's protocol and REST API.
 *
 *   1. two tenants (acme, globex); acme's `stock_levels` collection uses `strategy: manual`
 *   2. clerks join their location's room, `records:stock_levels?locationId=wh-1`, with `snapshot: true`
 *      (the initial sync); the manager watches every location; globex sees only its own records
 *   3. stock movements are `increment`s: commutative, they never conflict
 *   4. a clerk goes offline, counts the shelf and queues an absolute set (`patch qty` with `baseVersion`);
 *      meanwhile the counter sells; back online he resumes from his last seq and flushes his queue: the
 *      stale absolute set becomes a stored conflict, pushed to him and to the manager
 *   5. the manager resolves it from an outdated view (refused: the record moved on), re-reads the
 *      conflict and resolves it with merged data; the resolution reaches every room and is logged
 *   6. the audit trail: the record's history with what changed, the resolution event, one user's writes
 *   7. with the example's plugins on the server (`--embedded`): a projection of stock per product and a
 *      middleware that refuses overselling
 *   8. access rules: clerks' tokens carry their locations as claims, and `stock_levels` lets a clerk read
 *      and write only the stock of those locations (docs/access-rules.md): carl can neither change wh-2's
 *      stock nor see it, even by joining the wh-2 room
 *
 * `index.ts` runs it from the command line; packages/server/test/docs/inventory-example.test.ts runs it
 * against real servers.
 */
import { randomBytes } from 'node:crypto';
import type { Conflict, LogEvent, MutationResult, SyncRecord } from '@syncbridge/protocol';
import type { StockByProduct } from './plugins.ts';
import { type EventFrame, mintToken, RealtimeClient, Rest } from './wire.ts';

export interface InventoryOptions {
  /** The server's base URL, e.g. http://127.0.0.1:4025 */
  url: string;
  /** The admin key (mints the users' tokens). */
  adminKey: string;
  /** Receives the transcript, one line at a time. */
  log?: (line: string) => void;
  /** The two tenants. Default: fresh ones per run (`acme-<hex>`, `globex-<hex>`), so runs never mix. */
  tenants?: { acme: string; globex: string };
  /** Longest wait for any one reply or event, in ms. Default: 5000 */
  timeoutMs?: number;
}

type User = 'maria' | 'carl' | 'dana' | 'gina';

export interface InventoryResult {
  tenants: { acme: string; globex: string };
  lines: string[];
  /** The record ids each user received in its initial sync. */
  initialSync: Record<User, string[]>;
  /** Every live stock update each user received: `<id> v<version> qty <qty> by <actor>`. */
  live: Record<User, string[]>;
  /** What the clerk's queued absolute count got when he flushed his queue. */
  flushed: MutationResult;
  /** The conflict as the clerk received it in the `conflict` message. */
  conflict: Conflict;
  /** The resolve made on an outdated view: its HTTP status and error code. */
  staleResolve: { status: number; code: string };
  /** The accepted resolution: its result and the conflict, now resolved. */
  resolution: MutationResult;
  /** The record's history: version, op, actor, qty. */
  history: { version: number; op: string; actor: string; qty: number | null }[];
  /** The `syncbridge.conflict_resolved` event of the audit trail. */
  resolvedEvent: LogEvent;
  /** Each tenant's stock at the end, by record id. */
  stock: { acme: Record<string, number>; globex: Record<string, number> };
  /** With the example's plugins on the server: the projection's state and the refused oversell. */
  plugins: { stockByProduct: StockByProduct; oversell: MutationResult } | null;
  /** Access rules: carl's write to wh-2's stock, and what joining the wh-2 room showed him. */
  rules: { crossWrite: MutationResult; crossRoom: string[] };
}

/** Clerks read and write the stock of their own locations; the manager (admin role) bypasses rules. */
export const STOCK_RULES = {
  read: 'record.locationId in auth.claims.locations',
  write: 'record.locationId in auth.claims.locations',
  create: 'next.locationId in auth.claims.locations',
};

const COLLECTION = 'stock_levels';

function qtyOf(data: Record<string, unknown> | null | undefined): number {
  return Number(data?.qty);
}

function describeUpdate(e: EventFrame): string {
  return `${e.id} v${e.version} qty ${qtyOf(e.data)} by ${e.actor}`;
}

export async function runInventoryExample(options: InventoryOptions): Promise<InventoryResult> {
  const url = options.url.replace(/\/+$/, '');
  const wsUrl = `${url.replace(/^http/, 'ws')}/v1/realtime`;
  const timeoutMs = options.timeoutMs ?? 5000;
  const run = randomBytes(4).toString('hex');
  const tenants = options.tenants ?? { acme: `acme-${run}`, globex: `globex-${run}` };
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    options.log?.(line);
  };
  let mids = 0;
  const mid = () => `${run}-${++mids}`;
  const clients: RealtimeClient[] = [];
  const live: Record<User, string[]> = { maria: [], carl: [], dana: [], gina: [] };

  try {
    // 1. Tenants and users. Tokens carry the tenant: nothing a token does can reach another tenant.
    log(`== tenants: acme (${tenants.acme}), globex (${tenants.globex})`);
    const token = {
      maria: await mintToken(url, options.adminKey, tenants.acme, 'maria', ['admin']),
      carl: await mintToken(url, options.adminKey, tenants.acme, 'carl', [], { locations: ['wh-1'] }),
      dana: await mintToken(url, options.adminKey, tenants.acme, 'dana', [], { locations: ['wh-2'] }),
      gina: await mintToken(url, options.adminKey, tenants.globex, 'gina', ['admin']),
    };
    const acme = new Rest(url, { token: token.maria });
    const globex = new Rest(url, { token: token.gina });
    log('acme: maria (manager, admin role), carl (clerk at wh-1), dana (clerk at wh-2); globex: gina');
    await acme.ok('PUT', `/v1/collections/${COLLECTION}`, { strategy: 'manual', rules: STOCK_RULES });
    log(`acme: ${COLLECTION} uses strategy manual (stale absolute sets wait for a person)`);
    log(`acme: ${COLLECTION} rules: clerks read and write the stock of the locations in their token`);
    const seed = async (rest: Rest, who: string, sku: string, locationId: string, qty: number) => {
      const id = `${sku}@${locationId}`;
      const record = await rest.ok<SyncRecord>('PUT', `/v1/records/${COLLECTION}/${encodeURIComponent(id)}`, {
        sku,
        locationId,
        qty,
      });
      log(`${who} put ${id} qty ${qty} -> v${record.version}`);
    };
    await seed(acme, 'maria', 'drill', 'wh-1', 20);
    await seed(acme, 'maria', 'drill', 'wh-2', 5);
    await seed(acme, 'maria', 'saw', 'wh-1', 8);
    await seed(globex, 'gina', 'drill', 'wh-1', 99);

    // 2. join-tenant + initial-sync: connect with the token, subscribe to the room with a snapshot.
    log('== join: location rooms with an initial sync');
    const wh1 = `records:${COLLECTION}?locationId=wh-1`;
    const wh2 = `records:${COLLECTION}?locationId=wh-2`;
    const all = `records:${COLLECTION}`;
    const initialSync = {} as Record<User, string[]>;
    const join = async (user: User, channel: string) => {
      const client = await RealtimeClient.connect(user, wsUrl, token[user], timeoutMs);
      clients.push(client);
      const snap = await client.subscribeWithSnapshot(channel);
      const records = [...snap.records].sort((a, b) => a.id.localeCompare(b.id));
      initialSync[user] = records.map((r) => r.id);
      log(
        `${user} joined ${channel}: initial sync of ${records.length} record(s): ` +
          records.map((r) => `${r.id} qty ${qtyOf(r.data)}`).join(', '),
      );
      return { client, channel, cursor: snap.cursor };
    };
    const rooms = {
      maria: await join('maria', all),
      carl: await join('carl', wh1),
      dana: await join('dana', wh2),
      gina: await join('gina', all),
    };
    const maria = rooms.maria.client;
    const dana = rooms.dana.client;
    let carl = rooms.carl.client;

    /** Waits until each user in `to` received the event with this seq, and logs it as they saw it. */
    const delivered = async (seq: number, to: User[]) => {
      for (const user of to) {
        const room = rooms[user];
        const event = await room.client.waitForSeq(room.channel, seq);
        live[user].push(describeUpdate(event));
        log(`  ${user} <- inventory-updated ${describeUpdate(event)}`);
      }
    };

    // 3. inventory-update: stock movements are increments. They commute, so they never conflict.
    log('== stock movements (increments)');
    const move = async (client: RealtimeClient, id: string, delta: number, why: string) => {
      const reply = await client.request({
        type: 'mutate',
        mutations: [{ mid: mid(), collection: COLLECTION, id, op: 'increment', data: { qty: delta } }],
      });
      const result = (reply.results as MutationResult[])[0]!;
      const outcome =
        result.status === 'applied'
          ? `applied v${result.version} (qty ${qtyOf(result.record?.data)})`
          : `${result.status} ${result.error?.code}: ${result.error?.message}`;
      log(`${client.name} ${why}: increment ${id} qty ${delta > 0 ? '+' : ''}${delta} -> ${outcome}`);
      return result;
    };
    const sold = await move(carl, 'drill@wh-1', -3, 'sold 3 drills');
    await delivered(sold.seq!, ['carl', 'maria']);
    const received = await move(dana, 'drill@wh-2', 10, 'received 10 drills');
    await delivered(received.seq!, ['dana', 'maria']);
    const saws = await move(carl, 'saw@wh-1', -6, 'sold 6 saws');
    await delivered(saws.seq!, ['carl', 'maria']);

    // 4. Offline queue: carl goes offline, counts the shelf, queues an absolute set on the version he has.
    log('== offline queue and a sync conflict');
    const lastSeq = Math.max(rooms.carl.cursor, ...carl.events(wh1).map((e) => e.seq));
    const known = carl.events(wh1).filter((e) => e.id === 'drill@wh-1');
    const baseVersion = known[known.length - 1]!.version!;
    await carl.close();
    log(
      `carl went offline (last seq ${lastSeq}; drill@wh-1 at v${baseVersion}, qty ${qtyOf(sold.record?.data)})`,
    );
    const queued = {
      mid: mid(),
      collection: COLLECTION,
      id: 'drill@wh-1',
      op: 'patch',
      data: { qty: 16 },
      baseVersion,
    };
    log(`carl, offline, counted 16 drills on the shelf: queued patch qty 16 on base version ${baseVersion}`);
    const counter = await move(maria, 'drill@wh-1', -2, 'sold 2 drills at the counter');
    await delivered(counter.seq!, ['maria']);

    // Back online: resume the room from the last seq (the backlog he missed), then flush the queue.
    carl = await RealtimeClient.connect('carl', wsUrl, token.carl, timeoutMs);
    clients.push(carl);
    rooms.carl = { client: carl, channel: wh1, cursor: lastSeq };
    await carl.request({ type: 'subscribe', channel: wh1, since: lastSeq });
    log(`carl reconnected and resumed ${wh1} since seq ${lastSeq}`);
    await delivered(counter.seq!, ['carl']);
    const flushReply = await carl.request({ type: 'mutate', mutations: [queued] });
    const flushed = (flushReply.results as MutationResult[])[0]!;
    log(`carl flushed his queue (1 change): ${flushed.status}: ${flushed.error?.message}`);
    const isThis = (f: { type: string } & Record<string, unknown>) =>
      f.type === 'conflict' && (f.conflict as Conflict).id === flushed.conflictId;
    const conflict = (await carl.waitFor(isThis, 'conflict message')).conflict as Conflict;
    log(
      `  carl <- sync-conflict: base qty ${qtyOf(conflict.base)} (v${conflict.baseVersion}), ` +
        `server qty ${qtyOf(conflict.server)} (v${conflict.serverVersion}), his qty ${qtyOf(conflict.client)}`,
    );
    const seenByManager = (await maria.waitFor(isThis, 'conflict message')).conflict as Conflict;
    log(
      `  maria <- sync-conflict (tenant admin): ${seenByManager.actor}'s change to ${seenByManager.recordId}`,
    );

    // 5. resolve-conflict. While maria reviews, carl sells one more: her first decision is outdated.
    log('== resolve the conflict');
    const open = await acme.ok<{ conflicts: Conflict[] }>('GET', '/v1/conflicts?status=open');
    log(`maria: GET /v1/conflicts lists ${open.conflicts.length} open conflict(s)`);
    const oneMore = await move(carl, 'drill@wh-1', -1, 'sold 1 drill');
    await delivered(oneMore.seq!, ['carl', 'maria']);
    // The count found one drill fewer than the system had (16 vs 17): apply that shrinkage.
    const shrinkage = qtyOf(conflict.client) - qtyOf(conflict.base);
    const decide = (server: Record<string, unknown>) => ({ ...server, qty: qtyOf(server) + shrinkage });
    const stale = await acme.call<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/conflicts/${conflict.id}/resolve`,
      { resolution: 'merge', data: decide(seenByManager.server) },
    );
    const staleResolve = { status: stale.status, code: stale.body.error.code };
    log(
      `maria resolved with merge qty ${qtyOf(decide(seenByManager.server))}: HTTP ${stale.status} ${stale.body.error.message}`,
    );
    const fresh = await acme.ok<Conflict>('GET', `/v1/conflicts/${conflict.id}`);
    log(
      `maria re-read the conflict: server qty ${qtyOf(fresh.server)} (v${fresh.serverVersion}), still ${fresh.status}`,
    );
    const resolveReply = await maria.request({
      type: 'resolve',
      conflictId: conflict.id,
      resolution: 'merge',
      data: decide(fresh.server),
    });
    const resolution = (resolveReply.results as MutationResult[])[0]!;
    log(
      `maria resolved with merge qty ${qtyOf(decide(fresh.server))}: ${resolution.status}, ` +
        `drill@wh-1 now v${resolution.version}`,
    );
    await delivered(resolution.seq!, ['carl', 'maria']);
    const closedConflict = (
      await carl.waitFor(
        (f) => f.type === 'conflict' && (f.conflict as Conflict).status === 'resolved',
        'resolved conflict',
      )
    ).conflict as Conflict;
    log(`  carl <- conflict-resolved: ${closedConflict.resolution} by ${closedConflict.resolvedBy}`);

    // 6. The audit trail.
    log('== audit');
    const history = await acme.ok<{
      versions: {
        version: number;
        op: string;
        actor: string;
        data: Record<string, unknown> | null;
        changes: { path: string; from?: unknown; to?: unknown }[];
      }[];
    }>('GET', `/v1/records/${COLLECTION}/${encodeURIComponent('drill@wh-1')}/history`);
    for (const v of history.versions) {
      const change = v.changes.find((c) => c.path === 'qty');
      const what =
        change && change.from !== undefined ? `qty ${change.from} -> ${change.to}` : `qty ${qtyOf(v.data)}`;
      log(`history drill@wh-1 v${v.version} ${v.op} by ${v.actor}: ${what}`);
    }
    const resolvedEvents = await acme.ok<{ events: LogEvent[] }>(
      'GET',
      '/v1/events?type=syncbridge.conflict_resolved',
    );
    const resolvedEvent = resolvedEvents.events.find(
      (e) => (e.payload as { conflictId?: string }).conflictId === conflict.id,
    )!;
    const payload = resolvedEvent.payload as { id: string; resolution: string; version: number };
    log(
      `event seq ${resolvedEvent.seq} syncbridge.conflict_resolved: ${resolvedEvent.actor} resolved ` +
        `${payload.id} with ${payload.resolution} -> v${payload.version}`,
    );
    const byCarl = await acme.ok<{ events: LogEvent[] }>(
      'GET',
      `/v1/events?actor=carl&collection=${COLLECTION}`,
    );
    log(
      `GET /v1/events?actor=carl&collection=${COLLECTION}: ` +
        byCarl.events.map((e) => `v${e.version} ${e.id} ${e.op}`).join(', '),
    );

    // 7. The example's plugins, when the server runs them (node index.ts --embedded).
    let plugins: InventoryResult['plugins'] = null;
    const projection = await acme.call<{ state: StockByProduct }>('GET', '/v1/projections/stock_by_product');
    if (projection.status === 404) {
      log('== plugins: not registered on this server (run with --embedded to see them)');
    } else {
      log('== plugins');
      const state = projection.body.state;
      for (const sku of Object.keys(state).sort()) {
        const byLocation = Object.entries(state[sku]!).sort(([a], [b]) => a.localeCompare(b));
        const total = byLocation.reduce((sum, [, qty]) => sum + qty, 0);
        log(
          `projection stock_by_product: ${sku} ${total} (${byLocation.map(([l, q]) => `${l} ${q}`).join(', ')})`,
        );
      }
      const oversell = await move(carl, 'saw@wh-1', -10, 'tried to sell 10 saws');
      plugins = { stockByProduct: state, oversell };
    }

    // 8. Access rules inside the tenant: carl's token says wh-1. He may not read wh-2 stock, so for him
    // drill@wh-2 does not exist: his change is refused as the create it would be.
    log('== access rules');
    const crossWrite = await move(carl, 'drill@wh-2', -1, 'tried to take a drill from wh-2');
    const peek = await carl.subscribeWithSnapshot(wh2);
    const crossRoom = peek.records.map((r) => r.id);
    log(`carl joined ${wh2}: initial sync of ${crossRoom.length} record(s)`);

    // Isolation: globex saw nothing of acme.
    log('== isolation');
    await rooms.gina.client.request({ type: 'ping' });
    log(`gina (globex) received ${rooms.gina.client.events().length} event(s) from acme`);
    const stockOf = async (rest: Rest) => {
      const list = await rest.ok<{ records: SyncRecord[] }>('GET', `/v1/records/${COLLECTION}`);
      return Object.fromEntries(list.records.map((r) => [r.id, qtyOf(r.data)]));
    };
    const stock = { acme: await stockOf(acme), globex: await stockOf(globex) };
    const show = (s: Record<string, number>) =>
      Object.entries(s)
        .map(([id, qty]) => `${id} ${qty}`)
        .join(', ');
    log(`acme stock: ${show(stock.acme)}`);
    log(`globex stock: ${show(stock.globex)}`);
    return {
      tenants,
      lines,
      initialSync,
      live,
      flushed,
      conflict,
      staleResolve,
      resolution,
      history: history.versions.map((v) => ({
        version: v.version,
        op: v.op,
        actor: v.actor,
        qty: v.data ? qtyOf(v.data) : null,
      })),
      resolvedEvent,
      stock,
      plugins,
      rules: { crossWrite, crossRoom },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
