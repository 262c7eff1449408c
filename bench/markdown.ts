/**
 * Renders bench/results/latest.json as Markdown for docs/benchmarks.md: the table of figures against
 * their targets, and ASCII bar charts of the quantities worth seeing side by side.
 *
 *   node --import tsx bench/markdown.ts
 */
import { type Figure, formatNumber, loadSections } from './lib/report.ts';

function bar(value: number, max: number, width = 40): string {
  const n = max > 0 ? Math.round((value / max) * width) : 0;
  return '█'.repeat(Math.max(n, value > 0 ? 1 : 0));
}

function chart(title: string, rows: { label: string; value: number; unit: string }[]): string {
  if (rows.length === 0) return '';
  const max = Math.max(...rows.map((r) => r.value));
  const width = Math.max(...rows.map((r) => r.label.length));
  const lines = rows.map(
    (r) => `${r.label.padEnd(width)}  ${bar(r.value, max).padEnd(40)}  ${formatNumber(r.value)} ${r.unit}`,
  );
  return [`${title}`, '```', ...lines, '```'].join('\n');
}

function target(f: Figure): string {
  if (!f.target) return '';
  return `${f.target.op === '>=' ? '≥' : '≤'} ${formatNumber(f.target.value)}`;
}

const sections = loadSections();
const figures = Object.values(sections).flatMap((s) => s.figures);
const out: string[] = [];
out.push('| figure | system | durability | median | min–max (spread) | target | met |');
out.push('|---|---|---|---:|---|---|---|');
for (const f of figures) {
  const s = f.summary;
  out.push(
    `| ${f.name} | ${f.system} | ${f.durability} | ${formatNumber(s.median)} ${f.unit} | ` +
      `${formatNumber(s.min)}–${formatNumber(s.max)} (${s.spreadPct.toFixed(0)}%) | ${target(f)} | ` +
      `${f.met === undefined ? '' : f.met ? 'yes' : '**no**'} |`,
  );
}
out.push('');
const detail = (f: Figure, key: string) => Number(f.details?.[key] ?? Number.NaN);
const fanout = figures.filter((f) => f.name.startsWith('deliveries/s'));
out.push(
  chart(
    'Server CPU per delivery (µs, lower is better)',
    fanout.map((f) => ({ label: f.system, value: detail(f, 'server CPU µs/delivery'), unit: 'µs' })),
  ),
);
out.push('');
const mutations = figures.filter((f) => f.name.startsWith('acknowledged mutations/s'));
out.push(
  chart(
    'Acknowledged mutations per second (higher is better)',
    mutations.map((f) => ({
      label: `${f.system}, ${f.name.replace(/^.*, /, '')}`,
      value: f.summary.median,
      unit: '/s',
    })),
  ),
);
out.push('');
for (const [name, section] of Object.entries(sections)) {
  out.push(
    `- ${name}: ${section.date}, load average ${section.machine.loadAverage1mAtStart.toFixed(2)} at start, ` +
      `code ${section.machine.code}, \`${section.command}\``,
  );
}
console.log(out.join('\n'));
