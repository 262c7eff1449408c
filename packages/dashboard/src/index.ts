/**
 * The dashboard's assets for the server: the page, its script and its stylesheet, bundled in memory by
 * esbuild from `src/app` on first request (then kept), each with a strong ETag. Nothing is written to
 * disk and nothing is fetched from the network; the server serves these under /dashboard/.
 *
 * It must never hold a secret: the page asks the operator for a key or token and keeps it in the
 * browser's sessionStorage.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export interface DashboardAsset {
  body: Buffer;
  /** The same bytes gzipped, for clients that accept it. */
  gzip: Buffer;
  contentType: string;
  etag: string;
}

export interface DashboardAssets {
  /** By file name: `index.html`, `app.js`, `app.css`. */
  files: Map<string, DashboardAsset>;
  /** How long the bundle took, in milliseconds. */
  buildMs: number;
}

const ENTRY = fileURLToPath(new URL('./app/main.tsx', import.meta.url));

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>syncbridge dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script type="module" src="/dashboard/app.js"></script>
</head>
<body>
<div id="app"></div>
<noscript>The syncbridge dashboard needs JavaScript.</noscript>
</body>
</html>
`;

function asset(body: Buffer, contentType: string): DashboardAsset {
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
  return { body, gzip: gzipSync(body, { level: 9 }), contentType, etag: `"${hash}"` };
}

/** Bundles the dashboard (minified, for current browsers). */
export async function buildDashboard(): Promise<DashboardAssets> {
  const started = performance.now();
  // Loaded on first use: a server whose dashboard is never opened never loads the bundler.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { app: ENTRY },
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    outdir: '/dashboard',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const files = new Map<string, DashboardAsset>();
  files.set('index.html', asset(Buffer.from(PAGE), 'text/html; charset=utf-8'));
  for (const out of result.outputFiles) {
    const name = out.path.slice(out.path.lastIndexOf('/') + 1);
    const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    files.set(name, asset(Buffer.from(out.contents), type));
  }
  return { files, buildMs: Math.round(performance.now() - started) };
}

let cached: Promise<DashboardAssets> | null = null;

/** The bundle, built once per process (a failed build is retried on the next call). */
export function dashboardAssets(): Promise<DashboardAssets> {
  if (!cached) {
    cached = buildDashboard();
    cached.catch(() => {
      cached = null;
    });
  }
  return cached;
}
