/**
 * The small apps packed-install.test.ts writes into its throw-away project, as source text: each is what
 * a newcomer following the docs would write (plain ESM Node, TypeScript, the offline replica, a page).
 */

/** The plain Node app: writes, subscribes, and resumes an event stream from a cursor. */
export const NODE_APP = `
import { SyncClient } from '@syncbridge/client';

const [url, token] = process.argv.slice(2);
const waitFor = async (check, what) => {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20)))
    if (check()) return;
  throw new Error('timed out waiting for ' + what);
};
const out = {};

const reader = new SyncClient({ url, token, deviceId: 'reader' });
const writer = new SyncClient({ url, token, deviceId: 'writer' });
reader.collection('todos').subscribe(() => {});
const put = await writer.collection('todos').put('t1', { title: 'from a packed SDK', done: false });
out.put = put.status;
await waitFor(() => reader.collection('todos').get('t1')?.version === 1, 'the reader to see t1');
out.seen = reader.collection('todos').get('t1').data;

const notes = [];
// From the log's start: a stream without since starts at the head the server reads when it handles
// the subscribe, which may come after the publish below.
reader.events('note').subscribe((e) => notes.push(e), { since: 0 });
const first = await writer.publish({ type: 'note', payload: { n: 1 } });
await waitFor(() => notes.length === 1, 'the first note');
const cursor = notes[0].seq;
await reader.close();

// Offline, the reader misses two notes; a new reader resumes from its cursor and gets only those.
await writer.publish({ type: 'note', payload: { n: 2 } });
await writer.publish({ type: 'note', payload: { n: 3 } });
const resumed = new SyncClient({ url, token, deviceId: 'reader' });
const missed = [];
resumed.events('note').subscribe((e) => missed.push(e), { since: cursor });
await waitFor(() => missed.length >= 2, 'the missed notes');
await new Promise((r) => setTimeout(r, 300));
out.firstSeq = first.seq;
out.cursor = cursor;
out.missed = missed.map((e) => e.payload.n);
await Promise.all([resumed.close(), writer.close()]);
console.log(JSON.stringify(out));
`;

/** The offline replica: run once online, then against a port nothing listens on. */
export const REPLICA_APP = `
import { FileStorage, SyncClient } from '@syncbridge/client';

const [url, token, expect] = process.argv.slice(2);
const client = new SyncClient({ url, token, storage: new FileStorage('./replica/todos.log') });
const todos = client.collection('todos');
let source;
todos.subscribe((_records, change) => { source ??= change?.source; });
await client.whenLoaded();
for (const end = Date.now() + 10_000; todos.list().length < Number(expect) && Date.now() < end; )
  await new Promise((r) => setTimeout(r, 20));
await client.persisted();
console.log(JSON.stringify({ source, ids: todos.list().map((r) => r.id) }));
await client.close();
`;

/** Every package from TypeScript, as sdk.md says it works (checked under node16 and bundler). */
export const TS_APP = `
import { FileStorage, SyncClient, type SyncClientOptions } from '@syncbridge/client';
import { NAME_PATTERN } from '@syncbridge/protocol';
import { SyncProvider, useCollection } from '@syncbridge/react';
import { startServer } from '@syncbridge/server';

interface Todo { title: string; done: boolean }
const options: SyncClientOptions = { url: 'ws://127.0.0.1:4025/v1/realtime', token: 't' };
const client = new SyncClient({ ...options, storage: new FileStorage('./todos.log') });
const status: string = (await client.collection<Todo>('todos').put('t1', { title: 'a', done: false })).status;
export const used = [status, NAME_PATTERN, SyncProvider, useCollection, startServer];
`;

/** The browser entry: the SDK from the installed package, driven by the test through `window.sdk`. */
export const BROWSER_ENTRY = `
import { SyncClient } from '@syncbridge/client';

let client;
window.sdk = {
  start(url, token) {
    client = new SyncClient({ url, token, deviceId: 'browser' });
    client.collection('todos').subscribe(() => {});
  },
  put: (id, data) => client.collection('todos').put(id, data).then((r) => r.status),
  get: (id) => client.collection('todos').get(id)?.data,
};
`;
