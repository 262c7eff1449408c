/**
 * Webhook signatures, outbound and inbound.
 *
 * Every delivery carries two signatures of the same raw body:
 * - `X-Webhook-Signature`: hex HMAC-SHA256 of the body, keyed by the secret string as registered
 *   (scenario 1's `createHmac('sha256', secret).update(body).digest('hex')`), with `X-Event-Id`;
 * - Standard Webhooks: `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix
 *   seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. The key
 *   is the base64 part of a `whsec_…` secret, or the secret's own bytes for any other secret (the
 *   `standardwebhooks` library's `{ format: 'raw' }`).
 * During a secret rotation's overlap window both secrets sign: the values are listed newest first,
 * comma-separated in `X-Webhook-Signature` and space-separated in `webhook-signature` (as the standard says).
 */
import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';

const WHSEC = 'whsec_';

export function generateSecret(): string {
  return WHSEC + randomBytes(32).toString('base64');
}

/** The Standard Webhooks key of a secret. */
export function standardKey(secret: string): Buffer {
  if (secret.startsWith(WHSEC)) return Buffer.from(secret.slice(WHSEC.length), 'base64');
  return Buffer.from(secret, 'latin1');
}

/** Why a secret cannot be used, or null. */
export function secretProblem(secret: string): string | null {
  if (secret.startsWith(WHSEC)) {
    const b64 = secret.slice(WHSEC.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return 'a whsec_ secret must be followed by base64';
    const key = Buffer.from(b64, 'base64');
    if (key.length < 16 || key.length > 64) return 'a whsec_ secret must hold 16 to 64 bytes';
  }
  return null;
}

export function maskSecret(secret: string): string {
  const prefix = secret.startsWith(WHSEC) ? WHSEC : '';
  return `${prefix}…${secret.slice(-4)}`;
}

/** A secret's two HMAC keys, made once: the secret's own string (hex header) and its Standard key. */
interface SigningKeys {
  hex: KeyObject;
  standard: KeyObject;
}

/** Keys remembered at most (every live endpoint secret, a few per endpoint; forgotten all at once past this). */
const MAX_KEYS = 4096;
const keys = new Map<string, SigningKeys>();

function keysOf(secret: string): SigningKeys {
  let k = keys.get(secret);
  if (!k) {
    if (keys.size >= MAX_KEYS) keys.clear();
    k = { hex: createSecretKey(Buffer.from(secret, 'utf8')), standard: createSecretKey(standardKey(secret)) };
    keys.set(secret, k);
  }
  return k;
}

export function hexSignature(secret: string, body: string): string {
  return createHmac('sha256', keysOf(secret).hex).update(body).digest('hex');
}

export function standardSignature(secret: string, id: string, timestamp: number, body: string): string {
  return createHmac('sha256', keysOf(secret).standard).update(`${id}.${timestamp}.${body}`).digest('base64');
}

/** The signature headers of one attempt, signed with every secret given (newest first). */
export function signatureHeaders(
  secrets: readonly string[],
  eventId: string,
  body: string,
  nowMs: number,
): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'x-webhook-signature': secrets.map((s) => hexSignature(s, body)).join(','),
    'x-event-id': eventId,
    'webhook-id': eventId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => `v1,${standardSignature(s, eventId, timestamp, body)}`).join(' '),
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Inbound, Standard Webhooks: checks the signature and the timestamp's freshness. */
export function verifyStandard(
  secret: string,
  headers: { id?: string; timestamp?: string; signature?: string },
  body: string,
  nowMs: number,
  toleranceSeconds: number,
): string | null {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return 'missing webhook-id, webhook-timestamp or webhook-signature';
  if (!/^\d{1,12}$/.test(timestamp)) return 'webhook-timestamp is not a unix time';
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceSeconds)
    return 'webhook-timestamp is too old or too new';
  const expected = standardSignature(secret, id, Number(timestamp), body);
  for (const part of signature.split(' ')) {
    const [version, value] = part.split(',');
    if (version === 'v1' && value !== undefined && safeEqual(value, expected)) return null;
  }
  return 'no matching signature';
}

/** Inbound, HMAC header: hex HMAC-SHA256 of the raw body, optionally as `sha256=<hex>`, any of a list. */
export function verifyHex(secret: string, header: string | undefined, body: string): string | null {
  if (!header) return 'missing signature header';
  const expected = hexSignature(secret, body);
  for (const part of header.split(',')) {
    const value = part
      .trim()
      .replace(/^sha256=/, '')
      .toLowerCase();
    if (safeEqual(value, expected)) return null;
  }
  return 'no matching signature';
}
