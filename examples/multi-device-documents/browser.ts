/**
 * The browser device of the multi-device documents example: a page that syncs `documents` with the SDK,
 * keeps its offline queue in IndexedDB (so an edit made offline survives a reload), and shows every
 * document with a small editor. `serve.ts` bundles this file with esbuild and opens the page with its
 * settings in the query string: `?ws=<realtime URL>&token=<JWT>&device=<device id>`.
 *
 * For scripts (and the Chromium test) the page exposes `window.documentsDevice`.
 */
import { IndexedDbStorage, SyncClient } from '@syncbridge/client';

interface Doc {
  title: string;
  body: string;
  tags?: string[];
  [field: string]: unknown;
}

// The few DOM parts used here, typed structurally: the repository compiles without DOM typings.
interface Element {
  textContent: string | null;
  value: string;
  onclick: (() => void) | null;
}
interface PageGlobals {
  location: { search: string };
  navigator: { userAgent: string };
  document: { getElementById(id: string): Element | null };
  documentsDevice?: unknown;
}
const page = globalThis as unknown as PageGlobals;

const params = new URLSearchParams(page.location.search);
const ws = params.get('ws');
const token = params.get('token');
const deviceId = params.get('device') ?? 'browser';
if (!ws || !token) throw new Error('open the page with ?ws=<realtime URL>&token=<JWT>');

const client = new SyncClient({
  url: ws,
  token,
  deviceId,
  device: {
    type: 'browser',
    name: `Browser ${deviceId}`,
    platform: page.navigator.userAgent.slice(0, 100),
    categories: ['documents'],
  },
  storage: new IndexedDbStorage({ name: `syncbridge-documents-${deviceId}` }),
  backoff: { baseMs: 100, capMs: 1000 },
});
const docs = client.collection<Doc>('documents');

function render(): void {
  const el = (id: string) => page.document.getElementById(id);
  const status = el('status');
  if (status) {
    status.textContent = `${client.state} · ${client.pendingCount()} queued · server had ${client.serverPending ?? '?'} waiting`;
  }
  const list = el('documents');
  if (list) {
    list.textContent = docs
      .list()
      .map(
        (r) =>
          `${r.id} v${r.version ?? '-'}${r.pending ? ' (pending)' : ''}\n  ${r.data.title}\n  ${r.data.body}`,
      )
      .join('\n\n');
  }
}

docs.subscribe(render);
client.on('status', render);
client.on('pending', render);
client.on('result', render);

const save = page.document.getElementById('save');
if (save) {
  save.onclick = () => {
    const id = page.document.getElementById('doc-id')?.value || 'plan';
    const body = page.document.getElementById('doc-body')?.value ?? '';
    void docs.patch(id, { body });
  };
}

/** What a script can do with this device. */
const api = {
  client,
  state: () => client.state,
  pendingCount: () => client.pendingCount(),
  serverPending: () => client.serverPending,
  get: (id: string) => docs.get(id),
  list: () => docs.list(),
  put: (id: string, data: Doc) => docs.put(id, data),
  patch: (id: string, patch: Partial<Doc>) => docs.patch(id, patch),
  increment: (id: string, deltas: Record<string, number>) => docs.increment(id, deltas as never),
  whenOpen: (timeoutMs?: number) => client.whenOpen(timeoutMs),
  flush: () => client.flush(),
  disconnect: () => client.disconnect(),
  connect: () => client.connect(),
};
page.documentsDevice = api;
render();
