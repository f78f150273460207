/**
 * Seeding a replica: a MariaDB MySqlReplicationCluster whose primary holds ≥ 1 GiB, and a new
 * replica that receives a physical copy of it over the pod network.
 *
 * Baseline (the physical limit of this path): `tar` of the primary's data files (what a physical
 * copy must carry: no binary logs, no redo log, no ibtmp1) with 1 MiB records, piped through
 * socat with 1 MiB buffers from the primary's pod to the replica's pod and extracted into the
 * replica's volume.
 * Measured in the same runs:
 * - construct: the construct's own seeding (`receive_seed` of replication-lib.sh in the replica
 *   pod, from the donor sidecar of the primary: health check, mariadb-backup stream, end mark,
 *   prepare), as synthesized from the scripts of this checkout;
 * - tutorial: the seed recipe of the tutorials: mariadb-backup with its defaults as one plain
 *   socat stream, mbstream -x, then --prepare;
 * - experiments: the tutorial recipe with one or more changes (buffers, parallel copy, buffered
 *   reads, stream compression, prepare memory), to see what helps;
 * - new replica end to end: the replica's volume wiped and its pod deleted; the StatefulSet
 *   creates it again and its init container seeds it; until the init container is done, and
 *   until the pod is Ready (its agent configured replication and the readiness probe passed).
 * Before each measurement the page cache of the primary's data files is dropped (a server with
 * O_DIRECT, the default, keeps none), so that every copy reads from the disk, and the replica's
 * volume is synced. The order of the copies rotates from run to run.
 */
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { BenchmarkResult, Measurement } from './report';
import { BIG_BUFFERS, BYTES_PER_ROW, DATA, MIB, PORT, SQL, TAR_EXCLUDES, TIMING_FUNCTIONS, benchValues, evictPageCache, log, need, saveLog, secondsSince, serveOnce, sh, sleep, waitUntil } from './util';
import { EngineVersion, MySqlReplicationCluster } from '../src';
import { PodRunner } from '../test/e2e/runner';

const NAME = 'seed';
const DONOR = `${NAME}-0`;
const RECEIVER = `${NAME}-1`;
const DONOR_HOST = `${DONOR}.${NAME}`;
const STAGE = '/var/lib/mysql/bench-stage';

export interface SeedOptions {
  /** Runs of each measurement. Default 5. */
  readonly runs?: number;
  /** Size of the data in MiB (InnoDB data files). Default 1280. */
  readonly dataMiB?: number;
  /** Tables the data is spread over. Default 8. */
  readonly tables?: number;
  /** Also measure the experiments. Default true. */
  readonly experiments?: boolean;
}

/** A way to copy the primary's data into the replica's volume: the sender (stdout is the stream) and the receiver. */
interface Recipe {
  readonly id: string;
  readonly name: string;
  /** bash on the primary (donor container); its stdout goes to the replica. */
  readonly send: string;
  /** socat options of both ends. */
  readonly socat: string;
  /** bash pipeline on the replica that reads the stream on stdin and writes into $S. */
  readonly receive: string;
  /** bash on the replica after the transfer (e.g. prepare $S). */
  readonly prepare?: string;
  readonly notes: string;
}

const backup = (options = '') =>
  `mkdir -p /tmp/bench-bk && exec mariadb-backup --defaults-file=/run/mysqld/backup.cnf --backup --stream=xbstream --target-dir=/tmp/bench-bk ${options} 2>/tmp/bench-bk.log`;
const prepare = (options = '') => `mariadb-backup --prepare --target-dir="$S" ${options} 2>/tmp/bench-prepare.log`;

const TAR: Recipe = {
  id: 'tar',
  name: 'raw tar',
  // 1 MiB records (tar's default is 10 KiB) and socat buffers: the fastest raw copy we found
  send: `cd ${DATA} && { tar --warning=none -b 2048 -cf - ${TAR_EXCLUDES} . || true; }`,
  socat: BIG_BUFFERS,
  receive: 'tar -b 2048 -xf - -C "$S"',
  notes: '',
};

const TUTORIAL: Recipe = {
  id: 'tutorial',
  name: 'Seed, tutorial recipe (mariadb-backup defaults, one plain stream, prepare)',
  send: backup(),
  socat: '',
  receive: 'mbstream -x -C "$S"',
  prepare: prepare(),
  notes: 'mariadb-backup --backup --stream=xbstream | socat | socat | mbstream -x, then mariadb-backup --prepare, all with their defaults.',
};

