/**
 * The bank-trading bridge walkthrough (scenario 1) against a syncbridge server: Vyomo (trading) and BFC
 * (banking) exchange their event types through syncbridge in both directions. Vyomo publishes over REST
 * with its platform token; BFC posts its own signed webhooks to syncbridge's inbound endpoint. syncbridge
 * delivers each side's events to the other as signed webhooks, which both platforms verify. BFC goes down
 * for a while; its deliveries wait and retry, the health page shows it, and when it is back it catches up
 * in order.
 */
import { createHmac } from 'node:crypto';
import { Platform } from './platforms.ts';

export interface BridgeOptions {
  url: string;
  adminKey: string;
  tenant: string;
  /** A token of the tenant for the `vyomo` platform (its events' source is pinned to vyomo). */
  vyomoToken: string;
  /** The secret of the server's inbound webhook source `bfc` (config `inbound`, scheme hmac). */
  bfcInboundSecret: string;
  log: (line: string) => void;
}

export interface BridgeResult {
  bfc: Platform;
  vyomo: Platform;
  /** Seqs of the events Vyomo published while BFC was down. */
  missed: number[];
}

/**
 * The server settings the walkthrough needs: webhooks may reach the platforms on this machine, retries
 * follow the long schedule (an outage of hours is ridden out; "retry now" brings the next one forward),
 * and BFC's own webhooks come in at /v1/inbound/bfc, signed with a hex HMAC, de-duplicated by `eventId`.
 */
export function bridgeConfig(tenant: string, bfcInboundSecret: string) {
  return {
    webhookAllowPrivate: ['127.0.0.1/32'],
    webhookRetrySchedule: 'long',
    inbound: {
      bfc: { tenant, platform: 'bfc', scheme: 'hmac' as const, secret: bfcInboundSecret, idField: 'eventId' },
    },
  };
}

/** Scenario 1's event types, by the platform that emits them. */
export const VYOMO_EVENTS = [
  'trade_opened',
  'trade_closed',
  'position_updated',
  'balance_changed',
  'risk_alert',
];
export const BFC_EVENTS = [
  'account_created',
  'balance_updated',
  'credit_approved',
  'kyc_completed',
  'notification_sent',
];

// biome-ignore lint/suspicious/noExplicitAny: REST answers are read field by field
type Json = any;

