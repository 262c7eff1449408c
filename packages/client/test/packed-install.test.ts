/**
 * The packages as their users get them, outside the workspace: every published package is built and
 * packed (`npm pack`), the tarballs are installed with `npm install` into a throw-away project in a temp
 * directory (real files, no workspace links, no tsx; better-sqlite3 compiled from source), and there:
 *
 * - the packed server starts with `npx syncbridge serve` on an ephemeral port, and serves its
 *   dashboard from the bundle prebuilt into @syncbridge/dashboard (esbuild is not installed there);
 * - a plain `.mjs` Node app writes with the SDK, sees the write on a subscription, and resumes an
 *   event stream from a cursor after closing, receiving exactly the events it missed;
 * - the SDK bundled by esbuild for the browser from the installed package, with no externals, runs
 *   in Chromium and writes and receives against that server;
 * - what the docs tell an app to do: `npx syncbridge token` (the line the server prints) mints a token
 *   the server takes, CommonJS `require()` loads the ES modules where Node can, a TypeScript app
 *   importing every package type-checks under `moduleResolution` node16 and bundler, and the offline
 *   replica in a `FileStorage` file shows the last data with no server reachable.
 *
 * The install takes a minute or two (most of it compiling better-sqlite3); packages come from npm's
 * cache where it has them. Without /usr/bin/chromium the browser part is skipped with a loud message,
 * except under CI=true, where it fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PackedPackage, packPackages, ROOT } from '../../../scripts/packages.ts';
import { BROWSER_ENTRY, NODE_APP, REPLICA_APP, TS_APP } from './packed-apps.ts';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const banner = '!'.repeat(100);
  const message = `${CHROMIUM} is missing: the installed SDK's browser test cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${banner}\n!!! SKIPPED: ${message}\n${banner}\n`);
}
const ADMIN_KEY = 'packed-admin-key-0123456789abcdef';

/**
 * The environment of everything run in the throw-away project: the workspace's own (vitest.config.ts
 * adds the source condition to NODE_OPTIONS) would point the installed packages at their TypeScript.
 */
function outsideEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('SYNCBRIDGE_') && !(key in extra)) delete env[key];
  return env;
}

