/**
 * Replica catch-up: a MariaDB MySqlReplicationCluster of a primary and one replica (the
 * construct's defaults) under a write load on the primary: 4 sessions of autocommit single-row
 * INSERTs. Transactions are counted by GTID sequence numbers (gtid_binlog_pos on the primary,
 * gtid_slave_pos on the replica), sampled every 250 ms. Each run:
 * - steady load (each session 100 INSERTs every 100 ms, about 4 000 tx/s in all), in sync: the
 *   replica's apply rate over 10 s against the primary's write rate over the same 10 s (a
 *   replica that keeps up: ratio 1);
 * - steady load, catch-up: the replica's SQL thread stopped for 15 s (holding the backup lock, so
 *   that its agent leaves it stopped, as during a logical backup), then started again while the
 *   load goes on; its apply rate from the restart until it has applied the backlog that existed
 *   then, against the primary's write rate during the load (ratio > 1: it catches up);
 * - maximum load (the sessions as fast as the primary commits), in sync: the replica's apply
 *   rate against the primary's write rate over 10 s. On this machine the primary, the replica
 *   and the load generator share the same 2 cores.
 */
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { BenchmarkResult, Measurement } from './report';
import { SQL, log, sh, sleep } from './util';
import { EngineVersion, MySqlReplicationCluster } from '../src';
import { PodRunner } from '../test/e2e/runner';

const NAME = 'lag';
const PRIMARY = `${NAME}-0`;
const REPLICA = `${NAME}-1`;
const SESSIONS = 4;
/** Steady load: each session sends this many INSERTs every 100 ms. */
const STEADY_BATCH = 100;
const STEADY_SECONDS = 40;
const PAUSE_AT = 12;
const PAUSE_SECONDS = 15;
const MAX_SECONDS = 13;

export interface CatchupOptions {
  /** Runs. Default 3. */
  readonly runs?: number;
}

interface Sample { readonly at: number; readonly seq: number }

function chart(): ReturnType<typeof Testing.chart> {
  const c = Testing.chart();
  new k8s.KubeSecret(c, 'Credentials', {
    metadata: { name: `${NAME}-credentials` },
    stringData: { 'root-password': 'bench-root', 'replication-password': 'bench-repl' },
  });
  new MySqlReplicationCluster(c, 'Db', { name: NAME, version: EngineVersion.MARIADB_11_4, replicas: 2 });
  return c;
}

/** The sequence number of the last transaction of GTID domain 0 in a GTID position. */
function seqOf(position: string): number {
  const gtid = position.split(',').map((g) => g.trim().split('-')).find((parts) => parts[0] === '0');
  return gtid ? Number(gtid[2]) : 0;
}

/** Samples a server's GTID position every 250 ms until `stop()`; each sample is timed at the middle of its query. */
function sampler(rt: PodRunner, pod: string, variable: string): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const before = Date.now();
      const r = await rt.exec(pod, 'server', ['bash', '-c', `${SQL} -N -B -e 'SELECT @@GLOBAL.${variable}'`], { timeoutMs: 10_000 });
      const after = Date.now();
      if (r.code === 0) samples.push({ at: (before + after) / 2, seq: seqOf(r.stdout.trim()) });
      await sleep(Math.max(0, 250 - (after - before)));
    }
  })();
  return { samples, stop: async () => { running = false; await loop; } };
}

/** The sequence number at time `at`, interpolated between samples. */
function seqAt(samples: readonly Sample[], at: number): number {
  const after = samples.findIndex((s) => s.at >= at);
  if (after <= 0) return after === 0 ? samples[0].seq : samples[samples.length - 1].seq;
  const a = samples[after - 1];
  const b = samples[after];
  return a.seq + ((b.seq - a.seq) * (at - a.at)) / (b.at - a.at);
}

/** The time the sequence number reached `seq`, interpolated between samples (undefined if it never did). */
function timeAt(samples: readonly Sample[], seq: number, after: number): number | undefined {
  const hit = samples.findIndex((s) => s.at > after && s.seq >= seq);
  if (hit < 0) return undefined;
  const b = samples[hit];
  const a = samples[hit - 1];
  if (!a || a.at <= after || b.seq === a.seq) return b.at;
  return a.at + ((b.at - a.at) * (seq - a.seq)) / (b.seq - a.seq);
}

