/**
 * The React todo app: a shared todo list with @syncbridge/react. Every device of a user (and every user
 * of the tenant) sees the same list live; adding and ticking off todos works offline, the writes wait
 * in IndexedDB (with the replica of the list, on clients that keep one) and are sent once the server is
 * reachable. `page.ts` bundles this file with esbuild; open the page with its settings in the query
 * string: `?ws=<realtime URL>&token=<JWT>&device=<device id>`.
 */
import { IndexedDbStorage, SyncClient } from '@syncbridge/client';
import {
  SyncProvider,
  useCollection,
  usePendingCount,
  useRecord,
  useStatus,
  useSyncClient,
} from '@syncbridge/react';
import { type FormEvent, memo, StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';

interface Todo {
  title: string;
  done: boolean;
  createdAt: string;
}

function StatusBar() {
  const status = useStatus();
  const pending = usePendingCount();
  return (
    <p id="status" data-status={status} data-pending={pending}>
      {status === 'open' ? 'in sync' : status}
      {pending > 0 ? ` · ${pending} unsaved` : ''}
    </p>
  );
}

function AddTodo() {
  const todos = useSyncClient().collection<Todo>('todos');
  const [title, setTitle] = useState('');
  function add(event: FormEvent) {
    event.preventDefault();
    const text = title.trim();
    if (!text) return;
    setTitle('');
    // Optimistic: the row shows at once; the promise settles when the server answers (maybe much later).
    todos
      .put(crypto.randomUUID(), { title: text, done: false, createdAt: new Date().toISOString() })
      .catch((err: unknown) => console.warn('todo not saved', err));
  }
  return (
    <form id="add" onSubmit={add}>
      <input
        id="title"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        placeholder="What needs doing?"
      />
      <button type="submit">Add</button>
    </form>
  );
}

/** One row: re-renders only when its own todo changes. */
const TodoRow = memo(function TodoRow({ id }: { id: string }) {
  const todos = useSyncClient().collection<Todo>('todos');
  const todo = useRecord<Todo>('todos', id);
  if (!todo) return null;
  const toggle = () => void todos.patch(id, { done: !todo.data.done }).catch(() => undefined);
  return (
    <li data-title={todo.data.title} data-pending={todo.pending} data-done={todo.data.done}>
      <label>
        <input type="checkbox" checked={todo.data.done} onChange={toggle} /> {todo.data.title}
      </label>
      {todo.pending ? <small> (saving…)</small> : null}
    </li>
  );
});

function TodoList() {
  const todos = useCollection<Todo>('todos');
  const ordered = [...todos].sort((a, b) => (a.data.createdAt < b.data.createdAt ? -1 : 1));
  if (ordered.length === 0) return <p id="empty">Nothing to do.</p>;
  return (
    <ul id="todos">
      {ordered.map((todo) => (
        <TodoRow key={todo.id} id={todo.id} />
      ))}
    </ul>
  );
}

function App() {
  return (
    <main>
      <h1>Shared todos</h1>
      <StatusBar />
      <AddTodo />
      <TodoList />
    </main>
  );
}

const params = new URLSearchParams(location.search);
const ws = params.get('ws');
const token = params.get('token');
const device = params.get('device') ?? 'browser';
const root = document.getElementById('root');
if (!ws || !token || !root) throw new Error('open the page with ?ws=<realtime URL>&token=<JWT>');

// One client for the page's lifetime, made outside React: renders never open a second socket.
const client = new SyncClient({
  url: ws,
  token,
  deviceId: device,
  storage: new IndexedDbStorage({ name: `syncbridge-todos-${device}` }),
  // A demo: reconnect within a second of the server coming back.
  backoff: { baseMs: 100, capMs: 1000 },
});

createRoot(root).render(
  <StrictMode>
    <SyncProvider client={client}>
      <App />
    </SyncProvider>
  </StrictMode>,
);
