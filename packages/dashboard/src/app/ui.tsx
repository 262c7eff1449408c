/** Small shared pieces: badges, action buttons, times and durations, JSON cells. */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

export type Tone = 'ok' | 'warn' | 'bad' | 'muted';

export function Badge({ tone, children }: { tone: Tone; children: ComponentChildren }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

/** Relative time: "12 s ago", "3 min ago". */
export function ago(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return '—';
  if (s < 0) return `in ${duration(-s * 1000)}`;
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  return `${duration(s * 1000)} ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function Time({ iso }: { iso: string | null | undefined }) {
  return <time title={iso ?? ''}>{ago(iso)}</time>;
}

export function Json({ value }: { value: unknown }) {
  if (value === undefined) return <span class="muted">—</span>;
  return <code class="json">{JSON.stringify(value)}</code>;
}

export function ErrorLine({ error }: { error: string | null | undefined }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A button that runs an action once at a time and shows its outcome beside it. */
export function Action({
  label,
  run,
  kind = 'secondary',
  title,
}: {
  label: string;
  run: () => Promise<unknown>;
  kind?: 'primary' | 'secondary' | 'danger';
  title?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const click = async () => {
    setBusy(true);
    setOutcome(null);
    try {
      const text = await run();
      if (typeof text === 'string' && text) setOutcome({ ok: true, text });
    } catch (err) {
      setOutcome({ ok: false, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={kind} disabled={busy} title={title} onClick={() => void click()}>
        {label}
      </button>
      {outcome && <span class={outcome.ok ? 'outcome ok' : 'outcome bad'}>{outcome.text}</span>}
    </span>
  );
}

export function Card({
  label,
  value,
  tone,
  href,
}: {
  label: string;
  value: ComponentChildren;
  tone?: Tone;
  href?: string;
}) {
  const body = (
    <>
      <span class="card-label">{label}</span>
      <span class={`card-value ${tone ?? ''}`}>{value}</span>
    </>
  );
  return href ? (
    <a class="card" href={href}>
      {body}
    </a>
  ) : (
    <div class="card">{body}</div>
  );
}