/** Transactions per second over [from, to]. */
function rate(samples: readonly Sample[], from: number, to: number): number {
  return (seqAt(samples, to) - seqAt(samples, from)) / ((to - from) / 1000);
}

/** Starts the write load on the primary: `steady` (rate-limited) or as fast as it commits; resolves when it ends. */
function writeLoad(rt: PodRunner, seconds: number, steady: boolean): Promise<string> {
  const session = (s: number) => steady
    ? `( batch=$(for ((i = 0; i < ${STEADY_BATCH}; i++)); do echo "INSERT INTO bench.w (s, v) VALUES (${s}, $i);"; done)
         end=$((SECONDS + ${seconds})); while ((SECONDS < end)); do printf '%s\\n' "$batch"; sleep 0.1; done ) | ${SQL} 2>/dev/null &`
    : `seq 1 100000000 | sed 's/.*/INSERT INTO bench.w (s, v) VALUES (${s}, &);/' | timeout ${seconds} ${SQL} 2>/dev/null &`;
  return sh(rt, PRIMARY, 'server', `${Array.from({ length: SESSIONS }, (_, s) => session(s)).join('\n')}\nwait || true`,
    { timeoutMs: (seconds + 60) * 1000 });
}

/** Waits until the replica's sampled position reaches `target` after `after`; the sample, or undefined after 300 s. */
async function reached(samples: readonly Sample[], target: number, after: number): Promise<Sample | undefined> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const hit = samples.find((s) => s.at > after && s.seq >= target);
    if (hit || Date.now() > deadline) return hit;
    await sleep(250);
  }
}

interface RunResult {
  readonly steadyApply: number;
  readonly steadyWrite: number;
  readonly catchupApply: number;
  readonly catchupWrite: number;
  readonly catchupSeconds: number;
  readonly backlog: number;
  readonly caughtUpUnderLoad: boolean;
  readonly maxApply: number;
  readonly maxWrite: number;
}

async function oneRun(rt: PodRunner): Promise<RunResult> {
  const primary = sampler(rt, PRIMARY, 'gtid_binlog_pos');
  const replica = sampler(rt, REPLICA, 'gtid_slave_pos');
  try {
    await sleep(1_000);
    // steady load: in sync, then the SQL thread paused and restarted
    const steadyStart = Date.now();
    const steady = writeLoad(rt, STEADY_SECONDS, true);
    await sleep(PAUSE_AT * 1000);
    // stop the SQL thread while holding the backup lock: the agent leaves it stopped meanwhile
    await sh(rt, REPLICA, 'server', SQL, {
      stdin: `SELECT GET_LOCK('cdk8s_mysql_backup', 10); STOP SLAVE SQL_THREAD; DO SLEEP(${PAUSE_SECONDS}); START SLAVE SQL_THREAD; DO RELEASE_LOCK('cdk8s_mysql_backup');`,
    });
    const resumedAt = Date.now();
    await sleep(500);
    const target = seqAt(primary.samples, resumedAt);
    const caught = await reached(replica.samples, target, resumedAt);
    await steady;
    const steadyEnd = steadyStart + STEADY_SECONDS * 1000;
    if (!caught) {
      throw new Error(`the replica did not apply its backlog within 300 s (it is at ${replica.samples[replica.samples.length - 1]?.seq}, the backlog ends at ${target})`);
    }
    const resumedSeq = seqAt(replica.samples, resumedAt);
    const caughtAt = timeAt(replica.samples, target, resumedAt) ?? caught.at;
    const catchupSeconds = (caughtAt - resumedAt) / 1000;
    const syncFrom = steadyStart + 1_500;
    const syncTo = syncFrom + 10_000;

    // maximum load, in sync; then let the replica drain before the next run
    await reached(replica.samples, seqAt(primary.samples, Date.now() - 300), Date.now() - 300);
    const maxStart = Date.now();
    await writeLoad(rt, MAX_SECONDS, false);
    const maxFrom = maxStart + 2_000;
    const maxTo = maxFrom + 10_000;
    await reached(replica.samples, primary.samples[primary.samples.length - 1].seq, Date.now());
    return {
      steadyApply: rate(replica.samples, syncFrom, syncTo),
      steadyWrite: rate(primary.samples, syncFrom, syncTo),
      catchupApply: (target - resumedSeq) / catchupSeconds,
      catchupWrite: rate(primary.samples, steadyStart + 1_000, steadyEnd - 1_000),
      catchupSeconds,
      backlog: target - resumedSeq,
      caughtUpUnderLoad: caughtAt < steadyEnd,
      maxApply: rate(replica.samples, maxFrom, maxTo),
      maxWrite: rate(primary.samples, maxFrom, maxTo),
    };
  } finally {
    await Promise.all([primary.stop(), replica.stop()]);
  }
}

