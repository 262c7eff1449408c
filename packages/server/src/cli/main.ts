/**
 * The `syncbridge` command: `serve`, `migrate`, `token`, `replay`, `backup`, `restore`, `history`,
 * `admin-key`, `sealed backfill`, `secrets status|rotate`.
 * Configuration comes from SYNCBRIDGE_* variables and an optional `--config` file; a wrong value stops
 * the command with one line per problem, and an expected failure with one line, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { TokenService } from '../auth/tokens.ts';
import { ConfigError, loadConfig, type ServerConfig } from '../config/config.ts';
import { verifyReplay } from '../replay/verify.ts';
import { createLogger, resolveJwtSecret, startServer } from '../server.ts';
import { StartupError } from '../startup/reach.ts';
import { openStore } from '../startup/storage.ts';
import { adminKeyCommand } from './admin-key.ts';
import { backupCommand, restoreCommand } from './backup.ts';
import { CommandError } from './errors.ts';
import { historyCommand } from './history.ts';
import { sealedCommand } from './sealed.ts';
import { secretsCommand } from './secrets.ts';

const USAGE = `usage: syncbridge <command> [options]

commands:
  serve           start the server (HTTP + WebSocket)
  migrate         apply pending database migrations and exit
  token           mint a user token: --tenant T --user U [--roles a,b] [--ttl seconds] [--platform P]
                  [--claims '{"locations":["wh-1"]}'] (what access rules read as auth.claims)
  replay          --verify [--tenant T]: rebuild every record from the log and report any difference
  backup <dir>    copy the SQLite data (database, connector state, generated JWT secret) into a new
                  directory, consistently, while the server runs
  restore <dir>   copy a backup into a data dir that has no database yet (--data-dir)
  history compact [--tenant T] [--batch N] [--after-ms N]
                  convert superseded record versions to deltas and keyframes, in batches of N
                  log entries (progress on stderr); versions superseded less than N ms ago stay full
  admin-key rotate | revoke
                  print a new server-wide admin key (the old one is refused at once), or refuse
                  the current one without making another
  sealed backfill [--tenant T] [--collection C] [--batch 500]
                  encrypt what a collection stored before a field joined its sealedFields, and
                  re-seal under the newest secrets key what an older key sealed; resumable
  secrets status [--json] | secrets rotate [--batch 500]
                  what is still sealed under an older secrets key, per kind (0 everywhere: the
                  previous keys may be dropped); rotate re-seals it all now

options:
  --config <file>   YAML or JSON settings (also SYNCBRIDGE_CONFIG)
  --port <n>        overrides SYNCBRIDGE_PORT
  --host <addr>     overrides SYNCBRIDGE_HOST
  --data-dir <dir>  overrides SYNCBRIDGE_DATA_DIR
`;

function configFrom(values: Record<string, string | boolean | undefined>): ServerConfig {
  const overrides: Partial<ServerConfig> = {};
  if (typeof values.port === 'string') {
    if (!/^\d+$/.test(values.port)) throw new ConfigError([`--port ${values.port} must be a whole number`]);
    overrides.port = Number(values.port);
  }
  if (typeof values.host === 'string') overrides.host = values.host;
  if (typeof values['data-dir'] === 'string') overrides.dataDir = values['data-dir'];
  return loadConfig({ file: typeof values.config === 'string' ? values.config : undefined, overrides });
}

async function serve(config: ServerConfig): Promise<void> {
  const server = await startServer(config);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`syncbridge listening on ${server.url}`);
  const ws = server.url.replace(/^http/, 'ws');
  out(
    `  store: ${server.store.kind}${server.store.kind === 'sqlite' ? ` (${config.dataDir}/syncbridge.db)` : ''}`,
  );
  if (server.generatedAdminKey) {
    out(`  admin key (shown once, keep it safe): ${server.generatedAdminKey}`);
  } else {
    out(
      `  admin key: ${config.adminKey ? 'from SYNCBRIDGE_ADMIN_KEY' : 'printed on first start (lost it? npx syncbridge admin-key rotate; or set SYNCBRIDGE_ADMIN_KEY)'}`,
    );
  }
  out(
    `  mint a token: curl -s -X POST ${server.url}/v1/auth/token -H 'X-Api-Key: <admin key>' -H 'Content-Type: application/json' -d '{"tenant":"demo","user":"alice"}'`,
  );
  out(`  (or: npx syncbridge token --tenant demo --user alice)`);
  out(`  realtime: ${ws}/v1/realtime?token=<token>   REST docs: ${server.url}/docs`);
  out(`  dashboard: ${server.url}/dashboard (log in with the admin key and a tenant)`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down: draining connections and in-flight commits');
    const timer = setTimeout(() => {
      server.logger.error('shutdown timed out');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    timer.unref();
    server
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        server.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function migrate(config: ServerConfig): Promise<void> {
  const logger = createLogger(config);
  const store = await openStore(config, logger);
  process.stdout.write(`migrations up to date (${store.kind})\n`);
  await store.close();
}

async function replay(
  config: ServerConfig,
  values: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (!values.verify) throw new ConfigError(['replay needs --verify (the only replay mode so far)']);
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const store = await openStore(config, logger);
  try {
    const tenants = typeof values.tenant === 'string' ? [values.tenant] : undefined;
    if (tenants) {
      const known = new Set(await store.listTenants());
      const missing = tenants.filter((t) => !known.has(t));
      if (missing.length > 0)
        throw new CommandError(
          `tenant ${missing.join(', ')} does not exist in this ${store.kind} store (it has no log)`,
        );
    }
    const report = await verifyReplay(store, {
      tenants,
      progress: (message) => process.stderr.write(`${message}\n`),
    });
    for (const d of report.differences) {
      process.stdout.write(`DIFF ${d.tenant} ${d.collection}/${d.id}: ${d.problem}\n`);
    }
    process.stdout.write(
      `replayed ${report.events} log entries of ${report.tenants} tenant(s) against ${report.records} records: ` +
        `${report.differences.length === 0 ? 'no differences' : `${report.differences.length} difference(s)`}\n`,
    );
    if (report.differences.length > 0) process.exitCode = 2;
  } finally {
    await store.close();
  }
}

async function token(
  config: ServerConfig,
  values: Record<string, string | boolean | undefined>,
): Promise<void> {
  const tenant = values.tenant;
  const user = values.user;
  if (typeof tenant !== 'string' || typeof user !== 'string') {
    throw new ConfigError(['token needs --tenant and --user']);
  }
  const ttl = typeof values.ttl === 'string' ? Number(values.ttl) : 3600;
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new ConfigError([`--ttl ${values.ttl} must be a positive number of seconds`]);
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(tenant))
    throw new ConfigError([`--tenant ${tenant} is not a valid tenant name`]);
  const tokens = new TokenService({
    jwtSecret: resolveJwtSecret(config),
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  });
  const roles = typeof values.roles === 'string' ? values.roles.split(',').filter(Boolean) : [];
  const platform = typeof values.platform === 'string' ? values.platform : undefined;
  let claims: Record<string, unknown> | undefined;
  if (typeof values.claims === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.claims);
    } catch {
      throw new ConfigError([`--claims ${values.claims} is not JSON`]);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ConfigError(['--claims must be a JSON object, e.g. {"locations":["wh-1"]}']);
    claims = parsed as Record<string, unknown>;
  }
  const minted = await tokens.mint({ tenant, user, roles, ttlSeconds: ttl, platform, claims });
  process.stdout.write(`${minted.token}\n`);
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      tenant: { type: 'string' },
      user: { type: 'string' },
      roles: { type: 'string' },
      ttl: { type: 'string' },
      platform: { type: 'string' },
      claims: { type: 'string' },
      verify: { type: 'boolean' },
      json: { type: 'boolean' },
      collection: { type: 'string' },
      batch: { type: 'string' },
      'after-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return;
  }
  const config = configFrom(values);
  switch (command) {
    case 'serve':
      return serve(config);
    case 'migrate':
      return migrate(config);
    case 'token':
      return token(config, values);
    case 'replay':
      return replay(config, values);
    case 'backup':
      return backupCommand(config, positionals[1]);
    case 'restore':
      return restoreCommand(config, positionals[1]);
    case 'history':
      return historyCommand(config, positionals[1], values);
    case 'admin-key':
      return adminKeyCommand(config, positionals[1]);
    case 'sealed':
      return sealedCommand(config, positionals[1], values);
    case 'secrets':
      return secretsCommand(config, positionals[1], values);
    default:
      throw new ConfigError([`unknown command "${command}"`]);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`syncbridge: ${err.message}\n`);
  else if (err instanceof StartupError) process.stderr.write(`syncbridge: ${err.message}\n`);
  else if (err instanceof CommandError) {
    process.stderr.write(`syncbridge: ${err.message}\n`);
    process.exit(err.exitCode);
  } else if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`syncbridge: ${err.message}\n\n${USAGE}`);
  } else process.stderr.write(`syncbridge: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
