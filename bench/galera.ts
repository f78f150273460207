/**
 * Galera: a 3-node GaleraCluster (the construct's defaults) with about 256 MiB of data, once per
 * SST method (mariabackup, the default, and rsync), each in its own runner.
 *
 * - IST rejoin: kill -9 of one node's container while another node takes writes; from the kill
 *   until the node reports Synced again (wsrep_local_state_comment Synced, wsrep_ready ON,
 *   cluster size 3), polled over TCP every 200 ms, and until its pod is Ready again. The victim
 *   rotates over the nodes. The log must show an IST, not an SST.
 * - Full crash: kill -9 of all three containers; from the last kill until all three report
 *   Synced in one cluster of 3 (the same cluster UUID as before: re-formed, not bootstrapped anew).
 * - SST join: a new 4th node (kubectl scale 3 → 4) with an empty volume; from the scale until it
 *   is Synced. Before each run the node is scaled away (it leaves the cluster cleanly) and its
 *   claim emptied. The log must show an SST.
 *
 * Experiments in the same run (only the rejoin and the full crash): the startup probe every
 * 10 s (the construct's earlier period) instead of 2 s; and galera-start.sh with REJOIN_WAIT 0:
 * a restarted node joins at once, while its peers still count its previous instance (until
 * evs.suspect_timeout, 5 s, evicts it), as the script did before it waited for the eviction.
 *
 * Baselines, measured in the same runs:
 * - IST and full crash: a plain MariaDB server (a 1-pod MySqlReplicationCluster with the same
 *   data, in the same runner) killed with kill -9: from the kill until it answers a query again
 *   (the container restart and InnoDB crash recovery without Galera), polled the same way.
 * - SST: tar of the data files of a node (no redo log, ibtmp1, gcache) through socat with 1 MiB
 *   buffers from that node's pod into the joiner's pod, the page cache dropped before, as in the
 *   seed benchmark.
 *
 * The runner restarts a killed container at once, as the kubelet does for a container that ran
 * for a while; the second restart within 20 s waits 10 s (kubelet: 10 s doubling, forgotten after
 * 10 minutes). Each run waits until its victims' last restart is 20 s old.
 */
