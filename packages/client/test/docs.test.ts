/**
 * docs/sdk.md against the SDK's types: every `ts` code block of the page is type-checked (strict, as
 * the repository is) against packages/client, so an example that names a method, option, event or
 * field the SDK does not have fails here. Blocks are fragments of one app: a prelude declares what they
 * take for granted (a `client`, the `todos` and `stock` collections, the app's own functions) unless the
 * block declares it itself.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const PAGE = readFileSync(join(ROOT, 'docs/sdk.md'), 'utf8');
const blocks = [...PAGE.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** What the page's fragments assume exists, by the name each line declares. */
const PRELUDE: Array<[name: string, line: string]> = [
  ['Todo', 'interface Todo { title: string; done: boolean }'],
  ['client', 'declare const client: SyncClient;'],
  ['todos', "declare const todos: import('@syncbridge/client').Collection<Todo>;"],
  [
    'stock',
    "declare const stock: import('@syncbridge/client').Collection<{ locationId: string; qty: number }>;",
  ],
  ['render', 'declare function render(records: unknown): void;'],
  ['fetchTokenFromMyBackend', 'declare function fetchTokenFromMyBackend(): Promise<string>;'],
  ['handle', 'declare function handle(event: unknown): void;'],
  ['showMergeDialog', 'declare function showMergeDialog(...data: unknown[]): void;'],
  ['conflictId', 'declare const conflictId: string;'],
  ['url', 'declare const url: string;'],
  ['token', 'declare const token: string;'],
];

function withPrelude(block: string): string {
  const declares = (name: string) =>
    new RegExp(`\\b(const|let|interface|function|type)\\s+${name}\\b|import\\s*\\{[^}]*\\b${name}\\b`).test(
      block,
    );
  const lines = ['export {};'];
  if (!/from '@syncbridge\/client'/.test(block))
    lines.push("import { SyncClient } from '@syncbridge/client';");
  for (const [name, line] of PRELUDE) if (!declares(name)) lines.push(line);
  return `${lines.join('\n')}\n${block}`;
}

/** Type-checks the blocks as modules beside this test; returns the diagnostics of each, as text. */
function check(sources: string[]): string[][] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  )!;
  const files = new Map(sources.map((text, i) => [join(import.meta.dirname, `sdk-md-block-${i}.ts`), text]));
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
  const program = ts.createProgram([...files.keys()], { ...config.options, noEmit: true }, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  return [...files.keys()].map((name) =>
    diagnostics
      .filter((d) => d.file?.fileName === name)
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        const source = d.file!.text.split('\n')[line];
        return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (in: ${source?.trim()})`;
      }),
  );
}

describe('docs/sdk.md examples', () => {
  it('every ts example compiles against the SDK (and the check catches what the SDK does not have)', () => {
    expect(blocks.length).toBeGreaterThan(8);
    // One program for all: a last, wrong block shows the check would fail on a bad example.
    const wrong = "client.onConflicts(() => undefined);\nawait client.resolve('c', 'keep_mine');";
    const results = check([...blocks, wrong].map(withPrelude));
    const control = results.pop()!.join('\n');
    expect(control).toMatch(/onConflicts/);
    expect(control).toMatch(/keep_mine/);
    const failures = results.flatMap((errors, i) => errors.map((e) => `block ${i}: ${e}`));
    expect(failures).toEqual([]);
  });
});
