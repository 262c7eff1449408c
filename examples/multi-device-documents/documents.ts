/**
 * Multi-device documents, the Node part: one user, two devices running the SDK.
 *
 *   laptop  a desktop app that syncs `documents` and `settings`
 *   phone   a mobile app that syncs `documents` only, and keeps its offline queue in a file
 *
 *   1. the collection `documents` is set to `strategy: merge` with `textFields: ['body']`
 *   2. the laptop writes a document; the phone sees it live
 *   3. the phone goes offline (airplane mode: `disconnect()`) and edits the body and the tags; the app
 *      shows the edit at once and queues it
 *   4. meanwhile the laptop edits the title and the same body
 *   5. the phone comes back (`connect()`): the server tells it how many changes wait for it, its queued
 *      edit is answered `merged` (both body edits kept, character by character), and both devices end
 *      with the server's document
 *   6. another user of the tenant cannot read the document: access rules keep a document with an `ownerId`
 *      private to its owner (docs/access-rules.md); documents without one stay shared
 *   7. the phone may not subscribe to `settings`: not one of its categories (FORBIDDEN)
 *
 * A third device, the browser page of this folder (`serve.ts`), can join in: it syncs `documents` too.
 * `index.ts` runs this from the command line; the client test suite runs it against a real server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DeviceInfo,
  FileStorage,
  type MutationResult,
  type QueueStorage,
  SyncClient,
  type SyncClientError,
} from '@syncbridge/client';

/** A document as the devices edit it. */
export interface Doc {
  title: string;
  body: string;
  tags: string[];
  /** The user the document belongs to: only they read and write it. */
  ownerId?: string;
}

/** Owned documents are private to their owner, who cannot give them away; unowned ones stay shared. */
const OWNER_RULES = {
  read: '!has(record.ownerId) || record.ownerId == auth.user',
  create: '!has(next.ownerId) || next.ownerId == auth.user',
  update:
    '(!has(record.ownerId) || record.ownerId == auth.user) && (!has(next.ownerId) || next.ownerId == auth.user)',
  delete: '!has(record.ownerId) || record.ownerId == auth.user',
};

export const DOCUMENTS_SETTINGS = { strategy: 'merge', textFields: ['body'], rules: OWNER_RULES } as const;

export interface DocumentsOptions {
  /** The server's base URL, e.g. http://127.0.0.1:4025 */
  url: string;
  /** The admin key the server printed on its first start (or SYNCBRIDGE_ADMIN_KEY). */
  adminKey: string;
  /** Receives one line of transcript at a time. */
  log?: (line: string) => void;
  /** Tenant to work in. Default: docs-demo */
  tenant?: string;
  /** The user whose devices these are. Default: alice */
  user?: string;
  /** The document to edit. Default: plan */
  docId?: string;
  /** Longest wait for any one step, in ms. Default: 10000 */
  timeoutMs?: number;
}

export interface DeviceView {
  deviceId: string;
  doc: Doc | undefined;
  version: number | null;
}

export interface DocumentsResult {
  tenant: string;
  /** The phone's offline edit, as the server answered it. */
  phoneEdit: MutationResult;
  /** What the server reported waiting for the phone when it came back. */
  pendingOnReturn: number | null;
  /** The HTTP status another user of the tenant got reading the document (404: as if missing). */
  otherUserRead: number;
  /** The error the phone got for subscribing to `settings`. */
  refused: SyncClientError | undefined;
  /** The document as the server has it at the end. */
  server: Doc;
  laptop: DeviceView;
  phone: DeviceView;
  lines: string[];
}

