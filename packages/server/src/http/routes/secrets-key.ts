/**
 * The secrets key rotation's progress over REST (server admin key only): `GET /v1/secrets-key/status`
 * counts, per kind, what is still sealed under a key other than the current `SYNCBRIDGE_SECRETS_KEY`
 * (by key id), the sealed-fields passes still to run, and any key id the data needs that is not
 * configured; `left` 0 means the keys in `SYNCBRIDGE_SECRETS_KEYS_PREVIOUS` may be dropped. Key ids
 * only: never a key, never a value.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorResponse } from '@syncbridge/protocol';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const Collection = Type.Object({ tenant: Type.String(), collection: Type.String() });
const Status = Type.Object({
  currentKeyId: Type.Union([Type.String(), Type.Null()]),
  configuredKeyIds: Type.Array(Type.String()),
  kinds: Type.Array(
    Type.Object({
      kind: Type.String(),
      left: Type.Integer(),
      byKey: Type.Record(Type.String(), Type.Integer()),
    }),
  ),
  pendingPasses: Type.Array(Collection),
  missing: Type.Array(Type.Object({ keyId: Type.String(), kinds: Type.Array(Type.String()) })),
  left: Type.Integer({ description: 'rows under an older key plus sealed-fields passes to run' }),
});

export const secretsKeyRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const status = ctx.secretsKeyStatus;
    if (!status) return;
    app.get(
      '/v1/secrets-key/status',
      {
        schema: {
          tags: ['auth'],
          summary:
            'What is still sealed under an older secrets key, per kind: 0 left means the previous keys may be dropped (admin key only)',
          security: [{ apiKey: [] }],
          response: { 200: Status, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request) => {
        const key = await ctx.auth.apiKey(request);
        if (key.tenant !== null)
          throw new SyncError('FORBIDDEN', 'only the admin key reads the secrets key status');
        const s = await status();
        return { ...s, left: s.left + s.pendingPasses.length };
      },
    );
  };
