/**
 * The benchmark report: figures (each the median, min and max of at least 3 runs, with a
 * baseline measured in the same runs and the ratio to it), the machine they were measured on,
 * and the writers for bench/results/report.md and report.json.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import type { Machine } from './machine';

/** Median, min and max of the runs of one measured quantity. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every run, in the order measured. */
  readonly runs: readonly number[];
}

/** A goal from the issue, judged on the median of the value or of the ratio. */
export interface Goal {
  /** What the goal says, e.g. 'IST rejoin < 10 s'. */
  readonly text: string;
  readonly on: 'value' | 'ratio';
  readonly op: '<' | '<=' | '>=' | '>';
  readonly limit: number;
}

export interface JudgedGoal extends Goal {
  /** The median meets the goal. */
  readonly met: boolean;
  /** Every run meets the goal (the worst run too). */
  readonly metByEveryRun: boolean;
}

/** What a benchmark measured, before statistics. */
export interface Measurement {
  /** Stable identifier, e.g. 'seed.construct'. */
  readonly id: string;
  /** The benchmark it belongs to, e.g. 'seed'. */
  readonly benchmark: string;
  /** What is measured, for the report's table. */
  readonly name: string;
  /** Unit of the value and the baseline: 's', 'tx/s', 'MiB', … */
  readonly unit: string;
  /** The value of each run. */
  readonly runs: readonly number[];
  /** The baseline, measured in the same runs (index i of both belong together). */
  readonly baseline: { readonly name: string; readonly runs: readonly number[] };
  readonly goal?: Goal;
  /** How it was measured, caveats. */
  readonly notes?: string;
  /** A variation tried to see what helps, not the construct's behaviour: in the report, not in the README. */
  readonly experiment?: boolean;
}

/** What one benchmark returns: its measurements and its findings. */
export interface BenchmarkResult {
  readonly measurements: readonly Measurement[];
  readonly notes: readonly string[];
  /** Parts that failed while the rest was measured. */
  readonly failures?: readonly string[];
}

export interface Figure {
  readonly id: string;
  readonly benchmark: string;
  readonly name: string;
  readonly unit: string;
  readonly value: Stats;
  readonly baseline: { readonly name: string; readonly value: Stats };
  /** value / baseline of each run, then median, min and max of those ratios. */
  readonly ratio: Stats;
  readonly goal?: JudgedGoal;
  readonly notes?: string;
  readonly experiment?: boolean;
}

export interface Report {
  readonly title: string;
  readonly machine: Machine;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSeconds: number;
  /** The benchmarks that ran, in order. */
  readonly benchmarks: readonly string[];
  readonly figures: readonly Figure[];
  /** Findings and caveats, one paragraph each. */
  readonly notes: readonly string[];
  /** Benchmarks that failed, with the error. */
  readonly failures: readonly { readonly benchmark: string; readonly error: string }[];
}

/** The median (the mean of the middle two for an even count), min and max. */
export function stats(runs: readonly number[]): Stats {
  if (runs.length === 0) {
    throw new Error('stats of no runs');
  }
  if (runs.some((run) => !Number.isFinite(run))) {
    throw new Error(`stats of a non-finite run: ${runs.join(', ')}`);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: [...runs] };
}

function meets(value: number, goal: Goal): boolean {
  switch (goal.op) {
    case '<': return value < goal.limit;
    case '<=': return value <= goal.limit;
    case '>': return value > goal.limit;
    case '>=': return value >= goal.limit;
  }
}

/** A figure from a measurement: statistics of the value, of the baseline and of the per-run ratios; the goal judged. */
export function figure(m: Measurement): Figure {
  if (m.runs.length !== m.baseline.runs.length) {
    throw new Error(`${m.id}: ${m.runs.length} runs but ${m.baseline.runs.length} baseline runs; each run measures both`);
  }
  if (m.baseline.runs.some((run) => run <= 0)) {
    throw new Error(`${m.id}: a baseline run is not positive (${m.baseline.runs.join(', ')}); no ratio can be computed`);
  }
  const value = stats(m.runs);
  const ratio = stats(m.runs.map((run, i) => run / m.baseline.runs[i]));
  let goal: JudgedGoal | undefined;
  if (m.goal) {
    const judged = m.goal.on === 'value' ? value : ratio;
    goal = { ...m.goal, met: meets(judged.median, m.goal), metByEveryRun: judged.runs.every((run) => meets(run, m.goal!)) };
  }
  return {
    id: m.id,
    benchmark: m.benchmark,
    name: m.name,
    unit: m.unit,
    value,
    baseline: { name: m.baseline.name, value: stats(m.baseline.runs) },
    ratio,
    ...(goal ? { goal } : {}),
    ...(m.notes ? { notes: m.notes } : {}),
    ...(m.experiment ? { experiment: true } : {}),
  };
}

/** A number for the report: 3 significant digits, no exponent. */
export function fmt(n: number): string {
  if (n === 0) return '0';
  const abs = Math.abs(n);
  if (abs >= 1000) return n.toFixed(0);
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}

function range(s: Stats, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  return `${fmt(s.median)}${u} (${fmt(s.min)}–${fmt(s.max)})`;
}

