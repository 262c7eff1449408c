/**
 * Configuration (DESIGN.md "Configuration"): SYNCBRIDGE_* variables and a YAML or JSON file, validated
 * with one message per wrong value; and the `syncbridge` command line (`serve`, `token`, `migrate`) run
 * as a real child process on a temporary SQLite data dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const REPO = resolve(import.meta.dirname, '../../../..');
const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'syncbridge-config-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeTemp(name: string, text: string): string {
  const path = join(tmp, `${++fileCount}-${name}`);
  writeFileSync(path, text);
  return path;
}

/** The problems of the ConfigError that loading throws (fails the test if it loads). */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('loadConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      port: 4025,
      host: '127.0.0.1',
      dataDir: './data',
      webhookAllowPrivate: [],
    });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.busUrl).toBeUndefined();
    expect(config.jwtSecret).toBeUndefined();
    expect(config.adminKey).toBeUndefined();
  });

  it('reads the SYNCBRIDGE_* variables', () => {
    const config = loadConfig({
      env: {
        SYNCBRIDGE_PORT: '0',
        SYNCBRIDGE_HOST: '0.0.0.0',
        SYNCBRIDGE_DATA_DIR: '/var/lib/syncbridge',
        SYNCBRIDGE_DATABASE_URL: 'postgres://user@db:5432/sync',
        SYNCBRIDGE_BUS_URL: 'redis://cache:6379',
        SYNCBRIDGE_JWT_SECRET: 's'.repeat(40),
        SYNCBRIDGE_ADMIN_KEY: 'admin-key-0123456789',
        SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32, 10.0.0.0/8,,',
        SYNCBRIDGE_LOG_LEVEL: 'debug',
        SYNCBRIDGE_HEARTBEAT_MS: '1500',
        UNRELATED: 'ignored',
      },
    });
    expect(config).toMatchObject({
      port: 0,
      host: '0.0.0.0',
      dataDir: '/var/lib/syncbridge',
      databaseUrl: 'postgres://user@db:5432/sync',
      busUrl: 'redis://cache:6379',
      jwtSecret: 's'.repeat(40),
      adminKey: 'admin-key-0123456789',
      webhookAllowPrivate: ['127.0.0.1/32', '10.0.0.0/8'],
      logLevel: 'debug',
      heartbeatMs: 1500,
    });
    expect(loadConfig({ env: { SYNCBRIDGE_DATABASE_URL: 'postgresql://db/x' } }).databaseUrl).toBe(
      'postgresql://db/x',
    );
    // An empty variable counts as unset.
    expect(loadConfig({ env: { SYNCBRIDGE_PORT: '', SYNCBRIDGE_HOST: '' } })).toMatchObject({
      port: 4025,
      host: '127.0.0.1',
    });
  });

  it('reads a YAML file and a JSON file, and the variables override the file', () => {
    const yaml = writeTemp(
      'syncbridge.yaml',
      [
        '# settings',
        'port: 5000',
        'host: 0.0.0.0',
        'dataDir: /srv/data',
        'logLevel: warn',
        'webhookAllowPrivate: [127.0.0.1/32]',
        'collections:',
        '  ledger:',
        '    strategy: server_wins',
        '  profiles:',
        '    schema:',
        '      type: object',
        '      required: [name]',
        '',
      ].join('\n'),
    );
    const fromYaml = loadConfig({ env: {}, file: yaml });
    expect(fromYaml).toMatchObject({
      port: 5000,
      host: '0.0.0.0',
      dataDir: '/srv/data',
      logLevel: 'warn',
      webhookAllowPrivate: ['127.0.0.1/32'],
      collections: {
        ledger: { strategy: 'server_wins' },
        profiles: { schema: { type: 'object', required: ['name'] } },
      },
    });
    const json = writeTemp(
      'syncbridge.json',
      JSON.stringify({
        port: 6000,
        databaseUrl: 'postgres://db/app',
        collections: { todos: { strategy: 'lww' } },
      }),
    );
    expect(loadConfig({ env: {}, file: json })).toMatchObject({
      port: 6000,
      host: '127.0.0.1',
      databaseUrl: 'postgres://db/app',
      collections: { todos: { strategy: 'lww' } },
    });

    const merged = loadConfig({
      env: { SYNCBRIDGE_PORT: '7000', SYNCBRIDGE_DATA_DIR: '/env/data' },
      file: yaml,
    });
    expect(merged).toMatchObject({ port: 7000, dataDir: '/env/data', host: '0.0.0.0', logLevel: 'warn' });
    // SYNCBRIDGE_CONFIG names the file too.
    expect(loadConfig({ env: { SYNCBRIDGE_CONFIG: json } }).port).toBe(6000);
    // An empty file is no settings at all.
    expect(loadConfig({ env: {}, file: writeTemp('empty.yaml', '') }).port).toBe(4025);
  });

  it('gives each wrong value its own message naming the variable or the file key', () => {
    const cases: Array<[string, () => unknown, RegExp[]]> = [
      ['port "abc"', () => loadConfig({ env: { SYNCBRIDGE_PORT: 'abc' } }), [/SYNCBRIDGE_PORT/, /abc/]],
      ['port 70000', () => loadConfig({ env: { SYNCBRIDGE_PORT: '70000' } }), [/SYNCBRIDGE_PORT/, /70000/]],
      ['port -1', () => loadConfig({ env: { SYNCBRIDGE_PORT: '-1' } }), [/SYNCBRIDGE_PORT/]],
      [
        'port in a file',
        () => loadConfig({ env: {}, file: writeTemp('port.yaml', 'port: 70000\n') }),
        [/port in .*port\.yaml/, /70000/],
      ],
      [
        'unknown file key',
        () => loadConfig({ env: {}, file: writeTemp('unknown.yaml', 'prot: 4025\n') }),
        [/unknown\.yaml/, /"prot"/],
      ],
      [
        'bad strategy',
        () =>
          loadConfig({
            env: {},
            file: writeTemp(
              'strategy.json',
              JSON.stringify({ collections: { orders: { strategy: 'chaos' } } }),
            ),
          }),
        [/collections/, /strategy\.json/, /orders\/strategy/],
      ],
      [
        'databaseUrl not postgres://',
        () => loadConfig({ env: { SYNCBRIDGE_DATABASE_URL: 'mysql://db/app' } }),
        [/SYNCBRIDGE_DATABASE_URL/, /mysql:\/\/db\/app/],
      ],
      [
        'databaseUrl in a file',
        () => loadConfig({ env: {}, file: writeTemp('db.yaml', 'databaseUrl: sqlite://x\n') }),
        [/databaseUrl in .*db\.yaml/],
      ],
      [
        'log level',
        () => loadConfig({ env: { SYNCBRIDGE_LOG_LEVEL: 'loud' } }),
        [/SYNCBRIDGE_LOG_LEVEL/, /loud/],
      ],
      [
        'short jwt secret',
        () => loadConfig({ env: { SYNCBRIDGE_JWT_SECRET: 'short' } }),
        [/SYNCBRIDGE_JWT_SECRET/],
      ],
      ['bus url', () => loadConfig({ env: { SYNCBRIDGE_BUS_URL: 'kafka://x' } }), [/SYNCBRIDGE_BUS_URL/]],
    ];
    for (const [what, load, patterns] of cases) {
      const problems = problemsOf(load);
      expect(problems, what).toHaveLength(1);
      for (const pattern of patterns) expect(problems[0], what).toMatch(pattern);
    }
  });

  it('reports every wrong value together, from the file and the variables', () => {
    const file = writeTemp(
      'many.yaml',
      [
        'port: 70000',
        'prot: 1',
        'collections:',
        '  orders:',
        '    strategy: chaos',
        'logLevel: loud',
        '',
      ].join('\n'),
    );
    let error: ConfigError | null = null;
    try {
      loadConfig({
        env: {
          SYNCBRIDGE_HEARTBEAT_MS: 'often',
          SYNCBRIDGE_DATABASE_URL: 'mysql://db/app',
          SYNCBRIDGE_ADMIN_KEY: 'short',
        },
        file,
      });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = error!.problems;
    const expected = [
      /SYNCBRIDGE_HEARTBEAT_MS.*often/,
      /prot/,
      /port in .*many\.yaml.*70000/,
      /collections in .*many\.yaml.*orders\/strategy/,
      /logLevel in .*many\.yaml/,
      /SYNCBRIDGE_DATABASE_URL/,
      /SYNCBRIDGE_ADMIN_KEY/,
    ];
    for (const pattern of expected) {
      expect(
        problems.filter((p) => pattern.test(p)),
        `${pattern} in ${JSON.stringify(problems)}`,
      ).toHaveLength(1);
    }
    expect(problems).toHaveLength(expected.length);
    // The error message lists them all, one per line.
    for (const p of problems) expect(error!.message).toContain(p);
  });

  it('refuses a file that is not valid YAML or JSON, or does not hold settings', () => {
    const yaml = writeTemp('broken.yaml', 'port: 4025\n  host: [unclosed\n');
    const [yamlProblem] = problemsOf(() => loadConfig({ env: {}, file: yaml }));
    expect(yamlProblem).toContain(yaml);
    expect(yamlProblem).toMatch(/not valid YAML/);

    const json = writeTemp('broken.json', '{"port": 4025,}');
    const [jsonProblem] = problemsOf(() => loadConfig({ env: {}, file: json }));
    expect(jsonProblem).toContain(json);
    expect(jsonProblem).toMatch(/not valid JSON/);

    const list = writeTemp('list.yaml', '- port: 4025\n');
    expect(problemsOf(() => loadConfig({ env: {}, file: list }))[0]).toMatch(/list\.yaml.*object/);

    const missing = join(tmp, 'does-not-exist.yaml');
    expect(problemsOf(() => loadConfig({ env: {}, file: missing }))[0]).toContain(missing);
  });
});

