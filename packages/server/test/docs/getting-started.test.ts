/**
 * docs/getting-started.md, run as written: its watch.mjs and write.mjs are taken from the page, run as
 * child processes against a real server, and their output is compared with the output the page shows,
 * including the resume after the watcher was stopped and after the server restarted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const PAGE = readFileSync(join(ROOT, 'docs/getting-started.md'), 'utf8');
const kinds = await storeKinds();

/** The js block of the page whose first line is `// <name>: …`, with `ws` imported by absolute URL. */
function script(name: string): string {
  const block = [...PAGE.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((code) => code.startsWith(`// ${name}:`));
  if (!block) throw new Error(`docs/getting-started.md has no js block starting with // ${name}:`);
  const ws = pathToFileURL(createRequire(join(ROOT, 'package.json')).resolve('ws')).href;
  expect(block).toContain("import WebSocket from 'ws';");
  return block.replace("from 'ws'", `from '${ws}'`);
}

/** A running child process whose stdout lines a test can wait for. */
class Proc {
  lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private buffer = '';

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop()!;
      this.lines.push(...parts);
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((res) => child.once('exit', (code) => res(code)));
  }

  async waitForLine(line: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.includes(line)) {
      if (Date.now() > deadline) {
        throw new Error(
          `no line "${line}" within ${timeoutMs} ms; got ${JSON.stringify(this.lines)}\n${this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe.each(kinds)('getting started, as written (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let dir: string;
  const procs: Proc[] = [];

  beforeAll(async () => {
    srv = await startTestServer(kind);
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-getting-started-'));
    writeFileSync(join(dir, 'watch.mjs'), script('watch.mjs'));
    writeFileSync(join(dir, 'write.mjs'), script('write.mjs'));
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (token: string) => ({
    ...process.env,
    TOKEN: token,
    SYNCBRIDGE_URL: srv.url,
    CURSOR_FILE: join(dir, 'watch.cursor'),
  });

  function watch(token: string): Proc {
    const p = new Proc(spawn(process.execPath, ['watch.mjs'], { cwd: dir, env: env(token) }));
    procs.push(p);
    return p;
  }

  async function write(token: string, ...args: string[]): Promise<string[]> {
    const p = new Proc(spawn(process.execPath, ['write.mjs', ...args], { cwd: dir, env: env(token) }));
    const code = await p.exited;
    expect(p.stderr).toBe('');
    expect(code).toBe(0);
    return p.lines;
  }

  /** Asserts the page shows this output line, so the test and the page cannot drift apart. */
  function documented(line: string): string {
    expect(PAGE).toContain(line);
    return line;
  }

  it('the watcher sees the writer live, resumes after a stop, and after a server restart', async () => {
    const alice = await srv.token('demo', 'alice');
    const bob = await srv.token('demo', 'bob');

    // Step 3 and 4: live.
    let watcher = watch(bob);
    await watcher.waitForLine(documented('subscribed (log head 0, resuming after now)'));
    expect(await write(alice, 't1', 'Buy milk')).toEqual([documented('applied: t1 is at version 1, seq 1')]);
    await watcher.waitForLine(documented('seq 1 put todos/t1 v1 "Buy milk" done=false by alice'));

    // Step 5: stopped while alice writes twice; restarted, it gets exactly those two.
    watcher.child.kill('SIGINT');
    await watcher.exited;
    await write(alice, 't1', 'Buy milk', 'true');
    await write(alice, 't2', 'Buy bread');
    watcher = watch(bob);
    const expected = [
      'subscribed (log head 3, resuming after 1)',
      'seq 2 put todos/t1 v2 "Buy milk" done=true by alice',
      'seq 3 put todos/t2 v1 "Buy bread" done=false by alice',
    ].map(documented);
    await watcher.waitForLine(expected[2]!);
    expect(watcher.lines).toEqual(expected);

    // The server goes away (close 1001) and comes back on the same port and data: the watcher resumes.
    const port = srv.server.port;
    await srv.close({ keepData: true });
    await watcher.waitForLine('disconnected (1001), reconnecting in 1 s');
    srv = await startTestServer(kind, { port }, srv.storage);
    await watcher.waitForLine('subscribed (log head 3, resuming after 3)');
    await write(alice, 't3', 'Buy eggs');
    await watcher.waitForLine('seq 4 put todos/t3 v1 "Buy eggs" done=false by alice');
    expect(watcher.lines.filter((l) => l.startsWith('seq '))).toEqual([
      expected[1],
      expected[2],
      expect.stringMatching(/^seq 4 /),
    ]);
    expect(readFileSync(join(dir, 'watch.cursor'), 'utf8')).toBe('4');
  });

  it('the watcher stops with the documented line when its token is refused at the upgrade', async () => {
    const expired = await srv.token('demo', 'bob', { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    const watcher = watch(expired);
    const code = await Promise.race([
      watcher.exited,
      new Promise((r) => setTimeout(() => r('still running'), 8000)),
    ]);
    expect(code).toBe(1);
    expect(watcher.stderr.trim()).toBe(documented('the server refused the token (expired?): mint a new one'));
    expect(watcher.lines).toEqual([]);
  });
});