const EXPERIMENTS: Recipe[] = [
  {
    ...TUTORIAL,
    id: 'buffers',
    name: 'Experiment: tutorial + socat 1 MiB buffers',
    socat: BIG_BUFFERS,
    notes: 'socat -b 1048576 at both ends (socat copies 8 KiB per read/write by default).',
  },
  {
    ...TUTORIAL,
    id: 'buffers-parallel',
    name: 'Experiment: + --parallel=4',
    send: backup('--parallel=4'),
    socat: BIG_BUFFERS,
    notes: 'mariadb-backup copies 4 data files at a time (it parallelizes per file).',
  },
  {
    ...TUTORIAL,
    id: 'buffers-parallel2',
    name: 'Experiment: + --parallel=2',
    send: backup('--parallel=2'),
    socat: BIG_BUFFERS,
    notes: 'mariadb-backup copies 2 data files at a time (as many as this machine has cores).',
  },
  {
    ...TUTORIAL,
    id: 'buffers-parallel-extract',
    name: 'Experiment: + --parallel=4 + mbstream -x --parallel=2',
    send: backup('--parallel=4'),
    socat: BIG_BUFFERS,
    receive: 'mbstream -x --parallel=2 -C "$S"',
    notes: 'mbstream extracts with 2 writer threads (1 by default).',
  },
  {
    ...TUTORIAL,
    id: 'buffers-parallel-buffered-reads',
    name: 'Experiment: + --parallel=4 + buffered reads',
    send: backup('--parallel=4 --innodb-flush-method=fsync'),
    socat: BIG_BUFFERS,
    notes: 'mariadb-backup reads the data files through the page cache (kernel read-ahead) instead of O_DIRECT.',
  },
  {
    ...TUTORIAL,
    id: 'buffers-zstd',
    name: 'Experiment: + zstd -1 on the stream',
    send: `${backup()} | zstd -1 -T2 -q`,
    socat: BIG_BUFFERS,
    receive: 'zstd -d -q | mbstream -x -C "$S"',
    notes: 'the stream compressed with zstd -1 on 2 threads and decompressed before mbstream.',
  },
  {
    ...TUTORIAL,
    id: 'buffers-prepare-memory',
    name: 'Experiment: + prepare --use-memory=1G',
    socat: BIG_BUFFERS,
    prepare: prepare('--use-memory=1G'),
    notes: 'mariadb-backup --prepare with a 1 GiB buffer pool instead of 100 MiB.',
  },
];

function chart(): ReturnType<typeof Testing.chart> {
  const c = Testing.chart();
  new k8s.KubeSecret(c, 'Credentials', {
    metadata: { name: `${NAME}-credentials` },
    stringData: { 'root-password': 'bench-root', 'replication-password': 'bench-repl' },
  });
  // the construct's defaults (buffer pool 128 MiB, redo log 96 MiB), MariaDB 11.4 (Debian's 10.11 stands in)
  new MySqlReplicationCluster(c, 'Db', { name: NAME, version: EngineVersion.MARIADB_11_4, replicas: 1 });
  return c;
}

/** Loads `tables` tables of hex text (compresses about 2:1) totalling about `dataMiB`; returns their bytes on disk. */
async function load(rt: PodRunner, dataMiB: number, tables: number): Promise<number> {
  const rows = Math.ceil((dataMiB * MIB) / BYTES_PER_ROW / tables);
  const statements = ['SET SESSION sql_log_bin = 0;', 'CREATE DATABASE bench;', 'USE bench;'];
  for (let t = 1; t <= tables; t++) {
    statements.push(`CREATE TABLE t${t} (id BIGINT PRIMARY KEY, a CHAR(32) NOT NULL, b VARCHAR(200) NOT NULL, c INT NOT NULL) ENGINE=InnoDB;`);
    for (let from = 0; from < rows; from += 250_000) {
      const n = Math.min(250_000, rows - from);
      statements.push(`INSERT INTO t${t} SELECT ${from} + seq, MD5(seq * 7 + ${t}), CONCAT(SHA2(seq + ${t}, 256), SHA2(seq * 3 + ${t}, 256), ` +
        `LEFT(SHA2(seq * 5 + ${from}, 256), 40)), (seq * 11 + ${t}) MOD 1000003 FROM seq_1_to_${n};`);
    }
  }
  await sh(rt, DONOR, 'server', SQL, { stdin: statements.join('\n'), timeoutMs: 1_800_000 });
  const out = await sh(rt, DONOR, 'server', `du -sb ${DATA}/bench | cut -f1`);
  return Number(out.trim());
}

/**
 * The same start for every copy: no scratch directory, no dirty pages of earlier copies waiting
 * to be written back (sync), none of the primary's data files in the page cache.
 */
async function clean(rt: PodRunner): Promise<void> {
  await sh(rt, RECEIVER, 'agent', `rm -rf ${STAGE} && sync -f /var/lib/mysql`);
  await evictPageCache(rt, DONOR, 'donor', DATA);
}

