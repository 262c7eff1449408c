/**
 * Inbound webhooks: `POST /v1/inbound/{source}` for the sources named in the config file's `inbound`
 * section. Each request's signature is checked with the source's scheme (`standard`: Standard Webhooks
 * headers; `hmac`: a hex HMAC-SHA256 of the raw body in a header), the provider's event id becomes the
 * idempotency key of the domain event it is mapped to (so a provider's retry or duplicate is
 * acknowledged with the first event's seq and changes nothing), and the payload becomes a domain event
 * of the source's tenant, with the source's platform as its `source`.
 *
 * Mapping: a `mapper` hook given in code (StartOptions.inboundMappers) wins; otherwise the event type is
 * `types[<provider type>]`, else `eventType`, else the provider type itself (read from `typeField`,
 * default `type`), and the payload is the body (or its `payloadField`).
 */
import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { NewDomainEvent } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { SyncError } from '../core/errors.ts';
import type { LogWriter } from '../log/log-writer.ts';
import { verifyHex, verifyStandard } from './signing.ts';

const NAME = '^[A-Za-z0-9_.\\-]{1,128}$';
const PATH = '^[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)*$';

export const InboundSourceSchema = Type.Object(
  {
    tenant: Type.String({ pattern: NAME }),
    platform: Type.Optional(Type.String({ pattern: NAME })),
    scheme: Type.Union([Type.Literal('standard'), Type.Literal('hmac')]),
    secret: Type.String({ minLength: 8 }),
    /** hmac: the header carrying the hex signature. */
    signatureHeader: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** hmac: the header carrying the provider's event id (default x-event-id), or... */
    idHeader: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** ...the body field holding it (dotted path). */
    idField: Type.Optional(Type.String({ pattern: PATH })),
    typeField: Type.Optional(Type.String({ pattern: PATH })),
    eventType: Type.Optional(Type.String({ pattern: NAME })),
    types: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: NAME }))),
    payloadField: Type.Optional(Type.String({ pattern: PATH })),
    target: Type.Optional(Type.String({ pattern: NAME })),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })),
    /** standard: how far webhook-timestamp may be from now (default 300 s). */
    toleranceSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  },
  { additionalProperties: false },
);
export type InboundSource = Static<typeof InboundSourceSchema>;

/** A code hook mapping a verified inbound payload to a domain event; null ignores the request. */
export type InboundMapper = (input: {
  source: string;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}) => Pick<NewDomainEvent, 'type' | 'payload' | 'target' | 'priority'> | null;

export interface InboundResult {
  received: boolean;
  duplicate: boolean;
  seq?: number;
  eventId?: string;
  ignored?: boolean;
}

function field(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

const TYPE = new RegExp(NAME);

export class InboundReceiver {
  constructor(
    private readonly sources: Record<string, InboundSource>,
    private readonly writer: LogWriter,
    private readonly mappers: Record<string, InboundMapper> = {},
  ) {}

  async receive(
    source: string,
    raw: Buffer,
    headers: Record<string, string | string[] | undefined>,
  ): Promise<InboundResult> {
    const cfg = Object.hasOwn(this.sources, source) ? this.sources[source] : undefined;
    if (!cfg) throw new SyncError('NOT_FOUND', `no inbound webhook source ${source}`);
    const text = raw.toString('utf8');
    let providerId: string | undefined;
    if (cfg.scheme === 'standard') {
      const problem = verifyStandard(
        cfg.secret,
        {
          id: header(headers, 'webhook-id'),
          timestamp: header(headers, 'webhook-timestamp'),
          signature: header(headers, 'webhook-signature'),
        },
        text,
        Date.now(),
        cfg.toleranceSeconds ?? 300,
      );
      if (problem) throw new SyncError('UNAUTHORIZED', `signature check failed: ${problem}`);
      providerId = header(headers, 'webhook-id');
    } else {
      const problem = verifyHex(
        cfg.secret,
        header(headers, cfg.signatureHeader ?? 'x-webhook-signature'),
        text,
      );
      if (problem) throw new SyncError('UNAUTHORIZED', `signature check failed: ${problem}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new SyncError('BAD_REQUEST', 'request body is not valid JSON');
    }
    if (cfg.scheme === 'hmac') {
      const fromField = cfg.idField === undefined ? undefined : field(body, cfg.idField);
      providerId =
        typeof fromField === 'string' || typeof fromField === 'number'
          ? String(fromField)
          : header(headers, cfg.idHeader ?? 'x-event-id');
    }
    if (!providerId) throw new SyncError('BAD_REQUEST', 'the request carries no event id to de-duplicate by');
    if (providerId.length > 150)
      throw new SyncError('BAD_REQUEST', 'the event id is longer than 150 characters');

    let mapped: Pick<NewDomainEvent, 'type' | 'payload' | 'target' | 'priority'> | null;
    const mapper = Object.hasOwn(this.mappers, source) ? this.mappers[source] : undefined;
    if (mapper) mapped = mapper({ source, body, headers });
    else {
      const providerType = field(body, cfg.typeField ?? 'type');
      const type =
        (typeof providerType === 'string' && cfg.types && Object.hasOwn(cfg.types, providerType)
          ? cfg.types[providerType]
          : undefined) ??
        cfg.eventType ??
        (typeof providerType === 'string' ? providerType : undefined);
      if (!type) throw new SyncError('BAD_REQUEST', 'the request has no event type this source maps');
      mapped = { type, payload: cfg.payloadField === undefined ? body : field(body, cfg.payloadField) };
      if (cfg.target) mapped.target = cfg.target;
      if (cfg.priority !== undefined) mapped.priority = cfg.priority;
    }
    if (mapped === null) return { received: true, duplicate: false, ignored: true };
    if (!TYPE.test(mapped.type)) {
      throw new SyncError('BAD_REQUEST', `event type "${mapped.type}" is not a valid name`);
    }
    const principal: Principal = {
      tenant: cfg.tenant,
      user: `inbound:${source}`,
      roles: [],
      via: 'tenant_key',
      ...(cfg.platform ? { platform: cfg.platform } : {}),
    };
    // Idempotency keys hold at most 200 characters: a long source name and id are hashed together.
    let idempotencyKey = `inbound:${source}:${providerId}`;
    if (idempotencyKey.length > 200) {
      idempotencyKey = `inbound:${createHash('sha256').update(`${source}\u0000${providerId}`).digest('hex')}`;
    }
    const event: NewDomainEvent = { type: mapped.type, payload: mapped.payload, idempotencyKey };
    if (cfg.platform) event.source = cfg.platform;
    if (mapped.target) event.target = mapped.target;
    if (mapped.priority !== undefined) event.priority = mapped.priority;
    const result = await this.writer.publish(principal, event);
    return { received: true, duplicate: result.duplicate === true, seq: result.seq, eventId: result.eventId };
  }
}
