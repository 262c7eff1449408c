/**
 * The todo app built for serving: `index.html` and `app.tsx` bundled with React, @syncbridge/react and
 * the SDK by esbuild into one ES module (`app.js`), and a small static server for them. `serve.ts` and
 * the Chromium test (packages/react/test/example-app.test.ts) both use it.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface BuiltPage {
  'index.html': string;
  'app.js': string;
}

export async function buildPage(): Promise<BuiltPage> {
  const result = await build({
    entryPoints: [join(import.meta.dirname, 'app.tsx')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    // No externals: the SDK's browser build never imports `ws` or `node:*`.
    // Where the packages are built, the workspace's tests (NODE_OPTIONS naming the source condition)
    // bundle them from their sources; elsewhere this changes nothing.
    conditions: process.env.NODE_OPTIONS?.includes('@syncbridge/source') ? ['@syncbridge/source'] : [],
    logLevel: 'silent',
  });
  return {
    'index.html': readFileSync(join(import.meta.dirname, 'index.html'), 'utf8'),
    'app.js': result.outputFiles[0]!.text,
  };
}

/** Serves the page on 127.0.0.1:`port` (0: any free port); resolves with the server and its URL. */
export async function servePage(files: BuiltPage, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(files['app.js']);
    } else if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(files['index.html']);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}` };
}