async function until<T>(
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function runBankTradingBridge(o: BridgeOptions): Promise<BridgeResult> {
  const call = async (method: string, path: string, body?: unknown, auth: 'admin' | 'vyomo' = 'admin') => {
    const res = await fetch(`${o.url}${path}`, {
      method,
      headers: {
        ...(auth === 'admin'
          ? { 'x-api-key': o.adminKey, 'x-tenant': o.tenant }
          : { authorization: `Bearer ${o.vyomoToken}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json: Json = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const bfc = new Platform('bfc');
  const vyomo = new Platform('vyomo');
  await bfc.start();
  await vyomo.start();
  try {
    // 1. Each platform registers the event types it wants from the other; BFC wants them in order.
    const toBfc = await call('POST', '/v1/webhooks', {
      name: 'BFC Trade Notifications',
      platform: 'bfc',
      url: bfc.url,
      eventTypes: ['trade_*', 'position_updated', 'balance_changed', 'risk_alert'],
      delivery: 'ordered',
    });
    bfc.useSecret(toBfc.secret);
    o.log(`registered ${toBfc.name} -> bfc (${toBfc.eventTypes.join(', ')}; ${toBfc.delivery})`);
    const toVyomo = await call('POST', '/v1/webhooks', {
      name: 'Vyomo Banking Updates',
      platform: 'vyomo',
      url: vyomo.url,
      eventTypes: BFC_EVENTS,
    });
    vyomo.useSecret(toVyomo.secret);
    o.log(`registered ${toVyomo.name} -> vyomo (${toVyomo.eventTypes.length} event types)`);

    // 2. Vyomo -> BFC: a trade opens.
    const publish = (type: string, payload: Record<string, unknown>) =>
      call('POST', '/v1/events', { type, payload, target: 'bfc', priority: 1 }, 'vyomo');
    const opened = await publish('trade_opened', { tradeId: 'T-1', symbol: 'NIFTY', qty: 50 });
    o.log(`vyomo published trade_opened NIFTY (seq ${opened.seq})`);
    const [first] = await bfc.waitFor(1);
    o.log(
      `bfc <- ${first!.type} ${first!.data.symbol} from ${first!.source} (seq ${first!.seq}), signatures verified`,
    );

    // 3. BFC -> Vyomo, through syncbridge's inbound webhook; a re-sent webhook is a duplicate.
    const inbound = async () => {
      const body = JSON.stringify({
        eventId: 'bfc-evt-1001',
        type: 'balance_updated',
        account: 'A-1001',
        balance: 250_000,
      });
      const res = await fetch(`${o.url}/v1/inbound/bfc`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-webhook-signature': createHmac('sha256', o.bfcInboundSecret).update(body).digest('hex'),
        },
        body,
      });
      return (await res.json()) as Json;
    };
    const posted = await inbound();
    o.log(`bfc posted balance_updated A-1001 to /v1/inbound/bfc -> seq ${posted.seq}`);
    const again = await inbound();
    o.log(`bfc re-sent it -> duplicate: ${again.duplicate}, seq ${again.seq}`);
    const [update] = await vyomo.waitFor(1);
    o.log(
      `vyomo <- ${update!.type} ${update!.data.account} balance ${update!.data.balance} (seq ${update!.seq})`,
    );

    // 4. BFC goes down; Vyomo keeps trading.
    await bfc.stop();
    o.log('bfc went down');
    const missed: number[] = [];
    missed.push(
      (await publish('trade_closed', { tradeId: 'T-1', symbol: 'NIFTY', pnl: 5000, exitPrice: 22500 })).seq,
    );
    missed.push((await publish('position_updated', { symbol: 'NIFTY', qty: 0 })).seq);
    missed.push((await publish('balance_changed', { wallet: 'W-7', balance: 105_000 })).seq);
    o.log(`vyomo published trade_closed, position_updated, balance_changed (seqs ${missed.join(', ')})`);
    const down = await until(
      async () => (await call('GET', '/v1/sync/health')).health.find((h: Json) => h.platform === 'bfc'),
      (h: Json) => h?.status === 'degraded',
      "bfc's first failed delivery",
    );
    o.log(`health: bfc ${down.status}, ${down.pendingEvents} pending, ${down.failedEvents} failed`);

    // 5. BFC is back: retry now instead of waiting for the next scheduled attempt.
    await bfc.start();
    o.log('bfc came back');
    const trigger = await call('POST', '/v1/sync/trigger', { platform: 'bfc' });
    o.log(trigger.message);
    const caughtUp = (await bfc.waitFor(4)).slice(1);
    o.log(`bfc <- ${caughtUp.map((e) => `${e.type} (seq ${e.seq})`).join(', ')}: caught up, in order`);
    const after = await until(
      async () => (await call('GET', '/v1/sync/health')).health as Json[],
      (h) => h.every((p: Json) => p.pendingEvents === 0 && p.status === 'active'),
      'every platform healthy',
    );
    for (const p of after) {
      o.log(`health: ${p.platform} ${p.status}, ${p.pendingEvents} pending, ${p.failedEvents} failed`);
    }
    const stats = (await call('GET', '/v1/stats?days=1')).stats;
    o.log(
      `stats: ${stats.completedEvents} delivered, ${stats.failedEvents} failed, success rate ${stats.successRate}%`,
    );
    o.log(`signatures refused: bfc ${bfc.refused}, vyomo ${vyomo.refused}`);
    return { bfc, vyomo, missed };
  } finally {
    await bfc.stop();
    await vyomo.stop();
  }
}