/** Copies the primary's data into the replica's scratch directory by a recipe; returns seconds (total, transfer, prepare) and bytes. */
async function copy(rt: PodRunner, recipe: Recipe): Promise<{ total: number; transfer: number; prepare: number; bytes: number }> {
  await clean(rt);
  const sender = await serveOnce(rt, DONOR, 'donor', PORT, recipe.send, recipe.socat);
  let out: string;
  try {
    out = await sh(rt, RECEIVER, 'agent', `${TIMING_FUNCTIONS}
S=${STAGE}; mkdir -p "$S"
mark start
socat ${recipe.socat} -u TCP:${DONOR_HOST}:${PORT},connect-timeout=10 STDOUT | { ${recipe.receive}; }
mark received
${recipe.prepare ?? ':'}
mark prepared
value bytes "$(du -sb "$S" | cut -f1)"
rm -rf "$S"
elapsed start received; elapsed received prepared; elapsed start prepared`);
  } catch (error) {
    await sender.cancel();
    throw error;
  }
  await sender.done;
  const v = benchValues(out);
  return { total: need(v, 'start..prepared'), transfer: need(v, 'start..received'), prepare: need(v, 'received..prepared'), bytes: need(v, 'bytes') };
}

/** The construct's seeding functions in the replica's pod, from the donor sidecar; returns seconds. */
async function constructSeed(rt: PodRunner): Promise<number> {
  await clean(rt);
  const out = await sh(rt, RECEIVER, 'agent', `${TIMING_FUNCTIONS}
source /etc/cdk8s-mysql/scripts/replication-lib.sh
mark start
receive_seed ${DONOR_HOST} "$SEED_PORT" ${STAGE} 2>/tmp/bench-seed.log || { cat /tmp/bench-seed.log >&2; exit 1; }
mark prepared
rm -rf ${STAGE}
elapsed start prepared`);
  return need(benchValues(out), 'start..prepared');
}

/** Wipes the replica's volume and deletes its pod; the StatefulSet creates it again and it seeds itself. Seconds until init done and until Ready. */
async function newReplica(rt: PodRunner): Promise<{ init: number; ready: number }> {
  await sh(rt, RECEIVER, 'agent', 'rm -rf /var/lib/mysql/* /var/lib/mysql/.[!.]* 2>/dev/null; sync -f /var/lib/mysql');
  await evictPageCache(rt, DONOR, 'donor', DATA);
  await rt.deletePod(RECEIVER, { force: true });
  const deletedAt = Date.now();
  let init: number | undefined;
  await waitUntil(`${RECEIVER} to be seeded again and ready`, () => {
    const status = rt.status(RECEIVER);
    if (init === undefined && status?.containers.find((c) => c.name === 'server')?.state === 'running') {
      init = secondsSince(deletedAt);
    }
    return status?.ready ?? false;
  }, 600_000, 50);
  const ready = secondsSince(deletedAt);
  const initLog = rt.logs(RECEIVER, 'init');
  saveLog(`seed-new-replica-${deletedAt}`, `deleted at ${new Date(deletedAt).toISOString()}; init done ${init} s, ready ${ready} s\n${initLog}\n--- agent\n${rt.logs(RECEIVER, 'agent')}`);
  if (!/seeded from/.test(initLog)) {
    throw new Error(`${RECEIVER} became ready without seeding:\n${initLog.slice(-2000)}`);
  }
  return { init: init ?? ready, ready };
}

