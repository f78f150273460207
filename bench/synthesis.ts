/**
 * Synthesis: the time to construct and synthesize an app with 1, 10 and 100 clusters (in this
 * process, no runner). A cluster is a 3-pod MariaDB MySqlReplicationCluster with a nightly
 * physical BackupSchedule and a restore drill (the library's largest set of objects per
 * cluster); a second series synthesizes GaleraClusters.
 *
 * Baseline: cdk8s alone synthesizing the very same objects (the construct's output, added back
 * as plain ApiObjects) in the same run: the ratio is what the library adds on top of cdk8s.
 * Linearity: the time per cluster at the largest size against the time of one cluster.
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ApiObject, App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BenchmarkResult, Measurement } from './report';
import { BackupTarget, EngineVersion, GaleraCluster, MySqlReplicationCluster } from '../src';

export type ClusterKind = 'replication' | 'galera';

export interface SynthesisOptions {
  /** Cluster counts of the replication series. Default 1, 10, 100. */
  readonly sizes?: readonly number[];
  /** Cluster counts of the Galera series. Default the largest size only. */
  readonly galeraSizes?: readonly number[];
  /** Measured runs of each size (after one warm-up). Default 7. */
  readonly runs?: number;
  /** The goal for the largest replication size, in seconds. Default 5. */
  readonly goalSeconds?: number;
}

function addClusters(chart: Chart, kind: ClusterKind, count: number): void {
  for (let i = 0; i < count; i++) {
    if (kind === 'galera') {
      new GaleraCluster(chart, `Galera${i}`, { name: `galera-${i}`, replicas: 3 });
      continue;
    }
    const db = new MySqlReplicationCluster(chart, `Db${i}`, { name: `db-${i}`, version: EngineVersion.MARIADB_11_4, replicas: 3 });
    db.addBackupSchedule('Nightly', {
      target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, `Backups${i}`, `backups-${i}`)),
      restoreDrill: {},
    });
  }
}

/** Milliseconds to build an app with `count` clusters and synthesize it to YAML files; returns its manifests too. */
export function synthesizeClusters(kind: ClusterKind, count: number): { ms: number; manifests: object[] } {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  try {
    const started = process.hrtime.bigint();
    const app = new App({ outdir });
    const chart = new Chart(app, 'clusters');
    addClusters(chart, kind, count);
    app.synth();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    return { ms, manifests: chart.toJson() };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Milliseconds for cdk8s alone to synthesize the given manifests as plain ApiObjects. */
export function synthesizePlain(manifests: readonly object[]): number {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  try {
    const started = process.hrtime.bigint();
    const app = new App({ outdir });
    const chart = new Chart(app, 'clusters');
    manifests.forEach((manifest, i) => {
      const { apiVersion, kind, metadata, ...rest } = manifest as { apiVersion: string; kind: string; metadata: object };
      new ApiObject(chart, `o${i}`, { apiVersion, kind, metadata, ...rest });
    });
    app.synth();
    return Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export async function synthesisBenchmark(options: SynthesisOptions = {}): Promise<BenchmarkResult> {
  const sizes = options.sizes ?? [1, 10, 100];
  const galeraSizes = options.galeraSizes ?? [Math.max(...sizes)];
  const runs = options.runs ?? 7;
  const goalSeconds = options.goalSeconds ?? 5;
  const largest = Math.max(...sizes);
  const series: Array<{ kind: ClusterKind; count: number }> = [
    ...sizes.map((count) => ({ kind: 'replication' as const, count })),
    ...galeraSizes.map((count) => ({ kind: 'galera' as const, count })),
  ];

  // warm-up: module loading and the JIT, not what a user's synth costs per cluster
  synthesizeClusters('replication', 1);
  synthesizeClusters('galera', 1);

  const seconds = new Map<string, number[]>();
  const plainSeconds = new Map<string, number[]>();
  const objects = new Map<string, number>();
  for (let run = 0; run < runs; run++) {
    // sizes interleaved within a run, so that drift of the machine hits every size alike
    for (const { kind, count } of series) {
      const key = `${kind}.${count}`;
      const built = synthesizeClusters(kind, count);
      const plain = synthesizePlain(built.manifests);
      seconds.set(key, [...seconds.get(key) ?? [], built.ms / 1000]);
      plainSeconds.set(key, [...plainSeconds.get(key) ?? [], plain / 1000]);
      objects.set(key, built.manifests.length);
    }
  }

  const measurements: Measurement[] = series.map(({ kind, count }) => {
    const key = `${kind}.${count}`;
    const what = `${kind === 'replication' ? 'replication cluster' : 'Galera cluster'}${count === 1 ? '' : 's'}${kind === 'replication' ? ' (with backups)' : ''}`;
    return {
      id: `synthesis.${key}`,
      benchmark: 'synthesis',
      name: `Synthesize ${count} ${what}`,
      unit: 's',
      runs: seconds.get(key)!,
      baseline: { name: 'cdk8s alone, same objects', runs: plainSeconds.get(key)! },
      ...(kind === 'replication' && count === largest ? { goal: { text: `${largest} clusters < ${goalSeconds} s`, on: 'value' as const, op: '<' as const, limit: goalSeconds } } : {}),
      notes: `new App() to app.synth() writing YAML, ${objects.get(key)} objects; baseline: cdk8s synthesizing the same objects as plain ApiObjects.`,
    };
  });
  const smallest = Math.min(...sizes);
  if (largest > smallest) {
    measurements.push({
      id: 'synthesis.linearity',
      benchmark: 'synthesis',
      name: `Time per cluster at ${largest} clusters`,
      unit: 's',
      runs: seconds.get(`replication.${largest}`)!.map((s) => s / largest),
      baseline: { name: `time per cluster at ${smallest}`, runs: seconds.get(`replication.${smallest}`)!.map((s) => s / smallest) },
      goal: { text: 'grows linearly (ratio ≤ 1.2)', on: 'ratio', op: '<=', limit: 1.2 },
      notes: 'ratio ≤ 1 means the time grows at most linearly with the number of clusters (fixed costs of the app amortize).',
    });
  }
  return { measurements, notes: [] };
}
