/**
 * A DOM for rendering React in Node tests: a happy-dom window whose `window`, `document` and element
 * classes are put on the global object, and nothing else, so `fetch`, `WebSocket` and timers stay
 * Node's own (the tests talk to a real server). `render` mounts a tree in a fresh container inside
 * `act`, so effects and subscriptions are in place when it returns.
 */
import { Window } from 'happy-dom';
import { act, type ReactNode, StrictMode } from 'react';
import { createRoot, type Root, type RootOptions } from 'react-dom/client';

const window = new Window({ url: 'http://localhost/' });
const globals = globalThis as Record<string, unknown>;
const fromWindow = window as unknown as Record<string, unknown>;
globals.window = window;
globals.document = window.document;
for (const name of ['navigator', 'HTMLElement', 'HTMLIFrameElement', 'Node', 'Event']) {
  if (!(name in globals)) globals[name] = fromWindow[name];
}
// React warns about updates outside act() only where this is set: our tests wrap every update in act.
globals.IS_REACT_ACT_ENVIRONMENT = true;

export interface Rendered {
  container: HTMLElement;
  root: Root;
  /** The container's text. */
  text(): string;
  unmount(): Promise<void>;
}

export async function render(
  tree: ReactNode,
  options: { strict?: boolean; root?: RootOptions } = {},
): Promise<Rendered> {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container, options.root);
  await act(async () => root.render(options.strict ? <StrictMode>{tree}</StrictMode> : tree));
  return {
    container,
    root,
    text: () => container.textContent ?? '',
    unmount: async () => {
      await act(async () => root.unmount());
      container.remove();
    },
  };
}

/** Waits, inside `act`, until `check` holds (polling every 10 ms), so React commits what arrived. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let ok = false;
    await act(async () => {
      await new Promise((r) => setTimeout(r, 10));
      ok = check();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}
