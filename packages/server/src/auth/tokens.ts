/**
 * User tokens: HS256 JWTs minted with the server's secret, and optionally RS256/ES256 tokens from an
 * identity provider (a PEM public key or a JWKS URL). Claims: `sub` (user), `tenant`, `roles`,
 * optional `platform`, and for access rules an object of `claims` (an outside issuer's at `claimsPath`). Only the configured algorithms are accepted, so `alg: none` and algorithm
 * confusion are refused by construction.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { MAX_TOKEN_LENGTH, SyncError } from '@syncbridge/protocol';
import {
  createRemoteJWKSet,
  importSPKI,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from 'jose';
import { verifyHs256 } from './hs256.ts';
import type { Principal } from './principal.ts';

export interface TokenConfig {
  jwtSecret: string;
  /** PEM (SPKI) public key for RS256 tokens from an outside issuer. */
  jwtPublicKey?: string;
  /** JWKS URL of an outside issuer (RS256/ES256). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Where an outside issuer's token keeps the access-rule claims: a claim name or a dotted path. */
  claimsPath?: string;
}

/** Most bytes of JSON the access-rule claims of one token may hold. */
export const MAX_CLAIMS_BYTES = 8 * 1024;

/**
 * The access-rule claims of a token's payload: the object at `path` (a claim named so, else a dotted
 * path), or null when there is none. Anything else there (a string, a list) is refused.
 */
export function claimsAt(payload: Record<string, unknown>, path: string): Record<string, unknown> | null {
  let value: unknown = payload[path];
  if (value === undefined && path.includes('.')) {
    value = payload;
    for (const part of path.split('.')) {
      value =
        typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
    }
  }
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SyncError('UNAUTHORIZED', `token claims at ${path} are not an object`);
  }
  if (JSON.stringify(value).length > MAX_CLAIMS_BYTES) {
    throw new SyncError('UNAUTHORIZED', `token claims at ${path} are over ${MAX_CLAIMS_BYTES} bytes`);
  }
  return value as Record<string, unknown>;
}

export interface VerifiedToken {
  principal: Principal;
  /** Expiry in ms since the epoch, or null when the token has none. */
  expiresAt: number | null;
}

const TENANT = /^[A-Za-z0-9_.-]{1,128}$/;
/** The longest `sub` (user) a token may name: what POST /v1/auth/token takes as `user`. */
const MAX_SUBJECT_LENGTH = 256;

export class TokenService {
  private readonly secret: KeyObject;
  private publicKey: ReturnType<typeof importSPKI> | null = null;
  private readonly jwks: JWTVerifyGetKey | null;

  constructor(private readonly config: TokenConfig) {
    this.secret = createSecretKey(Buffer.from(config.jwtSecret, 'utf8'));
    if (config.jwtPublicKey) this.publicKey = importSPKI(config.jwtPublicKey, 'RS256');
    this.jwks = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl)) : null;
  }

  async mint(claims: {
    tenant: string;
    user: string;
    roles?: string[];
    platform?: string;
    ttlSeconds?: number;
    /** What access rules read as `auth.claims`. */
    claims?: Record<string, unknown>;
  }): Promise<{ token: string; expiresAt: string }> {
    const ttl = claims.ttlSeconds ?? 3600;
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const payload: JWTPayload = { tenant: claims.tenant, roles: claims.roles ?? [] };
    if (claims.platform) payload.platform = claims.platform;
    if (claims.claims && Object.keys(claims.claims).length > 0) {
      if (JSON.stringify(claims.claims).length > MAX_CLAIMS_BYTES) {
        throw new SyncError('BAD_REQUEST', `claims are over ${MAX_CLAIMS_BYTES} bytes of JSON`, {
          limit: MAX_CLAIMS_BYTES,
        });
      }
      payload.claims = claims.claims;
    }
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.user)
      .setIssuedAt()
      .setIssuer(this.config.issuer ?? 'syncbridge')
      .setExpirationTime(exp);
    // verify() requires the configured audience, so the server's own tokens must carry it.
    if (this.config.audience) jwt.setAudience(this.config.audience);
    const token = await jwt.sign(this.secret);
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  async verify(token: string): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new SyncError('UNAUTHORIZED', `token is over ${MAX_TOKEN_LENGTH} characters`);
    }
    let payload: JWTPayload;
    let own = false;
    try {
      ({ payload, own } = await this.verifyAny(token));
    } catch (err) {
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw new SyncError('UNAUTHORIZED', expired ? 'token expired' : 'invalid token');
    }
    // A token that never expires cannot be taken back short of changing the key: refused, on every
    // path (the server's own tokens always carry one, at most a year out).
    if (typeof payload.exp !== 'number') throw new SyncError('UNAUTHORIZED', 'token has no expiry (exp)');
    const tenant = payload.tenant;
    if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
      throw new SyncError('UNAUTHORIZED', 'token has no valid tenant claim');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw new SyncError('UNAUTHORIZED', 'token has no subject');
    }
    // The subject is every write's author: no longer than a minted token's user may be.
    if (payload.sub.length > MAX_SUBJECT_LENGTH) {
      throw new SyncError('UNAUTHORIZED', `token subject is over ${MAX_SUBJECT_LENGTH} characters`);
    }
    // The subject is stored as every write's author; a NUL in it could not be (core/nul.ts).
    if (payload.sub.includes('\u0000')) {
      throw new SyncError('UNAUTHORIZED', 'token subject holds the NUL character (\\u0000)');
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [];
    const principal: Principal = { tenant, user: payload.sub, roles, via: 'jwt' };
    if (typeof payload.platform === 'string' && payload.platform) principal.platform = payload.platform;
    // The server's own tokens keep them under `claims`; an outside issuer's where the config says.
    const claims = claimsAt(payload, own ? 'claims' : (this.config.claimsPath ?? 'claims'));
    if (claims) principal.claims = claims;
    return { principal, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null };
  }

  private async verifyAny(token: string): Promise<{ payload: JWTPayload; own: boolean }> {
    const options = {
      issuer: undefined as string | undefined,
      audience: this.config.audience,
    };
    const header = JSON.parse(
      Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8') || '{}',
    ) as {
      alg?: unknown;
    };
    if (header.alg === 'HS256') {
      const payload = verifyHs256(token, this.secret, {
        issuer: this.config.issuer ?? 'syncbridge',
        audience: this.config.audience,
      });
      return { payload, own: true };
    }
    if (this.publicKey) {
      const { payload } = await jwtVerify(token, await this.publicKey, {
        ...options,
        issuer: this.config.issuer,
        algorithms: ['RS256'],
      });
      return { payload, own: false };
    }
    if (this.jwks) {
      const { payload } = await jwtVerify(token, this.jwks, {
        ...options,
        issuer: this.config.issuer,
        algorithms: ['RS256', 'ES256'],
      });
      return { payload, own: false };
    }
    throw new Error('unsupported algorithm');
  }
}

/**
 * The token of an `Authorization: Bearer <token>` header, or null when the header is not of that
 * scheme. Auth schemes are case-insensitive (RFC 7235 section 2.1), so `bearer` and `BEARER` count.
 */
export function bearerToken(header: string): string | null {
  const match = /^bearer[ \t]+(.*)$/i.exec(header);
  return match ? match[1]!.trim() : null;
}
