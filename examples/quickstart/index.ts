/**
 * Runs the quickstart against a running server:
 *
 *   SYNCBRIDGE_ADMIN_KEY=sb_admin_… node --import tsx examples/quickstart/index.ts
 *
 * SYNCBRIDGE_URL defaults to http://127.0.0.1:4025. Exits 0 when B received the live event and then
 * exactly the two events it missed; 1 on any failure, or after 10 s.
 */
import { runQuickstart } from './quickstart.ts';

const url = process.env.SYNCBRIDGE_URL ?? 'http://127.0.0.1:4025';
const adminKey = process.env.SYNCBRIDGE_ADMIN_KEY;

function fail(message: string): never {
  process.stderr.write(`quickstart failed: ${message}\n`);
  process.exit(1);
}

if (!adminKey) {
  fail('set SYNCBRIDGE_ADMIN_KEY to the admin key the server printed on its first start');
}

const timer = setTimeout(() => fail('no result within 10 s'), 10_000);

try {
  const result = await runQuickstart({ url, adminKey, log: (line) => process.stdout.write(`${line}\n`) });
  const expected = result.writes.slice(1).map((w) => w.seq);
  const got = result.missed.map((e) => e.seq);
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    fail(`B expected the missed seqs ${expected.join(', ')}, got ${got.join(', ') || 'none'}`);
  }
  clearTimeout(timer);
  process.stdout.write('ok\n');
} catch (err) {
  const cause = (err as { cause?: { code?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') fail(`no server at ${url}: start one with npm start`);
  fail((err as Error).message);
}
