/**
 * Serves the browser device of the example:
 *
 *   SYNCBRIDGE_ADMIN_KEY=sb_admin_… node --import tsx examples/multi-device-documents/serve.ts
 *
 * then open the URL it prints. It mints a token for alice in tenant docs-demo, bundles the page with
 * esbuild, and serves it on PORT (default 4026). SYNCBRIDGE_URL defaults to http://127.0.0.1:4025.
 */
import { createServer } from 'node:http';
import { configureDocuments, mintToken } from './documents.ts';
import { buildPage } from './page.ts';

const url = process.env.SYNCBRIDGE_URL ?? 'http://127.0.0.1:4025';
const adminKey = process.env.SYNCBRIDGE_ADMIN_KEY;
const port = Number(process.env.PORT ?? 4026);
if (!adminKey) {
  process.stderr.write('set SYNCBRIDGE_ADMIN_KEY to the admin key the server printed on its first start\n');
  process.exit(1);
}

const tenant = process.env.TENANT ?? 'docs-demo';
await configureDocuments(url, await mintToken(url, adminKey, tenant, 'setup', ['admin']));
const token = await mintToken(url, adminKey, tenant, 'alice');
const files = await buildPage();
const wsUrl = `${url.replace(/^http/, 'ws')}/v1/realtime`;

createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/app.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(files['app.js']);
  } else if (path === '/' || path === '/index.html') {
    res.writeHead(200, { 'content-type': 'text/html' }).end(files['index.html']);
  } else res.writeHead(404).end();
}).listen(port, '127.0.0.1', () => {
  const query = new URLSearchParams({ ws: wsUrl, token, device: 'browser' });
  process.stdout.write(`open http://127.0.0.1:${port}/?${query}\n`);
});
