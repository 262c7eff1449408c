/**
 * The webhook subsystem's durable model and the contract each store implements for it. The types live
 * beside the drivers (store/webhook-types.ts), so a driver never imports the webhook logic; this module
 * names them for the webhook code.
 */

/** The commit's webhook outbox (defined beside its user, the write path: log/outbox.ts). */
export type { Outbox } from '../log/outbox.ts';
export * from '../store/webhook-types.ts';
