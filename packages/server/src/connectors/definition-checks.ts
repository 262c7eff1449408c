/**
 * The checks a REST definition passes before it is stored, beyond its schema: every connector secret it
 * names exists in its tenant, and its upstream addresses pass the SSRF policy. It must never let a REST
 * definition reach an address outbound webhooks may not.
 */
import { SyncError } from '../core/errors.ts';
import type { AddressPolicy } from '../webhooks/ssrf.ts';
import type { Entry } from './connector-status.ts';
import type { ConnectorSecrets } from './secrets.ts';
import { secretNames } from './template-policy.ts';
import type { ConnectorSpec } from './types.ts';

/** Every connector secret a REST definition names must exist in its tenant. */
export async function checkSecrets(secrets: ConnectorSecrets, spec: ConnectorSpec): Promise<void> {
  const missing = await secrets.missing(spec.tenant, secretNames(spec));
  if (missing.length === 0) return;
  const problems = missing.map(
    (name) =>
      `${spec.name}: {{secrets.${name}}} names no connector secret of this tenant (PUT /v1/connector-secrets/${name} first)`,
  );
  throw new SyncError('BAD_REQUEST', `invalid connector: ${problems.join('; ')}`, { problems });
}

/** The upstream addresses of a REST-defined built-in connector must pass the SSRF policy. */
export async function checkAddresses(addresses: AddressPolicy, spec: ConnectorSpec): Promise<void> {
  const urls: string[] = [];
  if (spec.kind === 'ws-feed' && typeof spec.url === 'string') urls.push(spec.url.replace(/^ws/, 'http'));
  const http = spec.http as { baseUrl?: unknown } | undefined;
  if (spec.kind === 'pull' && typeof http?.baseUrl === 'string') urls.push(http.baseUrl);
  if (spec.kind === 'pg-cdc' && typeof spec.connection === 'string' && !spec.connection.includes('{{')) {
    // A literal PostgreSQL URL: its host and port are checked as an HTTP address would be.
    const url = URL.canParse(spec.connection) ? new URL(spec.connection) : null;
    if (url) urls.push(`http://${url.host}`);
  }
  for (const url of urls) {
    try {
      await addresses.checkUrl(url);
    } catch (err) {
      if (!(err instanceof SyncError)) throw err;
      throw new SyncError(
        'BAD_REQUEST',
        err.message.replace('webhooks may not target it', 'connectors may not reach it'),
      );
    }
  }
}

/** Only REST definitions change over REST; config-file and code ones are changed where they are. */
export function assertMutable(entry: Entry): void {
  if (entry.origin !== 'api') {
    throw new SyncError(
      'FORBIDDEN',
      `connector ${entry.connector.name} is defined in ${entry.origin === 'config' ? 'the config file' : 'code'}; change it there`,
    );
  }
}
