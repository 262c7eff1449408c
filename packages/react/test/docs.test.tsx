/**
 * docs/react.md, tested: every `tsx` code block is type-checked (strict) against @syncbridge/react and
 * the SDK, and every block that starts with `// renders: <text>` is rendered (its last exported
 * component, inside a SyncProvider) against a real server holding the data the page's examples assume
 * (two todos, two trades, a EURUSD price), and must show that text.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SyncClient } from '@syncbridge/client';
import { SyncProvider } from '@syncbridge/react';
import type { ComponentType } from 'react';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_BACKOFF } from '../../client/test/helpers.ts';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { render, until } from './dom.tsx';
import { TestFeed } from './feed.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const PAGE = readFileSync(join(ROOT, 'docs/react.md'), 'utf8');
const blocks = [...PAGE.matchAll(/```tsx\n([\s\S]*?)```/g)].map((m) => m[1]!);
const BLOCK_DIR = join(import.meta.dirname, '.docs-blocks');

/** Type-checks the blocks as modules in `BLOCK_DIR` (beside an `app.tsx` they may import). */
function check(sources: string[]): string[][] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'packages/react/tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  )!;
  const files = new Map(sources.map((text, i) => [join(BLOCK_DIR, `block-${i}.tsx`), text]));
  files.set(join(BLOCK_DIR, 'app.tsx'), 'export function App() {\n  return null;\n}\n');
  const host = ts.createCompilerHost(config.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, onError) => {
    const text = files.get(name);
    return text === undefined
      ? getSourceFile(name, language, onError)
      : ts.createSourceFile(name, text, language);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  const names = [...files.keys()].filter((name) => !name.endsWith('app.tsx'));
  const program = ts.createProgram(names, { ...config.options, noEmit: true }, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  return names.map((name) =>
    diagnostics
      .filter((d) => d.file?.fileName === name)
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (in: ${d.file!.text.split('\n')[line]?.trim()})`;
      }),
  );
}

describe('docs/react.md examples', () => {
  const feed = new TestFeed('docs-react');
  let srv: TestServer;
  let client: SyncClient;

  beforeAll(async () => {
    srv = await startTestServer('sqlite', {}, undefined, { connectors: [feed] });
    const token = await srv.token('docs-react', 'alice');
    client = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    const todos = client.collection('todos');
    await todos.put('t1', { title: 'Buy milk', done: false });
    await todos.put('t2', { title: 'Walk the dog', done: true });
    await client.publish({ type: 'trade_closed', payload: { pnl: 5 } });
    await client.publish({ type: 'trade_closed', payload: { pnl: 12 } });
    feed.tick('EURUSD', 1.0815);
    mkdirSync(BLOCK_DIR, { recursive: true });
  });
  afterAll(async () => {
    await client?.close();
    await srv?.close();
    rmSync(BLOCK_DIR, { recursive: true, force: true });
  });

  it('every tsx example compiles (and the check catches what the package does not have)', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    const wrong = "import { useRecords } from '@syncbridge/react';\nexport const x = useRecords('todos');\n";
    const results = check([...blocks, wrong]);
    expect(results.pop()!.join('\n')).toMatch(/useRecords/);
    expect(results.flatMap((errors, i) => errors.map((e) => `block ${i}: ${e}`))).toEqual([]);
  });

  const rendered = blocks
    .map((text, index) => ({ text, index, expected: /^\/\/ renders: (.+)\n/.exec(text)?.[1] }))
    .filter((b): b is { text: string; index: number; expected: string } => b.expected !== undefined);

  it.each(rendered)('block $index renders "$expected"', async ({ text, index, expected }) => {
    const file = join(BLOCK_DIR, `rendered-${index}.tsx`);
    writeFileSync(file, text);
    const module = (await import(/* @vite-ignore */ file)) as Record<string, unknown>;
    const exported = Object.values(module).filter((v) => typeof v === 'function');
    const Component = exported.at(-1) as ComponentType;
    const view = await render(
      <SyncProvider client={client}>
        <Component />
      </SyncProvider>,
    );
    await until(() => view.text().includes(expected), `"${expected}" (shows "${view.text()}")`);
    await view.unmount();
  });
});
