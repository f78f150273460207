/**
 * `npm run bench [-- NAME…] [--runs N]`: runs every benchmark, or the named ones, and writes
 * bench/results/report.md and report.json (and logs/ of the runs). Benchmarks: seed, galera,
 * catchup, backup, synthesis. `--render report.json` writes report.md again from a JSON.
 * Everything but synthesis runs on the e2e pod runner with Debian's MariaDB (root, Linux), and
 * each stops its runner when it ends, also on failure.
 */
import { readFileSync } from 'fs';
import { dirname, join } from 'path';
import { backupBenchmark } from './backup';
import { catchupBenchmark } from './catchup';
import { galeraBenchmark } from './galera';
import { describeMachine } from './machine';
import { BenchmarkResult, Figure, figure, Report, writeReport } from './report';
import { seedBenchmark } from './seed';
import { synthesisBenchmark } from './synthesis';
import { log } from './util';

const BENCHMARKS: Record<string, (runs: number | undefined) => Promise<BenchmarkResult>> = {
  seed: (runs) => seedBenchmark({ runs }),
  galera: (runs) => galeraBenchmark({ runs }),
  catchup: (runs) => catchupBenchmark({ runs }),
  backup: (runs) => backupBenchmark({ runs }),
  synthesis: (runs) => synthesisBenchmark({ runs }),
};

function usage(): never {
  console.error(`usage: npm run bench -- [${Object.keys(BENCHMARKS).join('|')} …] [--runs N] [--out DIR]\n` +
    '       npm run bench -- --render DIR/report.json   (writes report.md again from the JSON)');
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let runs: number | undefined;
  let out = join(__dirname, 'results');
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--runs') {
      runs = Number(args[++i]);
      if (!Number.isInteger(runs) || runs < 1) usage();
    } else if (args[i] === '--render') {
      const file = args[++i] ?? usage();
      const paths = writeReport(JSON.parse(readFileSync(file, 'utf8')) as Report, dirname(file));
      log(`wrote ${paths.markdown}`);
      return;
    } else if (args[i] === '--out') {
      out = args[++i] ?? usage();
    } else if (args[i] in BENCHMARKS) {
      names.push(args[i]);
    } else {
      usage();
    }
  }
  const selected = names.length > 0 ? names : Object.keys(BENCHMARKS);
  process.env.BENCH_LOG_DIR = join(out, 'logs');
  if (runs !== undefined && runs < 3) {
    log(`--runs ${runs}: fewer than 3 runs is for trying the benchmarks out, not for publishing`);
  }

  const machine = describeMachine();
  const startedAt = new Date();
  log(`benchmarks: ${selected.join(', ')}; load average ${machine.loadAtStart.join(' ')}; ${machine.foreignServersAtStart} MariaDB servers already running`);
  const figures: Figure[] = [];
  const notes: string[] = [];
  const failures: Array<{ benchmark: string; error: string }> = [];
  for (const name of selected) {
    const started = Date.now();
    log(`=== ${name}`);
    try {
      const result = await BENCHMARKS[name](runs);
      figures.push(...result.measurements.map(figure));
      notes.push(...result.notes);
      failures.push(...(result.failures ?? []).map((error) => ({ benchmark: name, error })));
      log(`=== ${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } catch (error) {
      const message = error instanceof Error ? error.stack ?? error.message : String(error);
      failures.push({ benchmark: name, error: message });
      log(`=== ${name} FAILED after ${((Date.now() - started) / 1000).toFixed(0)} s: ${message}`);
    }
  }
  const finishedAt = new Date();
  machine.loadAtEnd = describeMachine().loadAtStart;
  const report: Report = {
    title: 'cdk8s-mysql benchmarks',
    machine,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    benchmarks: selected,
    figures,
    notes,
    failures,
  };
  const paths = writeReport(report, out);
  log(`wrote ${paths.markdown} and ${paths.json} (${report.durationSeconds.toFixed(0)} s)`);
  if (failures.length > 0) {
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