/** The packed server, started with `npx syncbridge serve`; resolves once it prints its URL. */
function startPackedServer(project: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn('npx', ['--no-install', 'syncbridge', 'serve'], {
    cwd: project,
    env: outsideEnv({
      SYNCBRIDGE_PORT: '0',
      SYNCBRIDGE_HOST: '127.0.0.1',
      SYNCBRIDGE_DATA_DIR: join(project, 'data'),
      SYNCBRIDGE_ADMIN_KEY: ADMIN_KEY,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: npx runs the server as a child, and the test stops both.
    detached: true,
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /syncbridge listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the packed server exited (${code}) before listening:\n${output}`));
    });
  });
}

async function mintToken(url: string, tenant: string, user: string): Promise<string> {
  const res = await fetch(`${url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
    body: JSON.stringify({ tenant, user }),
  });
  if (!res.ok) throw new Error(`token: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

describe('the packed packages, installed outside the workspace', () => {
  let work: string;
  let project: string;
  let packed: PackedPackage[];
  let server: { child: ChildProcess; url: string } | null = null;
  let token: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    let t = performance.now();
    work = mkdtempSync(join(tmpdir(), 'syncbridge-packed-'));
    project = join(work, 'app');
    mkdirSync(project);
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT, env: outsideEnv() });
    packed = packPackages(work);
    timings.buildAndPackMs = performance.now() - t;

    t = performance.now();
    // npm 11 runs a dependency's install script only if the project allows it (better-sqlite3 compiles).
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'outside',
        private: true,
        type: 'module',
        allowScripts: { 'better-sqlite3': true },
      }),
    );
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packed.map((p) => p.tarball)],
      {
        cwd: project,
        env: outsideEnv({ npm_config_build_from_source: 'true', JOBS: 'max' }),
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    timings.installMs = performance.now() - t;

    t = performance.now();
    server = await startPackedServer(project);
    timings.serverStartMs = performance.now() - t;
    token = await mintToken(server.url, 'outside', 'alice');
  }, 900_000);

  afterAll(async () => {
    console.log(
      `packed-install timings: ${Object.entries(timings)
        .map(([k, v]) => `${k} ${Math.round(v)}`)
        .join(', ')}`,
    );
    if (server) {
      const exited = new Promise((resolve) => server!.child.once('exit', resolve));
      process.kill(-server.child.pid!, 'SIGTERM');
      await exited;
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs real copies of every package, no links, and the server without esbuild or tsx', () => {
    for (const pkg of packed) {
      const installed = join(project, 'node_modules', pkg.name);
      expect(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version).toBe(
        pkg.manifest.version,
      );
      expect(existsSync(join(installed, 'dist'))).toBe(true);
    }
    expect(existsSync(join(project, 'node_modules/esbuild'))).toBe(false);
    expect(existsSync(join(project, 'node_modules/tsx'))).toBe(false);
  });

  it('serves the dashboard from the prebuilt bundle', async () => {
    const page = await fetch(`${server!.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/dashboard/app.js');
    const script = await fetch(`${server!.url}/dashboard/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await script.text()).length).toBeGreaterThan(10_000);
  });

  it('runs a plain .mjs Node app that writes, subscribes and resumes from a cursor', async () => {
    writeFileSync(join(project, 'app.mjs'), NODE_APP);
    const wsUrl = `${server!.url.replace(/^http/, 'ws')}/v1/realtime`;
    const t = performance.now();
    const { stdout } = await run(process.execPath, ['app.mjs', wsUrl, token], {
      cwd: project,
      env: outsideEnv(),
      timeout: 60_000,
    });
    timings.nodeAppMs = performance.now() - t;
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({
      put: 'applied',
      seen: { title: 'from a packed SDK', done: false },
      missed: [2, 3],
    });
    expect(out.cursor).toBe(out.firstSeq);
  }, 90_000);

  it('mints a token with `npx syncbridge token`, as the server prints, that the server takes', async () => {
    const { stdout } = await run(
      'npx',
      ['--no-install', 'syncbridge', 'token', '--tenant', 'outside', '--user', 'bob'],
      { cwd: project, env: outsideEnv({ SYNCBRIDGE_DATA_DIR: join(project, 'data') }), timeout: 60_000 },
    );
    const res = await fetch(`${server!.url}/v1/records/todos`, {
      headers: { authorization: `Bearer ${stdout.trim()}` },
    });
    expect(res.status).toBe(200);
  }, 90_000);

  it.skipIf(!process.features.require_module)(
    'loads every package with require() from CommonJS',
    async () => {
      const names = packed.map((p) => p.name).filter((n) => n !== '@syncbridge/react');
      writeFileSync(
        join(project, 'app.cjs'),
        `const names = ${JSON.stringify(names)};\n` +
          'console.log(JSON.stringify(names.map((n) => Object.keys(require(n)).length > 0)));\n',
      );
      const { stdout } = await run(process.execPath, ['app.cjs'], { cwd: project, env: outsideEnv() });
      expect(JSON.parse(stdout)).toEqual(names.map(() => true));
    },
    60_000,
  );

  it('type-checks a TypeScript app using every package under node16 and bundler resolution', async () => {
    // The app's own type packages, as it would install them (React's types for @syncbridge/react).
    for (const types of ['node', 'react']) {
      const target = join(project, 'node_modules/@types', types);
      mkdirSync(join(project, 'node_modules/@types'), { recursive: true });
      if (!existsSync(target)) symlinkSync(join(ROOT, 'node_modules/@types', types), target, 'dir');
    }
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    // node16 also checks every declaration file the packages ship (and those they import); bundler
    // resolution, checked second, only what the app uses, to keep the test's time down.
    for (const [dir, module, resolution, skipLibCheck] of [
      ['ts-node16', 'node16', 'node16', false],
      ['ts-bundler', 'esnext', 'bundler', true],
    ] as const) {
      mkdirSync(join(project, dir), { recursive: true });
      writeFileSync(join(project, dir, 'app.ts'), TS_APP);
      writeFileSync(join(project, dir, 'package.json'), JSON.stringify({ type: 'module' }));
      const compilerOptions = {
        module,
        moduleResolution: resolution,
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck,
        types: ['node'],
      };
      writeFileSync(
        join(project, dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions, include: ['app.ts'] }),
      );
      const result = await run(process.execPath, [tsc, '-p', join(project, dir)], {
        cwd: project,
        env: outsideEnv(),
      }).catch((err: { stdout?: string }) => ({ stdout: `tsc failed:\n${err.stdout ?? String(err)}` }));
      expect(result.stdout, `${dir}`).toBe('');
    }
  }, 300_000);

  it('keeps the replica in a FileStorage file: the last data shows with no server reachable', async () => {
    writeFileSync(join(project, 'replica.mjs'), REPLICA_APP);
    const wsUrl = `${server!.url.replace(/^http/, 'ws')}/v1/realtime`;
    const res = await fetch(`${server!.url}/v1/records/todos/offline-1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'kept on the device' }),
    });
    expect(res.status).toBeLessThan(300);
    const online = await run(process.execPath, ['replica.mjs', wsUrl, token, '1'], {
      cwd: project,
      env: outsideEnv(),
      timeout: 60_000,
    });
    expect(JSON.parse(online.stdout).ids).toContain('offline-1');
    // A port nothing listens on: the server is out of reach.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    const offline = await run(
      process.execPath,
      ['replica.mjs', `ws://127.0.0.1:${port}/v1/realtime`, token, '0'],
      { cwd: project, env: outsideEnv(), timeout: 60_000 },
    );
    expect(JSON.parse(offline.stdout)).toMatchObject({ source: 'storage' });
    expect(JSON.parse(offline.stdout).ids).toContain('offline-1');
  }, 150_000);

  describe.skipIf(!haveChromium)('in Chromium', () => {
    let browser: Browser;
    let site: Server;

    afterAll(async () => {
      await browser?.close();
      await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
    });

    it('bundles the installed SDK for the browser with no externals, and writes and receives', async () => {
      writeFileSync(join(project, 'browser.mjs'), BROWSER_ENTRY);
      const bundle = await build({
        absWorkingDir: project,
        entryPoints: ['browser.mjs'],
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        write: false,
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(Object.values(bundle.metafile.outputs)[0]!.inputs);
      expect(inputs.some((path) => path.includes('node_modules/@syncbridge/client/dist/'))).toBe(true);
      expect(inputs.filter((path) => /typebox|node_modules\/ws\/|^node:/.test(path))).toEqual([]);
      const js = bundle.outputFiles[0]!.contents;
      const gzipped = gzipSync(js, { level: 9 }).length;
      console.log(`installed SDK browser bundle: ${js.length} bytes minified, ${gzipped} gzipped`);
      expect(gzipped).toBeLessThanOrEqual(25 * 1024);

      site = createServer((req, res) => {
        if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
        else
          res
            .writeHead(200, { 'content-type': 'text/html' })
            .end('<!doctype html><script type="module" src="/app.js"></script>');
      });
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      const { port } = site.address() as { port: number };

      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
      const page = await browser.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => typeof (globalThis as { sdk?: unknown }).sdk === 'object');
      const wsUrl = `${server!.url.replace(/^http/, 'ws')}/v1/realtime`;
      await page.evaluate(([url, t]) => sdk.start(url!, t!), [wsUrl, token]);

      // The browser writes; the server has it.
      const status = await page.evaluate(() => sdk.put('b1', { title: 'from Chromium' }));
      expect(status).toBe('applied');
      const record = await fetch(`${server!.url}/v1/records/todos/b1`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.json() as Promise<{ data: unknown }>);
      expect(record.data).toEqual({ title: 'from Chromium' });

      // A write over REST reaches the browser's subscription.
      const res = await fetch(`${server!.url}/v1/records/todos/r1`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'from REST' }),
      });
      expect(res.status).toBeLessThan(300);
      await page.waitForFunction(() => sdk.get('r1') !== undefined);
      expect(await page.evaluate(() => sdk.get('r1'))).toEqual({
        title: 'from REST',
      });
    }, 90_000);
  });
});

/** The page's `window.sdk`, as far as the test uses it. */
declare const sdk: {
  start(url: string, token: string): void;
  put(id: string, data: Record<string, unknown>): Promise<string>;
  get(id: string): unknown;
};
