/**
 * Serves the React todo app:
 *
 *   SYNCBRIDGE_ADMIN_KEY=sb_admin_… node --import tsx examples/react-todos/serve.ts
 *
 * then open the URL it prints. It mints a token for alice in tenant todos-demo, bundles the app with
 * esbuild, and serves it on PORT (default 4027). SYNCBRIDGE_URL defaults to http://127.0.0.1:4025.
 */
import { buildPage, servePage } from './page.ts';

const url = process.env.SYNCBRIDGE_URL ?? 'http://127.0.0.1:4025';
const adminKey = process.env.SYNCBRIDGE_ADMIN_KEY;
const port = Number(process.env.PORT ?? 4027);
const tenant = process.env.TENANT ?? 'todos-demo';
if (!adminKey) {
  process.stderr.write('set SYNCBRIDGE_ADMIN_KEY to the admin key the server printed on its first start\n');
  process.exit(1);
}

const res = await fetch(`${url}/v1/auth/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-api-key': adminKey },
  body: JSON.stringify({ tenant, user: 'alice' }),
});
if (!res.ok) {
  process.stderr.write(`cannot mint a token: HTTP ${res.status} ${await res.text()}\n`);
  process.exit(1);
}
const { token } = (await res.json()) as { token: string };
const site = await servePage(await buildPage(), port);
const query = new URLSearchParams({
  ws: `${url.replace(/^http/, 'ws')}/v1/realtime`,
  token,
  device: 'browser',
});
process.stdout.write(`open ${site.url}/?${query}\n`);
process.stdout.write(
  `and a second device: ${site.url}/?${query.toString().replace('device=browser', 'device=phone')}\n`,
);