// ---------------------------------------------------------------------------------------------------
// The command line, as a child process.

/** The environment of a CLI run: this process's, minus any SYNCBRIDGE_* setting, plus `env`. */
function cliEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('SYNCBRIDGE_')) base[k] = v;
  }
  return { ...base, SYNCBRIDGE_LOG_LEVEL: 'warn', ...env };
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion (bounded by `timeoutMs`). */
function runCli(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: REPO,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`syncbridge ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

interface Served {
  child: ChildProcess;
  url: string;
  /** Everything printed on stdout up to and including the realtime line. */
  banner: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `syncbridge serve` and resolves once its start banner is printed. */
async function serve(env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
    cwd: REPO,
    env: cliEnv({ SYNCBRIDGE_PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const banner = await new Promise<string[]>((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`serve printed no banner in 20 s:\n${out}\n${stderr}`)),
      20_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^ {2}realtime: .*$/m.test(out)) {
        clearTimeout(timer);
        resolvePromise(out.split('\n').filter((l) => l.length > 0));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${out}\n${stderr}`));
    });
  });
  const url = /^syncbridge listening on (http:\/\/\S+)$/.exec(banner[0]!)?.[1] ?? '';
  return { child, url, banner, stderr: () => stderr, exited };
}

async function stop(served: Served): Promise<number | null> {
  served.child.kill('SIGTERM');
  const timer = setTimeout(() => served.child.kill('SIGKILL'), 15_000);
  const code = await served.exited;
  clearTimeout(timer);
  return code;
}

