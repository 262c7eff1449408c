/**
 * User tokens: HS256 JWTs minted with the server's secret, and optionally RS256/ES256 tokens from an
 * identity provider (a PEM public key or a JWKS URL). Claims: `sub` (user), `tenant`, `roles`,
 * optional `platform`. Only the configured algorithms are accepted, so `alg: none` and algorithm
 * confusion are refused by construction.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  importSPKI,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from 'jose';
import { SyncError } from '../core/errors.ts';
import type { Principal } from './principal.ts';

export interface TokenConfig {
  jwtSecret: string;
  /** PEM (SPKI) public key for RS256 tokens from an outside issuer. */
  jwtPublicKey?: string;
  /** JWKS URL of an outside issuer (RS256/ES256). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

export interface VerifiedToken {
  principal: Principal;
  /** Expiry in ms since the epoch, or null when the token has none. */
  expiresAt: number | null;
}

const TENANT = /^[A-Za-z0-9_.-]{1,128}$/;

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
  }): Promise<{ token: string; expiresAt: string }> {
    const ttl = claims.ttlSeconds ?? 3600;
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const payload: JWTPayload = { tenant: claims.tenant, roles: claims.roles ?? [] };
    if (claims.platform) payload.platform = claims.platform;
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
    let payload: JWTPayload;
    try {
      payload = await this.verifyAny(token);
    } catch (err) {
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw new SyncError('UNAUTHORIZED', expired ? 'token expired' : 'invalid token');
    }
    const tenant = payload.tenant;
    if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
      throw new SyncError('UNAUTHORIZED', 'token has no valid tenant claim');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw new SyncError('UNAUTHORIZED', 'token has no subject');
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [];
    const principal: Principal = { tenant, user: payload.sub, roles, via: 'jwt' };
    if (typeof payload.platform === 'string' && payload.platform) principal.platform = payload.platform;
    return { principal, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null };
  }

  private async verifyAny(token: string): Promise<JWTPayload> {
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
      const { payload } = await jwtVerify(token, this.secret, {
        ...options,
        issuer: this.config.issuer ?? 'syncbridge',
        algorithms: ['HS256'],
      });
      return payload;
    }
    if (this.publicKey) {
      const { payload } = await jwtVerify(token, await this.publicKey, {
        ...options,
        issuer: this.config.issuer,
        algorithms: ['RS256'],
      });
      return payload;
    }
    if (this.jwks) {
      const { payload } = await jwtVerify(token, this.jwks, {
        ...options,
        issuer: this.config.issuer,
        algorithms: ['RS256', 'ES256'],
      });
      return payload;
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
