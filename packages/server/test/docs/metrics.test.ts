/**
 * docs/metrics.md and the Grafana dashboard cannot rot: every metric they name exists in a running
 * server's /metrics, and every syncbridge metric the server exports is documented.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Exposition, scrape } from '../helpers/prometheus.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const ROOT = join(import.meta.dirname, '../../../..');
const DOC = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
const DASHBOARD = JSON.parse(readFileSync(join(ROOT, 'docs/grafana/syncbridge-dashboard.json'), 'utf8')) as {
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  panels: Array<{
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: Array<{ expr: string }>;
  }>;
};

const METRIC = /\bsyncbridge_[a-z0-9_]*[a-z0-9]\b/g;

/** The family an exposition declares for a sample name (histogram series end in _bucket, _sum, _count). */
function family(e: Exposition, name: string): string | null {
  if (e.types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return e.types.get(base) === 'histogram' ? base : null;
}

describe('metrics documentation and Grafana dashboard', () => {
  let srv: TestServer;
  let exposition: Exposition;
  beforeAll(async () => {
    srv = await startTestServer('sqlite');
    // As the Prometheus job in metrics.md scrapes: with the metrics token (here the admin key).
    exposition = await scrape(srv.url, { apiKey: srv.adminKey });
  });
  afterAll(async () => srv?.close());

  it('the dashboard queries only metrics the server exports, through its Prometheus data source variable', () => {
    const datasource = DASHBOARD.templating.list.find((v) => v.name === 'datasource');
    expect(datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const panels = DASHBOARD.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(20);
    const queried = new Set<string>();
    for (const panel of panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets!) {
        let depth = 0;
        for (const c of expr) depth += c === '(' ? 1 : c === ')' ? -1 : 0;
        expect(depth, `${panel.title}: ${expr}`).toBe(0);
        for (const name of expr.match(METRIC) ?? []) queried.add(name);
      }
    }
    const missing = [...queried].filter((name) => family(exposition, name) === null);
    expect(missing).toEqual([]);
    // The key series are on it.
    for (const name of [
      'syncbridge_ws_messages_received_total',
      'syncbridge_append_duration_seconds_bucket',
      'syncbridge_fanout_latency_seconds_bucket',
      'syncbridge_subscription_lag_max_events',
      'syncbridge_webhook_attempts_total',
      'syncbridge_conflicts_open',
      'syncbridge_connector_up',
    ]) {
      expect(queried, name).toContain(name);
    }
  });

  it('docs/metrics.md names only exported metrics, and documents every one', () => {
    const documented = new Set(
      DOC.split('\n')
        .filter((line) => line.startsWith('| `syncbridge_'))
        .map((line) => /^\| `([^`]+)`/.exec(line)![1]!)
        .filter((name) => !name.endsWith('*')),
    );
    expect([...documented].filter((name) => family(exposition, name) === null)).toEqual([]);
    const exported = [...exposition.types.keys()].filter(
      (name) => name.startsWith('syncbridge_') && !name.startsWith('syncbridge_process_'),
    );
    expect(exported.filter((name) => !documented.has(name))).toEqual([]);
    // Every metric named anywhere on the page (PromQL, alerts) exists too.
    const named = new Set(DOC.match(METRIC) ?? []);
    expect([...named].filter((name) => !name.endsWith('_') && family(exposition, name) === null)).toEqual([]);
  });
});