function goalCell(f: Figure): string {
  if (!f.goal) return '';
  const verdict = f.goal.met ? (f.goal.metByEveryRun ? '**met**' : '**met** (median; not every run)') : '**not met**';
  return `${f.goal.text}: ${verdict}`;
}

/** The machine as one Markdown paragraph. */
export function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.disk}; Linux ${m.kernel}${m.virtualization ? ` (${m.virtualization})` : ''}; ` +
    `MariaDB ${m.mariadb}, Galera ${m.galera}, mariadb-backup ${m.mariadbBackup}, socat ${m.socat}, zstd ${m.zstd}; Node.js ${m.node}. ` +
    `Load average ${m.loadAtStart.map(fmt).join(', ')} at the start, ${m.loadAtEnd ? m.loadAtEnd.map(fmt).join(', ') : '?'} at the end` +
    `${m.foreignServersAtStart !== undefined ? `; ${m.foreignServersAtStart} other MariaDB servers were running on the machine at the start` : ''}.`;
}

/** The machine was busy with other work during the run (other MariaDB servers, or a load average above half its cores). */
export function sharedMachine(m: Machine): boolean {
  const busiest = Math.max(...m.loadAtStart, ...(m.loadAtEnd ?? []));
  return (m.foreignServersAtStart ?? 0) > 0 || busiest > m.cores / 2;
}

/**
 * The README's "Measured behaviour" section: the machine, then one row per figure that is not an
 * experiment (median with min–max, the baseline's median, the ratio's median with min–max, the goal).
 */
export function renderReadmeSection(r: Report): string {
  const figures = r.figures.filter((f) => !f.experiment);
  const runs = figures.map((f) => f.value.runs.length);
  const lines = [
    '## Measured behaviour',
    '',
    `Measured with \`npm run bench\` on ${r.startedAt.slice(0, 10)}: ${machineLine(r.machine)}` +
    (sharedMachine(r.machine) ? ' The machine was shared with other test runs, so absolute times are noisy; the ratios compare runs made side by side.' : ''),
    '',
    `Each figure is the median (min–max) of ${Math.min(...runs) === Math.max(...runs) ? Math.min(...runs) : `${Math.min(...runs)}–${Math.max(...runs)}`} runs; ` +
    'its baseline was measured in the same runs over the same path, and the ratio is figure ÷ baseline per run' +
    `${figures.length < r.figures.length ? ' (the experiments tried are in the report that `npm run bench` writes)' : ''}.`,
    '',
    '| Figure | Measured | Baseline (same runs) | Ratio | Goal |',
    '|---|---|---|---|---|',
    ...figures.map((f) => `| ${f.name} | ${range(f.value, f.unit)} | ${f.baseline.name}: ${fmt(f.baseline.value.median)} ${f.unit} | ${range(f.ratio)}× | ${goalCell(f)} |`),
    '',
  ];
  return lines.join('\n');
}

/** The report as Markdown: the machine, one table of every figure, then the notes. */
export function renderMarkdown(r: Report): string {
  const lines: string[] = [];
  lines.push(`# ${r.title}`, '');
  lines.push(`Measured ${r.startedAt} – ${r.finishedAt} (${fmt(r.durationSeconds)} s), benchmarks: ${r.benchmarks.join(', ')}.`, '');
  lines.push(`**Machine:** ${machineLine(r.machine)}`, '');
  lines.push('Each figure is the median of the runs, with min–max in parentheses. The baseline is measured in the same runs; ' +
    'the ratio is value ÷ baseline of each run (median, min–max of those ratios).', '');
  lines.push('| Benchmark | Figure | Value | Baseline | Ratio | Runs | Goal |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const f of r.figures) {
    lines.push(`| ${f.benchmark} | ${f.name} | ${range(f.value, f.unit)} | ${f.baseline.name}: ${range(f.baseline.value, f.unit)} | ${range(f.ratio)}× | ${f.value.runs.length} | ${goalCell(f)} |`);
  }
  const withNotes = r.figures.filter((f) => f.notes);
  if (withNotes.length > 0) {
    lines.push('', '## How each figure is measured', '');
    for (const f of withNotes) {
      lines.push(`- **${f.benchmark}: ${f.name}** — ${f.notes}`);
    }
  }
  if (r.notes.length > 0) {
    lines.push('', '## Notes', '');
    r.notes.forEach((note) => lines.push(`- ${note}`));
  }
  if (r.failures.length > 0) {
    lines.push('', '## Failures', '');
    r.failures.forEach((failure) => lines.push(`- **${failure.benchmark}**: ${failure.error.split('\n')[0]}`));
  }
  if (r.figures.some((f) => !f.experiment)) {
    lines.push('', '## For the README', '', '```markdown', renderReadmeSection(r).trimEnd(), '```');
  }
  lines.push('');
  return lines.join('\n');
}

/** Writes report.md and report.json into `dir`; returns their paths. */
export function writeReport(r: Report, dir: string): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, 'report.md');
  const json = join(dir, 'report.json');
  writeFileSync(markdown, renderMarkdown(r));
  writeFileSync(json, JSON.stringify(r, undefined, 2) + '\n');
  return { markdown, json };
}
