/**
 * The dashboard's entry: the login form, then the shell (navigation, live status) and the pages,
 * routed by the URL's hash (`#/webhooks`) so that the server serves one page.
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api } from './api.ts';
import { DashboardContext, useFeed } from './context.ts';
import { LiveFeed } from './live.ts';
import { Conflicts } from './pages/conflicts.tsx';
import { Connections } from './pages/connections.tsx';
import { Connectors } from './pages/connectors.tsx';
import { Events } from './pages/events.tsx';
import { Overview } from './pages/overview.tsx';
import { Platforms } from './pages/platforms.tsx';
import { Webhooks } from './pages/webhooks.tsx';
import {
  clearSession,
  isAdminSession,
  loadSession,
  looksLikeToken,
  type Session,
  saveSession,
  tokenTenant,
} from './session.ts';

const PAGES = [
  { path: 'overview', label: 'Overview', view: Overview },
  { path: 'platforms', label: 'Platforms & sync', view: Platforms },
  { path: 'events', label: 'Events', view: Events },
  { path: 'webhooks', label: 'Webhooks', view: Webhooks, admin: true },
  { path: 'conflicts', label: 'Conflicts', view: Conflicts },
  { path: 'connections', label: 'Connections & devices', view: Connections },
  { path: 'connectors', label: 'Connectors', view: Connectors, admin: true },
] as const;

/** A page for tenant admins, reached by a user's session. */
function AdminOnly() {
  return (
    <section>
      <p class="muted" role="note">
        This page is for tenant admins. Log in with an API key or a token with the admin role.
      </p>
    </section>
  );
}

function currentPath(): string {
  return location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
}

function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [tenant, setTenant] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const value = secret.trim();
    const isToken = looksLikeToken(value);
    const name = tenant.trim() || (isToken ? (tokenTenant(value) ?? '') : '');
    if (!value) return setError('Enter the admin key, a tenant API key or a token.');
    if (!name) return setError('Name the tenant to operate.');
    const session: Session = { tenant: name, kind: isToken ? 'token' : 'key', secret: value };
    setBusy(true);
    try {
      const api = new Api(session);
      // A call every user may make checks the credentials; minting checks a key is good for this tenant.
      await api.health();
      if (!isToken) await api.mintToken(60);
      saveSession(session);
      onLogin(session);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form onSubmit={(e) => void submit(e)}>
        <h1>syncbridge</h1>
        <p class="muted">Operator dashboard</p>
        <label>
          Tenant
          <input
            name="tenant"
            value={tenant}
            onInput={(e) => setTenant(e.currentTarget.value)}
            placeholder="acme (optional with a token)"
            autocomplete="off"
          />
        </label>
        <label>
          Admin key, tenant API key or token
          <input
            name="secret"
            type="password"
            value={secret}
            onInput={(e) => setSecret(e.currentTarget.value)}
            autocomplete="off"
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Log in'}
        </button>
        <p class="hint">Kept in this tab's session storage only; closing the tab logs out.</p>
      </form>
    </main>
  );
}

function LiveStatus() {
  const feed = useFeed();
  const tone = feed.state === 'open' ? 'ok' : feed.state === 'connecting' ? 'warn' : 'bad';
  const label = feed.state === 'open' ? 'live' : feed.state === 'connecting' ? 'connecting…' : 'offline';
  return (
    <span class={`live ${tone}`} title={feed.error ?? ''} data-state={feed.state}>
      ● {label}
    </span>
  );
}

function Shell({ session, onLogout }: { session: Session; onLogout: () => void }) {
  const [path, setPath] = useState(currentPath());
  const [refused, setRefused] = useState<string | null>(null);
  const dashboard = useMemo(() => {
    const api = new Api(session, setRefused);
    return { api, feed: new LiveFeed(session, api), session, admin: isAdminSession(session) };
  }, [session]);
  useEffect(() => () => dashboard.feed.close(), [dashboard]);
  useEffect(() => {
    const onHash = () => setPath(currentPath());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const allowed = (p: (typeof PAGES)[number]) => dashboard.admin || !('admin' in p);
  const View = allowed(page) ? page.view : AdminOnly;
  return (
    <DashboardContext.Provider value={dashboard}>
      <header>
        <strong class="brand">syncbridge</strong>
        <nav>
          {PAGES.filter(allowed).map((p) => (
            <a key={p.path} href={`#/${p.path}`} class={p.path === page.path ? 'current' : ''}>
              {p.label}
            </a>
          ))}
        </nav>
        <span class="who">
          <LiveStatus /> tenant <b>{session.tenant}</b>
          {!dashboard.admin && (
            <span
              class="muted"
              title="records, events and conflicts as the tenant's access rules show them to you"
            >
              {' '}
              (user view)
            </span>
          )}
          <button type="button" class="link" onClick={onLogout}>
            Log out
          </button>
        </span>
      </header>
      <main>
        {refused && (
          <p class="error" role="alert">
            The server no longer accepts this key or token ({refused}).{' '}
            <button type="button" onClick={onLogout}>
              Log in again
            </button>
          </p>
        )}
        <View key={page.path} />
      </main>
    </DashboardContext.Provider>
  );
}

function App() {
  const [session, setSession] = useState<Session | null>(loadSession());
  if (!session) return <Login onLogin={setSession} />;
  return (
    <Shell
      session={session}
      onLogout={() => {
        clearSession();
        setSession(null);
      }}
    />
  );
}

render(<App />, document.getElementById('app')!);
