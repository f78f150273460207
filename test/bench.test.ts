/**
 * The benchmark code must not rot: the report writer and the synthesis benchmark run here at a
 * tiny size. No timing is asserted, only the report's structure and arithmetic.
 */
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { GALERA_CONFIGS, GALERA_EXPERIMENTS, runnerName } from '../bench/galera';
import { describeMachine } from '../bench/machine';
import { figure, Measurement, renderMarkdown, renderReadmeSection, Report, sharedMachine, stats, writeReport } from '../bench/report';
import { synthesisBenchmark } from '../bench/synthesis';

describe('stats', () => {
  test('median of an odd and an even number of runs, min and max, runs kept in order', () => {
    expect(stats([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(stats([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, runs: [4, 1, 3, 2] });
    expect(stats([7])).toEqual({ median: 7, min: 7, max: 7, runs: [7] });
  });

  test('no runs, or a run that is not a number, is an error', () => {
    expect(() => stats([])).toThrow(/no runs/);
    expect(() => stats([1, NaN])).toThrow(/non-finite/);
  });
});

describe('figure', () => {
  const m: Measurement = {
    id: 'x.copy',
    benchmark: 'x',
    name: 'copy',
    unit: 's',
    runs: [3, 2, 6],
    baseline: { name: 'tar', runs: [1, 2, 2] },
    goal: { text: '≤ 1.3× tar', on: 'ratio', op: '<=', limit: 1.3 },
  };

  test('the ratio is value ÷ baseline of each run; median, min and max of those', () => {
    const f = figure(m);
    expect(f.ratio.runs).toEqual([3, 1, 3]);
    expect(f.ratio).toMatchObject({ median: 3, min: 1, max: 3 });
    expect(f.value).toMatchObject({ median: 3, min: 2, max: 6 });
    expect(f.baseline).toEqual({ name: 'tar', value: { median: 2, min: 1, max: 2, runs: [1, 2, 2] } });
  });

  test('a goal is judged on the median, and separately on every run', () => {
    expect(figure(m).goal).toMatchObject({ met: false, metByEveryRun: false });
    expect(figure({ ...m, goal: { text: '< 7 s', on: 'value', op: '<', limit: 7 } }).goal).toMatchObject({ met: true, metByEveryRun: true });
    expect(figure({ ...m, goal: { text: '< 4 s', on: 'value', op: '<', limit: 4 } }).goal).toMatchObject({ met: true, metByEveryRun: false });
  });

  test('value and baseline need the same runs, and a positive baseline', () => {
    expect(() => figure({ ...m, baseline: { name: 'tar', runs: [1, 2] } })).toThrow(/3 runs but 2 baseline runs/);
    expect(() => figure({ ...m, baseline: { name: 'tar', runs: [1, 0, 2] } })).toThrow(/not positive/);
  });
});

describe('the report of the synthesis benchmark at a tiny size', () => {
  let dir: string;
  let report: Report;

  beforeAll(async () => {
    const result = await synthesisBenchmark({ sizes: [1, 2], galeraSizes: [1], runs: 1 });
    const machine = describeMachine();
    machine.loadAtEnd = machine.loadAtStart;
    report = {
      title: 'test',
      machine,
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:10.000Z',
      durationSeconds: 10,
      benchmarks: ['synthesis'],
      figures: result.measurements.map(figure),
      notes: [...result.notes, 'a note'],
      failures: [],
    };
    dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('one figure per size, Galera, and the linearity, each with a baseline from the same run', () => {
    expect(report.figures.map((f) => f.id)).toEqual(['synthesis.replication.1', 'synthesis.replication.2', 'synthesis.galera.1', 'synthesis.linearity']);
    for (const f of report.figures) {
      expect(f.value.runs).toHaveLength(1);
      expect(f.baseline.value.runs).toHaveLength(1);
      expect(f.value.min).toBeLessThanOrEqual(f.value.median);
      expect(f.value.median).toBeLessThanOrEqual(f.value.max);
      expect(f.ratio.runs[0]).toBeCloseTo(f.value.runs[0] / f.baseline.value.runs[0], 10);
      expect(f.value.runs[0]).toBeGreaterThan(0);
    }
  });

  test('the linearity compares the time per cluster at the largest size with the smallest', () => {
    const [one, two] = report.figures;
    const linearity = report.figures.find((f) => f.id === 'synthesis.linearity')!;
    expect(linearity.value.runs[0]).toBeCloseTo(two.value.runs[0] / 2, 10);
    expect(linearity.baseline.value.runs[0]).toBeCloseTo(one.value.runs[0], 10);
    expect(two.goal).toMatchObject({ text: '2 clusters < 5 s', on: 'value' });
  });

  test('report.md and report.json: the machine, every figure, the notes', () => {
    const paths = writeReport(report, dir);
    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as Report;
    expect(json.figures).toEqual(report.figures);
    expect(json.machine.cores).toBeGreaterThan(0);
    expect(json.machine.kernel).toEqual(report.machine.kernel);
    const md = readFileSync(paths.markdown, 'utf8');
    expect(md).toEqual(renderMarkdown(report));
    expect(md).toContain(`${report.machine.cores} cores`);
    expect(md).toContain('| Benchmark | Figure | Value | Baseline | Ratio | Runs | Goal |');
    for (const f of report.figures) {
      expect(md).toContain(`| ${f.benchmark} | ${f.name} |`);
    }
    expect(md).toContain('- a note');
    expect(md).toContain(renderReadmeSection(report).trimEnd());
  });

  test('the README section: the machine and one row per figure', () => {
    const section = renderReadmeSection(report);
    expect(section).toMatch(/^## Measured behaviour\n/);
    expect(section).toContain(`${report.machine.cores} cores`);
    expect(section).toContain('the median (min–max) of 1 runs');
    const rows = section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| Figure'));
    expect(rows.map((row) => row.split(' | ')[0].slice(2))).toEqual(report.figures.map((f) => f.name));
  });

  test('the README section leaves the experiments to the full report', () => {
    const [first, ...rest] = report.figures;
    const section = renderReadmeSection({ ...report, figures: [first, ...rest.map((f) => ({ ...f, experiment: true }))] });
    const rows = section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| Figure'));
    expect(rows).toHaveLength(1);
    expect(rows[0].startsWith(`| ${first.name} |`)).toBe(true);
    expect(section).toContain('the experiments tried are in the report that `npm run bench` writes');
  });

  test('a run on a machine shared with other servers or loaded says so', () => {
    const idle = { ...report.machine, foreignServersAtStart: 0, loadAtStart: [0.1, 0.1, 0.1], loadAtEnd: [0.2, 0.1, 0.1] };
    expect(sharedMachine(idle)).toBe(false);
    expect(renderReadmeSection({ ...report, machine: idle })).not.toContain('shared with other test runs');
    expect(sharedMachine({ ...idle, foreignServersAtStart: 3 })).toBe(true);
    expect(sharedMachine({ ...idle, loadAtEnd: [idle.cores, 1, 1] })).toBe(true);
    expect(renderReadmeSection({ ...report, machine: { ...idle, foreignServersAtStart: 3 } })).toContain('shared with other test runs');
  });
});

describe('the Galera benchmark', () => {
  test('every configuration has a distinct pod runner name the runner accepts', () => {
    const names = [...GALERA_CONFIGS, ...GALERA_EXPERIMENTS].map(runnerName);
    names.forEach((name) => expect(name).toMatch(/^bench-[a-z0-9-]{1,14}$/));
    expect(new Set(names).size).toBe(names.length);
  });
});