export async function seedBenchmark(options: SeedOptions = {}): Promise<BenchmarkResult> {
  const runs = options.runs ?? 5;
  const dataMiB = options.dataMiB ?? 1280;
  const tables = options.tables ?? 8;
  const recipes = [TUTORIAL, ...(options.experiments ?? true ? EXPERIMENTS : [])];
  const rt = await PodRunner.start({ name: 'bench-seed', restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
  try {
    await rt.apply(chart());
    await rt.waitForStatefulSetReady(NAME, 1, 300_000);
    let started = Date.now();
    const dataBytes = await load(rt, dataMiB, tables);
    log(`seed: loaded ${(dataBytes / MIB).toFixed(0)} MiB in ${tables} tables in ${secondsSince(started).toFixed(1)} s`);
    started = Date.now();
    await rt.scale(NAME, 2);
    await rt.waitForStatefulSetReady(NAME, 2, 600_000);
    log(`seed: first replica seeded and ready in ${secondsSince(started).toFixed(1)} s (warm-up, not counted)`);

    const tar: number[] = [];
    const payload: number[] = [];
    const constructRuns: number[] = [];
    const timings = new Map<string, { total: number[]; transfer: number[]; prepare: number[]; bytes: number[] }>();
    const init: number[] = [];
    const ready: number[] = [];
    // every copy of a run, in an order rotated from run to run (so that no copy always goes first)
    const steps: Array<() => Promise<void>> = [
      async () => {
        const baseline = await copy(rt, TAR);
        tar.push(baseline.total);
        payload.push(baseline.bytes);
      },
      async () => {
        constructRuns.push(await constructSeed(rt));
      },
      ...recipes.map((recipe) => async () => {
        const t = await copy(rt, recipe);
        const entry = timings.get(recipe.id) ?? { total: [], transfer: [], prepare: [], bytes: [] };
        entry.total.push(t.total);
        entry.transfer.push(t.transfer);
        entry.prepare.push(t.prepare);
        entry.bytes.push(t.bytes);
        timings.set(recipe.id, entry);
      }),
    ];
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < steps.length; i++) {
        await steps[(i + run) % steps.length]();
      }
      const replica = await newReplica(rt);
      init.push(replica.init);
      ready.push(replica.ready);
      log(`seed run ${run + 1}/${runs}: tar ${tar[run].toFixed(2)} s, construct ${constructRuns[run].toFixed(2)} s, ` +
        recipes.map((r) => `${r.id} ${timings.get(r.id)!.total[run].toFixed(2)} s`).join(', ') +
        `, new replica: init ${replica.init.toFixed(1)} s, ready ${replica.ready.toFixed(1)} s`);
      await sleep(1_000);
    }

    const payloadMiB = Math.min(...payload) / MIB;
    if (dataMiB >= 1024 && payloadMiB < 1024) {
      throw new Error(`the copied payload is ${payloadMiB.toFixed(0)} MiB, less than the 1 GiB the benchmark must copy`);
    }
    const baseline = { name: `tar, ${payloadMiB.toFixed(0)} MiB`, runs: tar };
    const goal = { text: '≤ 1.3× raw copy', on: 'ratio' as const, op: '<=' as const, limit: 1.3 };
    const measurements: Measurement[] = [
      {
        id: 'seed.construct',
        benchmark: 'seed',
        name: 'Seed a replica, construct (receive_seed: stream + prepare)',
        unit: 's',
        runs: constructRuns,
        baseline,
        goal,
        notes: 'receive_seed of replication-lib.sh run in the replica pod against the donor sidecar of the primary (replication-send.sh): ' +
          'health check, mariadb-backup stream, end mark, mbstream -x, --prepare. Baseline: tar (1 MiB records) of the data files (no binary logs, redo log, ibtmp1) ' +
          'through socat with 1 MiB buffers between the same two pods into the same volume, the page cache of the primary\'s files dropped before each copy.',
      },
      ...recipes.map((recipe): Measurement => ({
        id: `seed.${recipe.id}`,
        benchmark: 'seed',
        name: recipe.name,
        unit: 's',
        runs: timings.get(recipe.id)!.total,
        baseline,
        ...(recipe === TUTORIAL ? { goal } : { experiment: true }),
        notes: `${recipe.notes} Transfer ${timings.get(recipe.id)!.transfer.map((s) => s.toFixed(2)).join(', ')} s; ` +
          `prepare ${timings.get(recipe.id)!.prepare.map((s) => s.toFixed(2)).join(', ')} s.`,
      })),
      {
        id: 'seed.new-replica-init',
        benchmark: 'seed',
        name: 'New replica: pod deleted → init container done (seeded)',
        unit: 's',
        runs: init,
        baseline,
        notes: 'the replica\'s volume wiped and its pod force-deleted; from the deletion to its server container running: ' +
          'pod creation, the init container\'s seed (receive, prepare, install with syncfs).',
      },
      {
        id: 'seed.new-replica-ready',
        benchmark: 'seed',
        name: 'New replica: pod deleted → Ready',
        unit: 's',
        runs: ready,
        baseline,
        notes: 'as above, until the pod is Ready: the server started, the agent (every second until the server answers, then every 5 s) configured replication, the readiness probe (every 5 s) passed.',
      },
    ];
    const notes = [
      `Seed data: ${tables} InnoDB tables, ${(dataBytes / MIB).toFixed(0)} MiB of data files (hex text, about 2:1 compressible), loaded without binary logging; ` +
      `the copied payload is ${payloadMiB.toFixed(0)} MiB; mariadb-backup's stream extracts to ${(Math.min(...timings.get(TUTORIAL.id)!.bytes) / MIB).toFixed(0)} MiB.`,
    ];
    return { measurements, notes };
  } finally {
    await rt.stop();
  }
}
