/**
 * The dashboard's assets for the server: the page, its script and its stylesheet, each with a strong
 * ETag, loaded on first request (then kept). The built package carries them prebuilt in `dist/assets`
 * (written by scripts/bundle-app.mjs at build time), so an installed server needs no bundler; run from
 * its sources (the workspace), it bundles `src/app` in memory with esbuild instead. Nothing is fetched
 * from the network; the server serves these under /dashboard/.
 *
 * It must never hold a secret: the page asks the operator for a key or token and keeps it in the
 * browser's sessionStorage.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
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
/** Where the build puts the bundled app, beside the compiled module (absent beside the sources). */
const PREBUILT = new URL('./assets/', import.meta.url);
/** The files `bundleApp` produces, as the server serves them. */
export const APP_FILES = ['app.js', 'app.css'] as const;

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

function contentTypeOf(name: string): string {
  return name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
}

/** Bundles the app (minified, for current browsers) in memory: file name to bytes. */
export async function bundleApp(entry: string = ENTRY): Promise<Map<string, Uint8Array>> {
  // Loaded on first use, and only where there is no prebuilt bundle: an installed server never loads it.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { app: entry },
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
  const bundle = new Map<string, Uint8Array>();
  for (const out of result.outputFiles)
    bundle.set(out.path.slice(out.path.lastIndexOf('/') + 1), out.contents);
  return bundle;
}

/** The prebuilt bundle of an installed package, or null beside the sources (none there). */
async function readPrebuilt(): Promise<Map<string, Uint8Array> | null> {
  const bundle = new Map<string, Uint8Array>();
  for (const name of APP_FILES) {
    try {
      bundle.set(name, await readFile(new URL(name, PREBUILT)));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw err;
    }
  }
  return bundle;
}

/** The dashboard's assets: prebuilt when the package was built, else bundled now. */
export async function buildDashboard(): Promise<DashboardAssets> {
  const started = performance.now();
  const bundle = (await readPrebuilt()) ?? (await bundleApp());
  const files = new Map<string, DashboardAsset>();
  files.set('index.html', asset(Buffer.from(PAGE), 'text/html; charset=utf-8'));
  for (const [name, bytes] of bundle) files.set(name, asset(Buffer.from(bytes), contentTypeOf(name)));
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
