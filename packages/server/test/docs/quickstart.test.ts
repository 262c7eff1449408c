/**
 * The documentation's runnable parts, run for real: the quickstart example (as a function and as the
 * documented command), the README's curl quickstart done with fetch, and every relative link of
 * README.md and docs/*.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQuickstart } from '../../../../examples/quickstart/quickstart.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const kinds = await storeKinds();

describe.each(kinds)('quickstart example (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('B sees A’s write live, then exactly the two writes it missed while away, in order', async () => {
    const lines: string[] = [];
    const result = await runQuickstart({ url: srv.url, adminKey: srv.adminKey, log: (l) => lines.push(l) });

    expect(result.writes.map((w) => w.status)).toEqual(['applied', 'applied', 'applied']);
    const [first, second, third] = result.writes;
    expect(result.live).toMatchObject({
      type: 'event',
      channel: 'records:todos',
      kind: 'record',
      seq: first!.seq,
      collection: 'todos',
      id: 'milk',
      op: 'put',
      version: 1,
      data: { title: 'Buy milk', done: false },
      actor: 'alice',
    });
    expect(result.resumedFrom).toBe(first!.seq);
    expect(result.missed.map((e) => [e.seq, e.op, e.id, e.version])).toEqual([
      [second!.seq, 'patch', 'milk', 2],
      [third!.seq, 'put', 'bread', 1],
    ]);
    expect(result.missed[0]!.data).toEqual({ title: 'Buy milk', done: true });
    expect(third!.seq).toBe(second!.seq! + 1);
    expect(lines).toContain('B received 2 missed event(s)');
    expect(lines).toEqual(result.lines);
  });

  it('runs as the documented command and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/quickstart/index.ts'], {
      cwd: ROOT,
      env: { ...process.env, SYNCBRIDGE_URL: srv.url, SYNCBRIDGE_ADMIN_KEY: srv.adminKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/B got live: seq \d+ put todos\/milk v\d+/);
    expect(out).toContain('B received 2 missed event(s)');
    expect(out.trim().endsWith('ok')).toBe(true);
  });

  it('exits 1 with a clear message when the admin key is wrong', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/quickstart/index.ts'], {
      cwd: ROOT,
      env: { ...process.env, SYNCBRIDGE_URL: srv.url, SYNCBRIDGE_ADMIN_KEY: 'not-the-admin-key' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(code).toBe(1);
    expect(err).toContain('quickstart failed: minting a token failed: HTTP 401 UNAUTHORIZED');
  });
});

describe.each(kinds)('README curl quickstart, done with fetch (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('mints a token with the admin key, PUTs a record and GETs it back', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    // The README shows these exact calls; this test makes them against a real server.
    expect(readme).toContain('-H \'X-Api-Key: \'"$ADMIN_KEY"');
    expect(readme).toContain('-d \'{"tenant":"demo","user":"alice"}\'');
    expect(readme).toContain('curl -s -X PUT http://127.0.0.1:4025/v1/records/todos/t1');
    expect(readme).toContain('curl -s http://127.0.0.1:4025/v1/records/todos/t1');

    const minted = await fetch(`${srv.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'X-Api-Key': srv.adminKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ tenant: 'demo', user: 'alice' }),
    });
    expect(minted.status).toBe(200);
    const { token, expiresAt } = (await minted.json()) as { token: string; expiresAt: string };
    expect(token.split('.')).toHaveLength(3);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    const put = await fetch(`${srv.url}/v1/records/todos/t1`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Buy milk', done: false }),
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('etag')).toBe('"1"');
    expect(put.headers.get('x-seq')).toBe('1');
    expect(await put.json()).toMatchObject({
      collection: 'todos',
      id: 't1',
      data: { title: 'Buy milk', done: false },
      version: 1,
      updatedBy: 'alice',
      deleted: false,
    });

    const get = await fetch(`${srv.url}/v1/records/todos/t1`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(get.status).toBe(200);
    expect(get.headers.get('etag')).toBe('"1"');
    const record = (await get.json()) as Record<string, unknown>;
    expect(Object.keys(record).sort()).toEqual(
      ['collection', 'data', 'deleted', 'hlc', 'id', 'updatedAt', 'updatedBy', 'version'].sort(),
    );
    expect(record.data).toEqual({ title: 'Buy milk', done: false });
  });
});

describe('documentation links', () => {
  const files = [
    join(ROOT, 'README.md'),
    join(ROOT, 'examples/quickstart/README.md'),
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(ROOT, 'docs', f)),
  ];

  /** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
  function anchors(markdown: string): Set<string> {
    const out = new Set<string>();
    const text = markdown.replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/^#{1,6}\s+(.+)$/gm)) {
      out.add(
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .replace(/\s/g, '-'),
      );
    }
    return out;
  }

  it.each(files.map((f) => [f.slice(ROOT.length + 1), f]))(
    'every relative link in %s resolves',
    (_n, file) => {
      const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
      const broken: string[] = [];
      let count = 0;
      for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        count += 1;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const resolved = path === '' ? file : resolve(dirname(file), path);
        if (!existsSync(resolved)) {
          broken.push(`${target} (no such file)`);
          continue;
        }
        if (anchor && statSync(resolved).isFile() && resolved.endsWith('.md')) {
          if (!anchors(readFileSync(resolved, 'utf8')).has(anchor))
            broken.push(`${target} (no such heading)`);
        }
      }
      expect(broken).toEqual([]);
      // The link pattern must keep finding links: the README has many.
      if (file === join(ROOT, 'README.md')) expect(count).toBeGreaterThan(5);
    },
  );
});