export async function catchupBenchmark(options: CatchupOptions = {}): Promise<BenchmarkResult> {
  const runs = options.runs ?? 3;
  const rt = await PodRunner.start({ name: 'bench-catchup', restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
  try {
    await rt.apply(chart());
    await rt.waitForStatefulSetReady(NAME, 2, 300_000);
    await sh(rt, PRIMARY, 'server', SQL, {
      stdin: 'CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, s INT NOT NULL, v INT NOT NULL, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;',
    });
    const results: RunResult[] = [];
    for (let run = 0; run < runs; run++) {
      const r = await oneRun(rt);
      results.push(r);
      log(`catchup run ${run + 1}/${runs}: steady load ${r.steadyWrite.toFixed(0)} tx/s, replica ${r.steadyApply.toFixed(0)} tx/s; ` +
        `a backlog of ${r.backlog.toFixed(0)} tx applied at ${r.catchupApply.toFixed(0)} tx/s in ${r.catchupSeconds.toFixed(1)} s ` +
        `(primary ${r.catchupWrite.toFixed(0)} tx/s${r.caughtUpUnderLoad ? '' : ', after the load ended'}); ` +
        `maximum load ${r.maxWrite.toFixed(0)} tx/s, replica ${r.maxApply.toFixed(0)} tx/s`);
      await sleep(2_000);
    }
    const all = <K extends keyof RunResult>(key: K) => results.map((r) => r[key] as number);
    const measurements: Measurement[] = [
      {
        id: 'catchup.steady',
        benchmark: 'catchup',
        name: 'Replica apply rate in sync, steady load',
        unit: 'tx/s',
        runs: all('steadyApply'),
        baseline: { name: 'primary write rate, same 10 s', runs: all('steadyWrite') },
        notes: `${SESSIONS} sessions on the primary, each ${STEADY_BATCH} autocommit single-row INSERTs every 100 ms; GTID sequence numbers sampled every 250 ms.`,
      },
      {
        id: 'catchup.catch-up',
        benchmark: 'catchup',
        name: 'Replica apply rate catching up, steady load',
        unit: 'tx/s',
        runs: all('catchupApply'),
        baseline: { name: 'primary write rate during the load', runs: all('catchupWrite') },
        goal: { text: 'catches up (ratio > 1)', on: 'ratio', op: '>', limit: 1 },
        notes: `the replica's SQL thread stopped for ${PAUSE_SECONDS} s under the steady load, then started: its rate until it applied that backlog ` +
          `(${all('backlog').map((b) => b.toFixed(0)).join(', ')} transactions, in ${all('catchupSeconds').map((s) => s.toFixed(1)).join(', ')} s; ` +
          `${results.filter((r) => r.caughtUpUnderLoad).length} of ${results.length} runs caught up while the load went on).`,
      },
      {
        id: 'catchup.max',
        benchmark: 'catchup',
        name: 'Replica apply rate in sync, maximum load',
        unit: 'tx/s',
        runs: all('maxApply'),
        baseline: { name: 'primary write rate, same 10 s', runs: all('maxWrite') },
        notes: `${SESSIONS} sessions of autocommit single-row INSERTs as fast as the primary commits (group commit); the replica applies with one SQL thread ` +
          '(slave_parallel_threads 0, the server default), and primary, replica and load share the 2 cores.',
      },
    ];
    return { measurements, notes: [] };
  } finally {
    await rt.stop();
  }
}
