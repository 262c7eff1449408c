/**
 * Verification of the server's own HS256 tokens with node:crypto, synchronously: an HMAC of the
 * signing input compared in constant time, then the claims jose's jwtVerify checks (exp, nbf, iat
 * types, issuer, audience). jose verifies through WebCrypto, whose per-call cost (an async job and its
 * promise plumbing, ~200 µs on a loaded machine) dominated a reconnect storm: 10,000 clients resuming
 * after a restart are 10,000 verifications at once. This costs a few µs each. RS256/ES256 tokens from
 * an outside issuer still go through jose (tokens.ts).
 */
import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { JWTPayload } from 'jose';

/** A verification failure; `code` is jose's for the same case, which tokens.ts maps to an error. */
export class TokenCheckError extends Error {
  constructor(
    readonly code:
      | 'ERR_JWS_INVALID'
      | 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
      | 'ERR_JWT_EXPIRED'
      | 'ERR_JWT_CLAIM_VALIDATION_FAILED'
      | 'ERR_JWT_INVALID',
    message: string,
  ) {
    super(message);
  }
}

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Verifies an HS256 compact JWS with `secret` and returns its payload, or throws TokenCheckError.
 * `issuer` must match `iss`; `audience`, when given, must be `aud` or one of its entries.
 */
export function verifyHs256(
  token: string,
  secret: KeyObject,
  expect: { issuer: string; audience?: string | undefined },
  nowSeconds = Math.floor(Date.now() / 1000),
): JWTPayload {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenCheckError('ERR_JWS_INVALID', 'Invalid Compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  if (!isObject(header)) throw new TokenCheckError('ERR_JWS_INVALID', 'JWS Protected Header is invalid');
  if (header.alg !== 'HS256') throw new TokenCheckError('ERR_JWS_INVALID', 'alg not allowed');
  // Extensions this verifier does not implement (jose refuses unknown `crit` too; `b64: false` changes
  // what is signed).
  if (header.crit !== undefined || header.b64 !== undefined)
    throw new TokenCheckError('ERR_JWS_INVALID', 'unsupported JWS header parameter');
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw new TokenCheckError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'signature verification failed');
  const payload = decodeJson(p);
  if (!isObject(payload))
    throw new TokenCheckError('ERR_JWT_INVALID', 'JWT Claims Set must be a top-level JSON object');
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number')
      throw new TokenCheckError('ERR_JWT_CLAIM_VALIDATION_FAILED', `"${claim}" claim must be a number`);
  }
  if (payload.iss !== expect.issuer)
    throw new TokenCheckError('ERR_JWT_CLAIM_VALIDATION_FAILED', 'unexpected "iss" claim value');
  if (expect.audience !== undefined) {
    const aud = payload.aud;
    const ok =
      typeof aud === 'string' ? aud === expect.audience : Array.isArray(aud) && aud.includes(expect.audience);
    if (!ok) throw new TokenCheckError('ERR_JWT_CLAIM_VALIDATION_FAILED', 'unexpected "aud" claim value');
  }
  if (typeof payload.nbf === 'number' && payload.nbf > nowSeconds)
    throw new TokenCheckError('ERR_JWT_CLAIM_VALIDATION_FAILED', '"nbf" claim timestamp check failed');
  if (typeof payload.exp === 'number' && payload.exp <= nowSeconds)
    throw new TokenCheckError('ERR_JWT_EXPIRED', '"exp" claim timestamp check failed');
  return payload as JWTPayload;
}
