/**
 * `syncbridge admin-key rotate | revoke`: replaces or forgets the stored server-wide admin key, on the
 * server's own store, while the server runs or not. Every node refuses the old key from its next request
 * on (keys are looked up in the store by hash, never cached). A new key is printed once and only its hash
 * is kept. It never touches a key given by SYNCBRIDGE_ADMIN_KEY, nor tenant API keys.
 */
import { ApiKeys } from '../auth/api-keys.ts';
import type { ServerConfig } from '../config/config.ts';
import { createLogger } from '../server.ts';
import { openStore } from '../startup/storage.ts';
import { CommandError } from './errors.ts';

export async function adminKeyCommand(config: ServerConfig, action: string | undefined): Promise<void> {
  if (action !== 'rotate' && action !== 'revoke') {
    throw new CommandError(
      'admin-key needs an action: rotate (print a new key) or revoke (refuse the current one)',
    );
  }
  if (config.adminKey) {
    throw new CommandError(
      'the admin key comes from SYNCBRIDGE_ADMIN_KEY (or adminKey in the config file): change it there and restart every node',
    );
  }
  const store = await openStore(config, createLogger({ ...config, logLevel: 'warn' }));
  try {
    const keys = new ApiKeys(store, undefined);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    if (action === 'rotate') {
      const key = await keys.rotateAdminKey();
      out(`admin key (shown once, keep it safe): ${key}`);
      out('the previous admin key is refused from now on, on every node');
    } else {
      const had = await keys.revokeAdminKey();
      out(
        had
          ? 'admin key revoked: it is refused from now on; `syncbridge admin-key rotate` makes a new one'
          : 'admin key revoked (there was none stored); `syncbridge admin-key rotate` makes a new one',
      );
    }
  } finally {
    await store.close();
  }
}
