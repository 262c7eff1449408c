/**
 * Encryption at rest for the secrets the server must be able to read back (webhook signing secrets):
 * AES-256-GCM under a key the operator supplies (`SYNCBRIDGE_SECRETS_KEY`), never stored beside the data.
 *
 * A sealed value is one string, `sbx1.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts), so it fits
 * the columns that held the plain value and needs no migration: values written before a key was set
 * stay readable and are sealed when next written. The key id (the first 8 bytes of the key's SHA-256)
 * lets a key be rotated: the new key seals, the previous keys listed after it still open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'sbx1.';

/** Decodes an operator-supplied key: 32 bytes as 64 hex digits or as base64/base64url. */
export function parseSecretsKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === 32) return key;
  }
  return null;
}

export class SecretBoxError extends Error {}

export class SecretBox {
  private readonly keys: { id: string; key: Buffer }[];

  /** `keys[0]` seals; every key opens what it sealed. */
  constructor(keys: Buffer[]) {
    if (keys.length === 0) throw new SecretBoxError('a secret box needs at least one key');
    this.keys = keys.map((key) => {
      if (key.length !== 32) throw new SecretBoxError('a secrets key must be 32 bytes');
      return { id: createHash('sha256').update(key).digest('base64url').slice(0, 11), key };
    });
  }

  static isSealed(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  /** The id of the key that seals (the newest); a value sealed under another is re-sealed by a backfill. */
  get sealingKeyId(): string {
    return this.keys[0]!.id;
  }

  /** The ids of every configured key, the sealing one first. */
  get keyIds(): string[] {
    return this.keys.map((k) => k.id);
  }

  /** The key id a sealed value names, or null when it is not of that shape. */
  static keyIdOf(sealed: string): string | null {
    if (!SecretBox.isSealed(sealed)) return null;
    const parts = sealed.slice(PREFIX.length).split('.');
    return parts.length === 4 ? parts[0]! : null;
  }

  seal(plain: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(id));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${PREFIX}${id}.${iv.toString('base64url')}.${ct.toString('base64url')}.${tag.toString('base64url')}`;
  }

  open(sealed: string): string {
    const parts = sealed.slice(PREFIX.length).split('.');
    if (!SecretBox.isSealed(sealed) || parts.length !== 4) throw new SecretBoxError('not a sealed value');
    const [id, iv, ct, tag] = parts as [string, string, string, string];
    const entry = this.keys.find((k) => k.id === id);
    if (!entry) throw new SecretBoxError(`sealed with a key that is not configured (key id ${id})`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SecretBoxError(`sealed value failed authentication (key id ${id})`);
    }
  }
}

/** A JSON value as stored: sealed into a JSON string when a box is configured, else as it is. */
export function sealJson(value: unknown, box: SecretBox | null | undefined): string {
  const json = JSON.stringify(value);
  return box ? JSON.stringify(box.seal(json)) : json;
}

/** The stored value back (already JSON-parsed by the driver or not): opens it when it is sealed. */
export function openJson(stored: unknown, box: SecretBox | null | undefined): unknown {
  const value = typeof stored === 'string' && !SecretBox.isSealed(stored) ? JSON.parse(stored) : stored;
  if (typeof value !== 'string' || !SecretBox.isSealed(value)) return value;
  if (!box) throw new SecretBoxError('a stored value is encrypted; set SYNCBRIDGE_SECRETS_KEY to read it');
  return JSON.parse(box.open(value));
}
