/** What every page needs: the REST client, the live feed and who is logged in. */
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Api } from './api.ts';
import type { LiveFeed } from './live.ts';
import type { Session } from './session.ts';

export interface Dashboard {
  api: Api;
  feed: LiveFeed;
  session: Session;
  /** Whether the session acts as a tenant admin (isAdminSession): admin-only sections are left out. */
  admin: boolean;
}

export const DashboardContext = createContext<Dashboard | null>(null);

export function useDashboard(): Dashboard {
  const ctx = useContext(DashboardContext);
  if (!ctx) throw new Error('useDashboard outside the dashboard');
  return ctx;
}

/** Re-renders on the live feed's changes, at most once per animation frame. */
export function useFeed(): LiveFeed {
  const { feed } = useDashboard();
  const [, setVersion] = useState(0);
  useEffect(() => {
    let frame = 0;
    const off = feed.onChange(() => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
    });
    return () => {
      off();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [feed]);
  return feed;
}

export interface Polled<T> {
  data: T | null;
  error: string | null;
  reload: () => Promise<void>;
}

/** Loads `load()` now and every `everyMs` (and on `reload()`), keeping the last good answer on errors. */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], everyMs = 5000): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState<() => Promise<void>>(() => async () => undefined);
  useEffect(() => {
    let live = true;
    const run = async () => {
      try {
        const value = await load();
        if (!live) return;
        setData(value);
        setError(null);
      } catch (err) {
        if (live) setError(err instanceof Error ? err.message : String(err));
      }
    };
    setReload(() => run);
    void run();
    const timer = setInterval(() => void run(), everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, deps);
  return { data, error, reload };
}