const STACK = /\n\s+at |\.ts:\d+|node:internal/;

describe('syncbridge CLI', () => {
  let dataDir: string;
  const running: Served[] = [];

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-cli-'));
  });
  afterAll(async () => {
    for (const s of running) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serve prints its URL first and the admin key on first start; the key and `token` work; SIGTERM exits 0', async () => {
    const first = await serve({ SYNCBRIDGE_DATA_DIR: dataDir });
    running.push(first);
    expect(first.banner[0]).toMatch(/^syncbridge listening on http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(first.url).port);
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(4025);
    const keyLine = first.banner.find((l) => /admin key/.test(l));
    const adminKey = /admin key \(shown once, keep it safe\): (\S+)$/.exec(keyLine ?? '')?.[1];
    expect(adminKey, first.banner.join('\n')).toBeDefined();

    // The printed admin key mints a token over REST, and the token works.
    const minted = await fetch(`${first.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': adminKey!, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 't', user: 'rest-user' }),
    });
    expect(minted.status).toBe(200);
    const { token } = (await minted.json()) as { token: string };
    const put = await fetch(`${first.url}/v1/records/notes/n1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'rest' }),
    });
    expect(put.status).toBe(201);

    // `token` on the same data dir prints a JWT the running server accepts.
    const cliToken = await runCli(['token', '--tenant', 't', '--user', 'u'], {
      SYNCBRIDGE_DATA_DIR: dataDir,
    });
    expect(cliToken.code, cliToken.stderr).toBe(0);
    const jwt = cliToken.stdout.trim();
    expect(jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const read = await fetch(`${first.url}/v1/records/notes/n1`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { data: unknown }).data).toEqual({ from: 'rest' });
    const ws = await TestWsClient.connect(`${first.url.replace(/^http/, 'ws')}/v1/realtime`, jwt);
    expect(ws.messages[0]).toMatchObject({ type: 'welcome', tenant: 't', user: 'u' });

    // SIGTERM: connections are told to go away, and the process exits 0.
    const code = await stop(first);
    expect(code, first.stderr()).toBe(0);
    expect(await ws.waitForClose()).toBe(1001);

    // Second start on the same data: no new admin key, the first one still works, the data is there.
    const second = await serve({ SYNCBRIDGE_DATA_DIR: dataDir });
    running.push(second);
    expect(second.banner[0]).toMatch(/^syncbridge listening on http:\/\/127\.0\.0\.1:\d+$/);
    expect(second.banner.join('\n')).not.toMatch(/shown once/);
    expect(second.banner.join('\n')).not.toContain(adminKey!);
    const again = await fetch(`${second.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': adminKey!, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 't', user: 'again' }),
    });
    expect(again.status).toBe(200);
    const stillThere = await fetch(`${second.url}/v1/records/notes/n1`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(stillThere.status).toBe(200);
    expect(await stop(second), second.stderr()).toBe(0);
  }, 60_000);

  it('migrate applies the migrations and exits 0', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'syncbridge-cli-migrate-'));
    try {
      const run = await runCli(['migrate'], { SYNCBRIDGE_DATA_DIR: fresh });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/migrations up to date \(sqlite\)/);
      const twice = await runCli(['migrate'], { SYNCBRIDGE_DATA_DIR: fresh });
      expect(twice.code, twice.stderr).toBe(0);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  }, 40_000);

  it('a wrong value stops the command with exit 1 and the message on stderr, without a stack trace', async () => {
    const bad = await runCli(['serve'], { SYNCBRIDGE_DATA_DIR: dataDir, SYNCBRIDGE_PORT: 'abc' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).not.toMatch(/listening/);
    expect(bad.stderr).toMatch(/SYNCBRIDGE_PORT="abc" must be a whole number/);
    expect(bad.stderr).not.toMatch(STACK);

    const many = await runCli(['serve'], {
      SYNCBRIDGE_DATA_DIR: dataDir,
      SYNCBRIDGE_PORT: '70000',
      SYNCBRIDGE_DATABASE_URL: 'mysql://db/app',
    });
    expect(many.code).toBe(1);
    expect(many.stderr).toMatch(/SYNCBRIDGE_PORT/);
    expect(many.stderr).toMatch(/SYNCBRIDGE_DATABASE_URL/);
    expect(many.stderr).not.toMatch(STACK);

    const brokenFile = writeTemp('cli-broken.yaml', 'port: [\n');
    const fromFile = await runCli(['migrate', '--config', brokenFile], { SYNCBRIDGE_DATA_DIR: dataDir });
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain(brokenFile);
    expect(fromFile.stderr).not.toMatch(STACK);

    const noUser = await runCli(['token', '--tenant', 't'], { SYNCBRIDGE_DATA_DIR: dataDir });
    expect(noUser.code).toBe(1);
    expect(noUser.stderr).toMatch(/--user/);
    expect(noUser.stdout).toBe('');
    expect(noUser.stderr).not.toMatch(STACK);

    const unknown = await runCli(['launch'], { SYNCBRIDGE_DATA_DIR: dataDir });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/launch/);
    expect(unknown.stderr).not.toMatch(STACK);
  }, 60_000);
});