import { Duration, JsonPatch, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { BenchmarkResult, Measurement } from './report';
import { BIG_BUFFERS, BYTES_PER_ROW, MIB, PORT, TIMING_FUNCTIONS, benchValues, evictPageCache, log, need, saveLog, secondsSince, serveOnce, sh, sleep, waitUntil } from './util';
import { EngineVersion, GaleraCluster, MySqlReplicationCluster, SstMethod } from '../src';
import { PodRunner } from '../test/e2e/runner';

const NAME = 'galera';
const SOLO = 'solo';
const CONTAINER = 'mariadb';
const ROOT_PASSWORD = 'bench-root';
const BACKOFF_WINDOW_MS = 21_000;
const TAR_EXCLUDES = "--exclude=./ib_logfile0 --exclude=./ibtmp1 --exclude=./galera.cache --exclude='./mariadb-bin.*'";

export interface GaleraOptions {
  /** Runs of each measurement. Default 3. */
  readonly runs?: number;
  /** Data size in MiB. Default 256. */
  readonly dataMiB?: number;
  /** The configurations to measure. Default {@link GALERA_CONFIGS}. */
  readonly configs?: readonly GaleraConfig[];
}

/** A configuration of the GaleraCluster to measure. */
export interface GaleraConfig {
  /** In figure ids and log names. */
  readonly id: string;
  /** In figure names. */
  readonly label: string;
  readonly method: SstMethod;
  readonly serverOptions?: { [name: string]: string };
  /** The startup probe's period instead of the construct's (its budget, startupTimeout, unchanged). */
  readonly startupProbePeriodSeconds?: number;
  /**
   * galera-start.sh's REJOIN_WAIT instead of its default: how long a restarted node with data may
   * wait for its peers to evict its previous instance before it joins (0: it joins at once, as the
   * script did before it waited).
   */
  readonly rejoinWaitSeconds?: number;
  /** Measure the SST join too. */
  readonly sst: boolean;
}

/**
 * Both SST methods with the construct's defaults; then, for comparison in the same run, the
 * startup probe every 10 s as the construct had it before (only the rejoin and the full crash).
 */
export const GALERA_CONFIGS: readonly GaleraConfig[] = [
  { id: 'mariabackup', label: 'sstMethod mariabackup', method: SstMethod.MARIABACKUP, sst: true },
  { id: 'rsync', label: 'sstMethod rsync', method: SstMethod.RSYNC, sst: true },
  { id: 'mariabackup-probe10s', label: 'mariabackup, startup probe every 10 s', method: SstMethod.MARIABACKUP, startupProbePeriodSeconds: 10, sst: false },
  { id: 'mariabackup-nowait', label: 'mariabackup, no wait for the eviction (REJOIN_WAIT 0)', method: SstMethod.MARIABACKUP, rejoinWaitSeconds: 0, sst: false },
];

/**
 * Tried, not in the default run: shorter failure detection through serverOptions. It rejoins
 * sooner (under 10 s), but evicts a node that stalls for 2 s; in one attempt on a loaded 2-core
 * machine the cluster did not even form (nodes were evicted during the initial SSTs).
 */
export const GALERA_EXPERIMENTS: readonly GaleraConfig[] = [
  {
    id: 'mariabackup-evs2s',
    label: 'mariabackup, evs.suspect_timeout 2 s',
    method: SstMethod.MARIABACKUP,
    serverOptions: { wsrep_provider_options: 'evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT2S' },
    sst: false,
  },
];

/** The pod runner's name for a configuration (1-20 lowercase letters, digits and '-'). */
export function runnerName(config: GaleraConfig): string {
  return `bench-g-${config.id.replace('mariabackup', 'mb')}`;
}

function fail(message: string): never {
  throw new Error(message);
}

function chart(config: GaleraConfig): ReturnType<typeof Testing.chart> {
  const c = Testing.chart();
  new k8s.KubeSecret(c, 'Credentials', {
    metadata: { name: `${NAME}-credentials` },
    stringData: { 'root-password': ROOT_PASSWORD, 'sst-password': 'bench-sst' },
  });
  new k8s.KubeSecret(c, 'SoloCredentials', {
    metadata: { name: `${SOLO}-credentials` },
    stringData: { 'root-password': ROOT_PASSWORD, 'replication-password': 'bench-repl' },
  });
  // the construct's defaults but the SST method (the runner stands in Debian's 10.11 for 11.4)
  const galera = new GaleraCluster(c, 'Galera', {
    name: NAME,
    version: EngineVersion.MARIADB_11_4,
    sstMethod: config.method,
    primaryComponentTimeout: Duration.seconds(60),
    ...(config.serverOptions ? { serverOptions: config.serverOptions } : {}),
  });
  if (config.startupProbePeriodSeconds) {
    const period = config.startupProbePeriodSeconds;
    const containers = galera.statefulSet.toJson().spec.template.spec.containers as Array<{ name: string }>;
    const container = containers.findIndex((ctr) => ctr.name === CONTAINER);
    galera.statefulSet.addJsonPatch(
      JsonPatch.replace(`/spec/template/spec/containers/${container}/startupProbe/periodSeconds`, period),
      JsonPatch.replace(`/spec/template/spec/containers/${container}/startupProbe/failureThreshold`, Math.ceil(3600 / period)));
  }
  if (config.rejoinWaitSeconds !== undefined) {
    const containers = galera.statefulSet.toJson().spec.template.spec.containers as Array<{ name: string; env?: Array<{ name: string }> }>;
    const container = containers.findIndex((ctr) => ctr.name === CONTAINER);
    if (containers[container]?.env?.some((e) => e.name === 'REJOIN_WAIT')) fail('the container already sets REJOIN_WAIT');
    galera.statefulSet.addJsonPatch(JsonPatch.add(`/spec/template/spec/containers/${container}/env/-`,
      { name: 'REJOIN_WAIT', value: `${config.rejoinWaitSeconds}` }));
  }
  new MySqlReplicationCluster(c, 'Solo', { name: SOLO, version: EngineVersion.MARIADB_11_4, replicas: 1 });
  return c;
}

/** One query over TCP from the client namespace, as root. */
async function query(rt: PodRunner, host: string, sql: string): Promise<{ ok: boolean; out: string }> {
  const r = await rt.client(['mariadb', '-h', host, '-uroot', `-p${ROOT_PASSWORD}`, '--connect-timeout=2', '-N', '-B', '-e', sql], { timeoutMs: 10_000 });
  return { ok: r.code === 0, out: r.stdout.trim() };
}

interface NodeState { synced: boolean; size: number; uuid: string }

async function nodeState(rt: PodRunner, pod: string): Promise<NodeState | undefined> {
  const r = await query(rt, `${pod}.${NAME}`, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_size', 'wsrep_cluster_state_uuid', 'wsrep_cluster_status')");
  if (!r.ok) return undefined;
  const s = Object.fromEntries(r.out.split('\n').map((line) => line.split('\t')));
  return {
    synced: s.wsrep_local_state_comment === 'Synced' && s.wsrep_ready === 'ON' && s.wsrep_cluster_status === 'Primary',
    size: Number(s.wsrep_cluster_size),
    uuid: s.wsrep_cluster_state_uuid,
  };
}

/** Seconds from `since` until every pod reports Synced in a Primary Component of `size`. */
async function untilSynced(rt: PodRunner, pods: readonly string[], size: number, since: number,
  timeoutMs = 600_000): Promise<{ seconds: number; uuid: string }> {
  const done = new Map<string, NodeState>();
  await waitUntil(`${pods.join(', ')} to be Synced in a cluster of ${size}`, async () => {
    for (const pod of pods.filter((p) => !done.has(p))) {
      const state = await nodeState(rt, pod);
      if (state?.synced && state.size === size) done.set(pod, state);
    }
    return done.size === pods.length;
  }, timeoutMs, 200);
  const uuids = new Set([...done.values()].map((s) => s.uuid));
  if (uuids.size !== 1) {
    throw new Error(`the nodes report different clusters: ${[...uuids].join(', ')}`);
  }
  return { seconds: secondsSince(since), uuid: [...uuids][0] };
}

/** Loads about `dataMiB` into a new database `bench` over a node's socket, in transactions of 50 000 rows. */
async function load(rt: PodRunner, pod: string, container: string, cnf: string, dataMiB: number, logBin: boolean): Promise<void> {
  const rows = Math.ceil((dataMiB * MIB) / BYTES_PER_ROW);
  const statements = [...(logBin ? [] : ['SET SESSION sql_log_bin = 0;']), 'CREATE DATABASE bench;', 'USE bench;',
    'CREATE TABLE t (id BIGINT PRIMARY KEY, a CHAR(32) NOT NULL, b VARCHAR(200) NOT NULL, c INT NOT NULL) ENGINE=InnoDB;',
    'CREATE TABLE w (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;'];
  for (let from = 0; from < rows; from += 50_000) {
    const n = Math.min(50_000, rows - from);
    statements.push(`INSERT INTO t SELECT ${from} + seq, MD5(seq * 7), CONCAT(SHA2(seq, 256), SHA2(seq * 3, 256), LEFT(SHA2(seq * 5 + ${from}, 256), 40)), ` +
      `(seq * 11) MOD 1000003 FROM seq_1_to_${n};`);
  }
  await sh(rt, pod, container, `mariadb --defaults-extra-file=${cnf}`, { stdin: statements.join('\n'), timeoutMs: 1_800_000 });
}

/** A light write load on a node for `seconds`: one session, an autocommit INSERT every ~20 ms. */
function writeLoad(rt: PodRunner, pod: string, seconds: number): Promise<unknown> {
  const n = seconds * 50;
  return rt.exec(pod, CONTAINER, ['bash', '-c',
    `for ((i = 0; i < ${n}; i++)); do echo 'INSERT INTO bench.w () VALUES (); DO SLEEP(0.02);'; done | ` +
    'mariadb --defaults-extra-file=/run/mysqld/client.cnf --force 2>/dev/null || true'], { timeoutMs: (seconds + 60) * 1000 });
}

class Restarts {
  private readonly last = new Map<string, number>();
  public killed(pod: string): void {
    this.last.set(pod, Date.now());
  }
  /** Waits until the last restart of every pod given is outside the runner's back-off window. */
  public async settle(pods: readonly string[]): Promise<void> {
    const latest = Math.max(0, ...pods.map((pod) => this.last.get(pod) ?? 0));
    const wait = latest + BACKOFF_WINDOW_MS - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

/** kill -9 of the plain server; seconds until it answers a query again. */
async function soloCrash(rt: PodRunner, restarts: Restarts): Promise<number> {
  const pod = `${SOLO}-0`;
  await restarts.settle([pod]);
  await writeLoadSolo(rt);
  await rt.killContainer(pod, 'server');
  const killedAt = Date.now();
  restarts.killed(pod);
  await waitUntil(`${pod} to answer after kill -9`, async () => (await query(rt, `${pod}.${SOLO}`, 'SELECT 1')).ok, 300_000, 200);
  return secondsSince(killedAt);
}

/** A few writes to the plain server just before it is killed, as the Galera nodes get. */
async function writeLoadSolo(rt: PodRunner): Promise<void> {
  await sh(rt, `${SOLO}-0`, 'server', 'mariadb --defaults-extra-file=/run/mysqld/root.cnf', {
    stdin: Array.from({ length: 100 }, () => 'INSERT INTO bench.w () VALUES ();').join('\n'),
  });
}

function logOf(rt: PodRunner, pod: string): string {
  return rt.logs(pod, CONTAINER);
}

async function measureConfig(config: GaleraConfig, runs: number, dataMiB: number): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const m = config.id;
  const rt = await PodRunner.start({ name: runnerName(config), restartBackoff: { initialMs: 10_000, maxMs: 10_000 } });
  const restarts = new Restarts();
  const pods = [0, 1, 2].map((i) => `${NAME}-${i}`);
  try {
    let started = Date.now();
    await rt.apply(chart(config));
    await rt.waitForStatefulSetReady(NAME, 3, 300_000);
    await rt.waitForStatefulSetReady(SOLO, 1, 300_000);
    log(`galera ${m}: 3 nodes formed in ${secondsSince(started).toFixed(1)} s`);
    started = Date.now();
    await load(rt, `${NAME}-0`, CONTAINER, '/run/mysqld/client.cnf', dataMiB, true);
    await load(rt, `${SOLO}-0`, 'server', '/run/mysqld/root.cnf', dataMiB, false);
    const { uuid } = await untilSynced(rt, pods, 3, Date.now());
    const size = Number((await sh(rt, `${NAME}-0`, CONTAINER, 'du -sb /var/lib/mysql/bench | cut -f1')).trim());
    log(`galera ${m}: loaded ${(size / MIB).toFixed(0)} MiB in ${secondsSince(started).toFixed(1)} s`);

    // IST rejoin after kill -9, under a write load on another node
    const ist: number[] = [];
    const istReady: number[] = [];
    const soloIst: number[] = [];
    for (let run = 0; run < runs; run++) {
      soloIst.push(await soloCrash(rt, restarts));
      const victim = pods[(run + 1) % 3];
      const writer = pods[(run + 2) % 3];
      await restarts.settle([victim]);
      await untilSynced(rt, pods, 3, Date.now());
      const restartsBefore = rt.restartCount(victim, CONTAINER);
      const load$ = writeLoad(rt, writer, 15);
      await sleep(2_000);
      await rt.killContainer(victim, CONTAINER);
      const killedAt = Date.now();
      restarts.killed(victim);
      const synced = await untilSynced(rt, [victim], 3, killedAt);
      await waitUntil(`${victim} to be ready`, () => rt.isReady(victim), 300_000, 50);
      istReady.push(secondsSince(killedAt));
      ist.push(synced.seconds);
      await load$;
      const text = logOf(rt, victim);
      pods.forEach((pod) => saveLog(`galera-${m}-ist-run${run + 1}-${pod}${pod === victim ? '-victim' : ''}`, `${victim} killed at ${new Date(killedAt).toISOString()}\n${logOf(rt, pod)}`));
      if (rt.restartCount(victim, CONTAINER) !== restartsBefore + 1 || !/IST received/.test(text) || /SST completed on joiner/.test(text)) {
        throw new Error(`${victim} did not rejoin by one restart and IST:\n${text.split('\n').filter((l) => /galera-start|IST|SST/.test(l)).slice(-30).join('\n')}`);
      }
      log(`galera ${m} IST run ${run + 1}/${runs}: ${victim} Synced ${synced.seconds.toFixed(1)} s, ready ${istReady[run].toFixed(1)} s after kill -9; plain server ${soloIst[run].toFixed(1)} s`);
    }

    // every node killed
    const crash: number[] = [];
    const crashReady: number[] = [];
    const soloCrashRuns: number[] = [];
    for (let run = 0; run < runs; run++) {
      soloCrashRuns.push(await soloCrash(rt, restarts));
      await restarts.settle(pods);
      await untilSynced(rt, pods, 3, Date.now());
      const load$ = writeLoad(rt, pods[0], 3);
      await sleep(1_500);
      await Promise.all(pods.map((pod) => rt.killContainer(pod, CONTAINER)));
      const killedAt = Date.now();
      pods.forEach((pod) => restarts.killed(pod));
      await load$;
      const recovered = await untilSynced(rt, pods, 3, killedAt);
      if (recovered.uuid !== uuid) {
        throw new Error(`after kill -9 of all nodes the cluster came back as ${recovered.uuid}, not ${uuid}: a new cluster was bootstrapped`);
      }
      crash.push(recovered.seconds);
      await waitUntil('every node to be ready', () => pods.every((pod) => rt.isReady(pod)), 300_000, 50);
      crashReady.push(secondsSince(killedAt));
      pods.forEach((pod) => saveLog(`galera-${m}-crash-run${run + 1}-${pod}`, `killed at ${new Date(killedAt).toISOString()}\n${logOf(rt, pod)}`));
      log(`galera ${m} full crash run ${run + 1}/${runs}: all Synced ${recovered.seconds.toFixed(1)} s after the last kill -9; plain server ${soloCrashRuns[run].toFixed(1)} s`);
    }

    const plain = (runsOf: number[]) => ({ name: 'plain server: kill -9 → answers', runs: runsOf });
    // a variation for comparison, not the construct's defaults
    const experiment = [config.startupProbePeriodSeconds, config.serverOptions, config.rejoinWaitSeconds].some((v) => v !== undefined);
    const measurements: Measurement[] = [
      {
        id: `galera.${m}.ist`,
        benchmark: 'galera',
        name: `IST rejoin after kill -9 (${config.label})`,
        unit: 's',
        runs: ist,
        baseline: plain(soloIst),
        goal: { text: 'IST < 10 s', on: 'value', op: '<', limit: 10 },
        notes: `kill -9 of one node's container while another node writes (~50 autocommit INSERTs/s); until it reports Synced again${config.serverOptions ? ` (serverOptions ${JSON.stringify(config.serverOptions)})` : ''}.`,
        ...(experiment ? { experiment } : {}),
      },
      {
        id: `galera.${m}.ist-ready`,
        benchmark: 'galera',
        name: `IST rejoin after kill -9 → pod Ready (${config.label})`,
        unit: 's',
        runs: istReady,
        baseline: plain(soloIst),
        goal: { text: 'IST < 10 s', on: 'value', op: '<', limit: 10 },
        notes: `as above, until the pod is Ready again (the Service sends clients to it): the startup probe (every ${config.startupProbePeriodSeconds ?? 2} s) ` +
          'passes once the server answers, then the readiness probe once it is Synced.',
        ...(experiment ? { experiment } : {}),
      },
      {
        id: `galera.${m}.full-crash`,
        benchmark: 'galera',
        name: `Full crash: kill -9 of all 3 → all Synced (${config.label})`,
        unit: 's',
        runs: crash,
        baseline: plain(soloCrashRuns),
        goal: { text: 'full crash < 60 s', on: 'value', op: '<', limit: 60 },
        notes: 'kill -9 of every node\'s container; until all three report Synced in one Primary Component of 3 with the cluster\'s UUID (no new cluster). ' +
          `All pods Ready: ${crashReady.map((s2) => s2.toFixed(1)).join(', ')} s after the kill.`,
        ...(experiment ? { experiment } : {}),
      },
    ];
    if (!config.sst) {
      return { measurements, notes: [] };
    }

    // SST of a new node: scaled from 3 to 4 with an empty volume, every run
    // (kubectl scale: the template stays as it is; re-applying replicas: 4 would change the peer
    // list in galera.cnf and roll every pod. The new node reaches the cluster through the 3 peers.)
    const joiner = `${NAME}-3`;
    started = Date.now();
    await rt.scale(NAME, 4);
    await rt.waitForStatefulSetReady(NAME, 4, 600_000);
    log(`galera ${m}: 4th node joined (SST) and ready in ${secondsSince(started).toFixed(1)} s (warm-up, not counted)`);
    const all = [...pods, joiner];
    const sst: number[] = [];
    const sstReady: number[] = [];
    const tar: number[] = [];
    let payload = 0;
    for (let run = 0; run < runs; run++) {
      await untilSynced(rt, all, 4, Date.now());
      for (const pod of pods) await evictPageCache(rt, pod, CONTAINER, '/var/lib/mysql');
      const copied = await tarCopy(rt, pods[run % 3], joiner);
      tar.push(copied.seconds);
      payload = copied.bytes;
      // the 4th node leaves (graceful: it leaves the cluster cleanly), its volume is emptied
      await rt.scale(NAME, 3);
      await rt.waitForPodGone(joiner, 120_000);
      await wipeClaim(rt, `data-${joiner}`, run);
      for (const pod of pods) await evictPageCache(rt, pod, CONTAINER, '/var/lib/mysql');
      await untilSynced(rt, pods, 3, Date.now());
      const scaledAt = Date.now();
      await rt.scale(NAME, 4);
      const synced = await untilSynced(rt, [joiner], 4, scaledAt);
      sst.push(synced.seconds);
      await waitUntil(`${joiner} to be ready`, () => rt.isReady(joiner), 300_000, 50);
      sstReady.push(secondsSince(scaledAt));
      const text = logOf(rt, joiner);
      saveLog(`galera-${m}-sst-run${run + 1}-${joiner}`, `scaled at ${new Date(scaledAt).toISOString()}\n${text}`);
      if (!/SST completed on joiner|SST received/.test(text)) {
        throw new Error(`${joiner} did not join by SST:\n${text.split('\n').filter((l) => /galera-start|IST|SST/.test(l)).slice(-30).join('\n')}`);
      }
      log(`galera ${m} SST run ${run + 1}/${runs}: new ${joiner} Synced ${synced.seconds.toFixed(1)} s, ready ${sstReady[run].toFixed(1)} s after the scale; ` +
        `tar ${copied.seconds.toFixed(2)} s`);
    }

    measurements.push(
      {
        id: `galera.${m}.sst`,
        benchmark: 'galera',
        name: `New node's SST join, ${(payload / MIB).toFixed(0)} MiB (${config.label})`,
        unit: 's',
        runs: sst,
        baseline: { name: `tar, ${(payload / MIB).toFixed(0)} MiB`, runs: tar },
        notes: 'kubectl scale 3 → 4 with an empty volume (scaled back and its claim emptied before each run): from the scale until the new node reports Synced. ' +
          `Pod Ready: ${sstReady.map((s2) => s2.toFixed(1)).join(', ')} s. ` +
          'Baseline: tar of a node\'s data files (no redo log, ibtmp1, gcache) through socat with 1 MiB buffers into the joiner\'s pod.',
      },
    );
    return { measurements, notes: [] };
  } finally {
    await rt.stop();
  }
}

/** Empties a claim with a throwaway pod that mounts it (no pod of the StatefulSet uses it meanwhile). */
async function wipeClaim(rt: PodRunner, claim: string, run: number): Promise<void> {
  const name = `wipe-${run}`;
  await rt.apply([{
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 999 },
      containers: [{ name: 'main', image: 'mariadb:11.4', command: ['bash', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'], volumeMounts: [{ name: 'v', mountPath: '/v' }] }],
      volumes: [{ name: 'v', persistentVolumeClaim: { claimName: claim } }],
    },
  }]);
  await rt.waitForReady(name, 60_000);
  await sh(rt, name, 'main', 'rm -rf /v/* /v/.[!.]* 2>/dev/null; [[ -z $(ls -A /v) ]]');
  await rt.deletePod(name, { force: true });
}

/** tar of a node's data files into the joiner's pod (its /tmp, on the same disk as its volume); seconds and bytes. */
async function tarCopy(rt: PodRunner, donor: string, joiner: string): Promise<{ seconds: number; bytes: number }> {
  const stage = '/tmp/bench-stage';
  const sender = await serveOnce(rt, donor, CONTAINER, PORT,
    `cd /var/lib/mysql && { tar --warning=none -b 2048 -cf - ${TAR_EXCLUDES} . || true; }`, BIG_BUFFERS);
  let out: string;
  try {
    out = await sh(rt, joiner, CONTAINER, `${TIMING_FUNCTIONS}
rm -rf ${stage}; mkdir -p ${stage}
mark start
socat ${BIG_BUFFERS} -u TCP:${donor}.${NAME}:${PORT},connect-timeout=10 STDOUT | tar -b 2048 -xf - -C ${stage}
mark end
value bytes "$(du -sb ${stage} | cut -f1)"
rm -rf ${stage}
elapsed start end`);
  } catch (error) {
    await sender.cancel();
    throw error;
  }
  await sender.done;
  const v = benchValues(out);
  return { seconds: need(v, 'start..end'), bytes: need(v, 'bytes') };
}

export async function galeraBenchmark(options: GaleraOptions = {}): Promise<BenchmarkResult> {
  const runs = options.runs ?? 3;
  const dataMiB = options.dataMiB ?? 256;
  const configs = options.configs ?? GALERA_CONFIGS;
  const measurements: Measurement[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  for (const config of configs) {
    try {
      const result = await measureConfig(config, runs, dataMiB);
      measurements.push(...result.measurements);
      notes.push(...result.notes);
    } catch (error) {
      // the other configurations are still measured
      failures.push(`${config.label}: ${error instanceof Error ? error.message : String(error)}`);
      log(`galera ${config.id} FAILED: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  notes.push(`Galera: 3 nodes with the construct's defaults (buffer pool 128 MiB, gcache 128 MiB), about ${dataMiB} MiB of data; ` +
    'the mariabackup SST donor of MariaDB 10.11 sleeps 10 s before it sends ("Sleeping before data transfer for SST"), which rsync does not.');
  return { measurements, notes, failures };
}
