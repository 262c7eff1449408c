/**
 * A config file given in part: missing fields keep their defaults at every depth, each real problem gets
 * exactly one line, and a setting with a fixed set of values lists them. The loader runs in-process
 * (cheap); one case goes through the real `syncbridge` command to show what an operator reads.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, loadConfig } from '../../src/config/config.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'syncbridge-defaults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function file(text: string, ext = 'yaml'): string {
  const path = join(dir, `${++files}.${ext}`);
  writeFileSync(path, text);
  return path;
}

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('config sections given in part', () => {
  it('keeps the defaults of every field a section leaves out, at every depth', () => {
    const defaults = defaultConfig();
    const config = loadConfig({
      env: {},
      file: file(
        [
          'rateLimits:',
          '  user: { ratePerSec: 10 }',
          '  tenants:',
          '    small: { tenant: { burst: 7 } }',
          'retention: { deliveriesDays: 7 }',
          '',
        ].join('\n'),
      ),
    });
    expect(config.rateLimits).toEqual({
      user: { ratePerSec: 10, burst: defaults.rateLimits.user.burst },
      tenant: defaults.rateLimits.tenant,
      maxConnectionsPerUser: defaults.rateLimits.maxConnectionsPerUser,
      tenants: { small: { tenant: { ratePerSec: defaults.rateLimits.tenant.ratePerSec, burst: 7 } } },
    });
    expect(config.retention).toEqual({ ...defaults.retention, deliveriesDays: 7 });
  });

  it('gives one line per real problem, and lists the values a union allows', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { SYNCBRIDGE_SQLITE_SYNCHRONOUS: 'OFF' },
        file: file(
          JSON.stringify({
            rateLimits: { user: { ratePerSec: 'fast' } },
            collections: { todos: { strategy: 'nope' } },
            retention: { devicesUnseenDays: -1 },
          }),
          'json',
        ),
      }),
    );
    expect(problems).toHaveLength(4);
    expect(problems).toContainEqual(
      expect.stringMatching(/\/rateLimits\/user\/ratePerSec\): Expected number \(got "fast"\)$/),
    );
    expect(problems).toContainEqual(
      expect.stringMatching(
        /\/collections\/todos\/strategy\): must be one of lww, server_wins, client_wins, merge, manual, custom \(got "nope"\)$/,
      ),
    );
    expect(problems).toContain('SYNCBRIDGE_SQLITE_SYNCHRONOUS: must be one of FULL, NORMAL (got "OFF")');
    expect(problems).toContainEqual(expect.stringMatching(/\/retention\/devicesUnseenDays\)/));
  });

  it('through the syncbridge command: the partial section passes, the one real problem gets one line', () => {
    const config = file(
      'rateLimits:\n  user:\n    ratePerSec: 10\ncollections:\n  todos:\n    strategy: nope\n',
    );
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'token', '--tenant', 't', '--user', 'u', '--config', config],
      { env: { ...process.env, SYNCBRIDGE_DATA_DIR: dir }, encoding: 'utf8', timeout: 30_000 },
    );
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      'syncbridge: invalid configuration:',
      `  - collections in ${config} (/collections/todos/strategy): must be one of lww, server_wins, client_wins, merge, manual, custom (got "nope")`,
    ]);
  });
});
