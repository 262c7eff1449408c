/**
 * The write benchmark's syncbridge variants (bench/peers `--write-variants webhooks,merge`): the same
 * closed-loop writers as the plain case, on a server where
 *
 * - webhooks: every tenant written has one endpoint registered for the written events
 *   (`record.bench.*`), delivering to a small HTTP receiver in this process that answers 200, so each
 *   acknowledged write also writes an outbox row and causes one signed POST;
 * - merge: the written collection's conflict strategy is `merge` (fallback lww), and each write carries
 *   the `baseVersion` the writer last saw for the record, as the SDK sends it (never stale here, so the
 *   cost measured is the merge collection's path, not three-way merges: bench/conflicts.ts has those).
 *
 * Each variant is compared with the plain case of the same store in the same run (variant ÷ plain).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from '../lib/lifecycle.ts';
import { ADMIN_KEY } from '../lib/server-process.ts';

export type WriteVariant = 'plain' | 'webhooks' | 'merge';
export const WRITE_VARIANTS: readonly WriteVariant[] = ['plain', 'webhooks', 'merge'];

const WEBHOOK_SECRET = 'bench-write-variants-secret-0001';

export function parseVariants(flag: string | undefined): WriteVariant[] {
  const names = (flag ?? '').split(',').filter((s) => s.trim() !== '');
  for (const n of names)
    if (!WRITE_VARIANTS.includes(n as WriteVariant) || n === 'plain')
      throw new Error(`--write-variants: webhooks,merge (got ${n})`);
  return names as WriteVariant[];
}

/** The receiver of the webhook variant: answers every POST with 200 and counts them. */
export class WebhookReceiver {
  received = 0;
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.received += 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    onCleanup({ run: () => this.close(), runSync: () => server.closeAllConnections() });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A config file that makes `bench` a merge collection; removed at exit. */
function mergeConfigFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-bench-variants-'));
  onCleanup({
    run: async () => rmSync(dir, { recursive: true, force: true }),
    runSync: () => rmSync(dir, { recursive: true, force: true }),
  });
  const file = join(dir, 'syncbridge.yaml');
  writeFileSync(file, 'collections:\n  bench:\n    strategy: merge\n    mergeFallback: lww\n');
  return file;
}

/** Environment a variant's server starts with. */
export function variantEnv(variant: WriteVariant): Record<string, string> {
  if (variant === 'webhooks')
    return { SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32', SYNCBRIDGE_LOG_LEVEL: 'error' };
  if (variant === 'merge') return { SYNCBRIDGE_CONFIG: mergeConfigFile() };
  return {};
}

/** Registers one endpoint per tenant for the written events, delivering to `receiver`. */
export async function registerWebhooks(
  wsUrl: string,
  tenants: readonly string[],
  receiver: WebhookReceiver,
): Promise<void> {
  const base = wsUrl.replace(/^ws/, 'http').replace(/\/v1\/realtime$/, '');
  for (const tenant of tenants) {
    const res = await fetch(`${base}/v1/webhooks`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'x-tenant': tenant, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'write bench',
        url: receiver.url,
        eventTypes: ['record.bench.*'],
        secret: WEBHOOK_SECRET,
        delivery: 'parallel',
        maxConcurrency: 32,
      }),
    });
    if (!res.ok) throw new Error(`POST /v1/webhooks (${tenant}): HTTP ${res.status} ${await res.text()}`);
  }
}

/**
 * A writer's record versions, for the merge variant's `baseVersion` (what the SDK's cache knows).
 * `base` gives the field to add to a mutation, `saw` records the version a result reports.
 */
export class KnownVersions {
  private readonly versions = new Map<string, number>();

  base(id: string): { baseVersion?: number } {
    const v = this.versions.get(id);
    return v === undefined ? {} : { baseVersion: v };
  }

  saw(id: string, result: { version?: number } | undefined): void {
    if (result?.version !== undefined) this.versions.set(id, result.version);
  }
}
