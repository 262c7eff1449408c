/**
 * Figures and where they go: a table on stdout, and bench/results/latest.json (each script replaces
 * its own section, so `run.ts` and a script run alone share one file). Every figure carries the
 * durability setting that was in force, its repetitions and, where there is one, its target.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { BenchOptions } from './options.ts';
import { loadAverage1m } from './proc.ts';
import { ROOT } from './server-process.ts';
import type { Summary } from './stats.ts';

export interface Target {
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  name: string;
  system: string;
  durability: string;
  unit: string;
  summary: Summary;
  target?: Target;
  met?: boolean;
  /** Diagnostics beside the figure (medians): server CPU per unit, load-generator CPU, frame size… */
  details?: Record<string, number | string>;
}

export function figure(fields: Omit<Figure, 'met' | 'target'> & { target?: Target }): Figure {
  const { target, summary } = fields;
  const met = target
    ? target.op === '>='
      ? summary.median >= target.value
      : summary.median <= target.value
    : undefined;
  return { ...fields, ...(target ? { target, met } : {}) };
}

export const RESULTS_DIR = join(ROOT, 'bench/results');
export const RESULTS_FILE = join(RESULTS_DIR, 'latest.json');

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  loadAverage1mAtStart: number;
  /** The commit measured, and whether packages/ had uncommitted changes (others edit the same tree). */
  code: string;
}

function codeVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'packages'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head} + uncommitted changes in packages/` : head;
  } catch {
    return 'unknown';
  }
}

export function machine(loadAtStart = loadAverage1m()): Machine {
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {}
  return {
    nproc,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadAverage1mAtStart: loadAtStart,
    code: codeVersion(),
  };
}

export interface Section {
  bench: string;
  date: string;
  command: string;
  machine: Machine;
  options: BenchOptions;
  figures: Figure[];
  notes: string[];
}

export function saveSection(section: Section): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const all = existsSync(RESULTS_FILE)
    ? (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, Section>)
    : {};
  all[section.bench] = section;
  writeFileSync(RESULTS_FILE, `${JSON.stringify(all, null, 2)}\n`);
}

export function loadSections(): Record<string, Section> {
  return existsSync(RESULTS_FILE)
    ? (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, Section>)
    : {};
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function targetText(t?: Target): string {
  return t ? `${t.op === '>=' ? '≥' : '≤'} ${formatNumber(t.value)}` : '';
}

export function printTable(figures: Figure[], out: (line: string) => void = console.log): void {
  const rows = [
    ['figure', 'system', 'durability', 'median', 'unit', 'min–max (spread)', 'target', 'met'],
    ...figures.map((f) => [
      f.name,
      f.system,
      f.durability,
      formatNumber(f.summary.median),
      f.unit,
      `${formatNumber(f.summary.min)}–${formatNumber(f.summary.max)} (${f.summary.spreadPct.toFixed(0)}%)`,
      targetText(f.target),
      f.met === undefined ? '' : f.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  out(line(rows[0]!));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) out(line(r));
  const withDetails = figures.filter((f) => f.details && Object.keys(f.details).length > 0);
  if (withDetails.length > 0) {
    out('');
    for (const f of withDetails) {
      const parts = Object.entries(f.details!).map(
        ([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`,
      );
      out(`  ${f.name} [${f.system}]: ${parts.join(', ')}`);
    }
  }
}

/** One line per repetition while a benchmark runs, so a long run shows progress. */
export function progress(line: string): void {
  process.stdout.write(`  ${line}\n`);
}

export function commandLine(): string {
  const script = process.argv[1]?.replace(`${ROOT}/`, '') ?? '';
  return `node --import tsx ${script} ${process.argv.slice(2).join(' ')}`.trim();
}