/** Mints a user token with the admin key (POST /v1/auth/token). */
export async function mintToken(
  url: string,
  adminKey: string,
  tenant: string,
  user: string,
  roles?: string[],
): Promise<string> {
  const res = await fetch(`${url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': adminKey },
    body: JSON.stringify({ tenant, user, ...(roles ? { roles } : {}) }),
  });
  if (!res.ok) throw new Error(`minting a token failed: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Sets the `documents` collection to merge (needs a tenant admin's token). */
export async function configureDocuments(url: string, adminToken: string): Promise<void> {
  const res = await fetch(`${url}/v1/collections/documents`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(DOCUMENTS_SETTINGS),
  });
  if (!res.ok) throw new Error(`configuring documents failed: HTTP ${res.status} ${await res.text()}`);
}

/** One device: a SyncClient with its id, registration and storage. */
export function openDevice(options: {
  url: string;
  token: string;
  deviceId: string;
  device: DeviceInfo;
  storage?: QueueStorage;
}): SyncClient {
  return new SyncClient({
    url: `${options.url.replace(/^http/, 'ws')}/v1/realtime`,
    token: options.token,
    deviceId: options.deviceId,
    device: options.device,
    storage: options.storage,
    backoff: { baseMs: 100, capMs: 1000 },
  });
}

function view(client: SyncClient, deviceId: string, docId: string): DeviceView {
  const record = client.collection<Doc>('documents').get(docId);
  return { deviceId, doc: record?.data, version: record?.version ?? null };
}

async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function runDocuments(options: DocumentsOptions): Promise<DocumentsResult> {
  const { url, adminKey } = options;
  const tenant = options.tenant ?? 'docs-demo';
  const user = options.user ?? 'alice';
  const docId = options.docId ?? 'plan';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    options.log?.(line);
  };

  await configureDocuments(url, await mintToken(url, adminKey, tenant, 'setup', ['admin']));
  log(`documents in tenant "${tenant}" merge concurrent edits (body merged as text)`);
  const token = await mintToken(url, adminKey, tenant, user);
  const queueDir = mkdtempSync(join(tmpdir(), 'syncbridge-phone-'));
  const laptop = openDevice({
    url,
    token,
    deviceId: 'laptop',
    device: {
      type: 'desktop',
      name: 'Laptop',
      platform: process.platform,
      categories: ['documents', 'settings'],
    },
  });
  const phone = openDevice({
    url,
    token,
    deviceId: 'phone',
    device: {
      type: 'mobile',
      name: 'Phone',
      platform: 'Android 15',
      appVersion: '3.2.0',
      categories: ['documents'],
    },
    storage: new FileStorage(join(queueDir, 'queue.json')),
  });
  try {
    const laptopDocs = laptop.collection<Doc>('documents');
    const phoneDocs = phone.collection<Doc>('documents');
    laptopDocs.subscribe(() => undefined);
    phoneDocs.subscribe(() => undefined);
    await Promise.all([laptop.whenOpen(timeoutMs), phone.whenOpen(timeoutMs)]);
    log('laptop (documents, settings) and phone (documents) are open');

    // Start from a known document (it may exist from an earlier run).
    const created = await laptopDocs.put(docId, {
      title: 'Trip plan',
      body: 'Day 1: museum. Day 2: beach.',
      tags: ['travel'],
      ownerId: user,
    });
    log(`laptop put documents/${docId} -> ${created.status}, version ${created.version}`);
    await until(() => phoneDocs.get(docId)?.version === created.version, 'the phone to see it', timeoutMs);
    log(`phone sees version ${created.version} live`);

    phone.disconnect();
    log(`phone goes offline (${phone.state})`);
    const phoneWrite = phoneDocs.patch(docId, {
      body: 'Day 1: museum, then lunch. Day 2: beach.',
      tags: ['travel', 'food'],
    });
    log(`phone edits offline: body and tags (shown at once, pending: ${phoneDocs.get(docId)?.pending})`);

    const laptopTitle = await laptopDocs.patch(docId, { title: 'Trip plan (final)' });
    const laptopBody = await laptopDocs.patch(docId, { body: 'Day 1: museum. Day 2: beach. Day 3: hike.' });
    log(
      `laptop edits the title and the body meanwhile -> versions ${laptopTitle.version}, ${laptopBody.version}`,
    );

    phone.connect();
    await phone.whenOpen(timeoutMs);
    log(`phone is back; the server had ${phone.serverPending} document change(s) waiting for it`);
    const phoneEdit = await phoneWrite;
    log(`phone's offline edit -> ${phoneEdit.status}, version ${phoneEdit.version}`);

    const final = phoneEdit.version ?? 0;
    await until(() => laptopDocs.get(docId)?.version === final, 'the laptop to see the merge', timeoutMs);
    const server = await fetch(`${url}/v1/records/documents/${docId}`, {
      headers: { authorization: `Bearer ${token}` },
    }).then((r) => r.json() as Promise<{ data: Doc }>);
    log(`server:  ${JSON.stringify(server.data)}`);
    log(`laptop:  ${JSON.stringify(laptopDocs.get(docId)?.data)}`);
    log(`phone:   ${JSON.stringify(phoneDocs.get(docId)?.data)}`);

    // Another user of the same tenant: the access rules keep the document private to its owner.
    const other = await mintToken(url, adminKey, tenant, `${user}-colleague`);
    const otherUserRead = (
      await fetch(`${url}/v1/records/documents/${docId}`, { headers: { authorization: `Bearer ${other}` } })
    ).status;
    log(`${user}-colleague (same tenant) reading documents/${docId} -> HTTP ${otherUserRead}`);

    // The phone does not sync settings: its subscription is refused.
    const refused = await new Promise<SyncClientError | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const off = phone.on('error', (err) => {
        clearTimeout(timer);
        off();
        resolve(err);
      });
      phone.collection('settings').subscribe(() => undefined);
    });
    log(`phone subscribing to settings -> ${refused?.code ?? 'no answer'}`);

    return {
      tenant,
      phoneEdit,
      pendingOnReturn: phone.serverPending,
      otherUserRead,
      refused,
      server: server.data,
      laptop: view(laptop, 'laptop', docId),
      phone: view(phone, 'phone', docId),
      lines,
    };
  } finally {
    await Promise.all([laptop.close(), phone.close()]);
    rmSync(queueDir, { recursive: true, force: true });
  }
}
