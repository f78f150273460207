/**
 * Backup and restore: a MariaDB MySqlReplicationCluster (primary and one replica, the
 * construct's defaults) with about 256 MiB of data, and physical BackupSchedules to a
 * PersistentVolumeClaim, one per compression (zstd, the default; gzip; none), run on demand.
 *
 * - Backup: the backup Job run to completion (it picks the replica, receives the stream of its
 *   donor sidecar compressed into the claim, extracts and prepares it, checksums every table with
 *   a throwaway server, writes the manifest, prunes). Baseline in the same run: tar (1 MiB
 *   records) of the replica's data files through socat with 1 MiB buffers into a file on the same
 *   claim, from a pod that mounts it (the path the backup's bytes take).
 * - Size: the artifact against the data files it copies, per compression.
 * - Restore into a new cluster (restoreFrom, the newest zstd backup): from the apply until the new
 *   primary's init containers are done (fetched, checksum-verified, extracted, prepared, tables
 *   checked against the manifest with a throwaway server, installed); its Ready time in the
 *   notes. Baseline in the same run: a raw copy of the artifact's bytes from the claim into a
 *   pod's volume.
 * - Restore Job into the running cluster (the `-restore` CronJob, newest zstd backup): it dumps
 *   the prepared copy from a throwaway server and loads it through the primary; same baseline.
 * Before each measurement the data files read are dropped from the page cache and the disk is
 * synced.
 */
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { BenchmarkResult, Measurement } from './report';
import { BIG_BUFFERS, BYTES_PER_ROW, DATA, MIB, PORT, SQL, TAR_EXCLUDES, TIMING_FUNCTIONS, benchValues, evictPageCache, log, need, saveLog, secondsSince, serveOnce, sh, sleep, waitUntil } from './util';
import { BackupCompression, BackupMethod, BackupTarget, EngineVersion, MySqlReplicationCluster } from '../src';
import { PodRunner } from '../test/e2e/runner';

const NAME = 'bk';
const PRIMARY = `${NAME}-0`;
const SOURCE = `${NAME}-1`;
const CLAIM = 'backups';
const TARGET_POD = 'bench-target';
const MOUNT = '/var/backups/cdk8s-mysql';
const COMPRESSIONS = [BackupCompression.ZSTD, BackupCompression.GZIP, BackupCompression.NONE];

export interface BackupOptions {
  /** Runs. Default 3. */
  readonly runs?: number;
  /** Data size in MiB. Default 256. */
  readonly dataMiB?: number;
  /** Also run the restore Job into the running cluster. Default true. */
  readonly restoreJob?: boolean;
}

function credentials(scope: Construct, name: string): void {
  new k8s.KubeSecret(scope, `${name}Credentials`, {
    metadata: { name: `${name}-credentials` },
    stringData: { 'root-password': 'bench-root', 'replication-password': 'bench-repl' },
  });
}

const target = (scope: Construct, compression: string) =>
  BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(scope, `Claim-${compression}`, CLAIM), { path: compression });

interface Jobs { backup: Record<string, string>; restore: Record<string, string> }

function chart(): { chart: ReturnType<typeof Testing.chart>; jobs: Jobs } {
  const c = Testing.chart();
  credentials(c, NAME);
  new k8s.KubePersistentVolumeClaim(c, 'Backups', {
    metadata: { name: CLAIM },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: k8s.Quantity.fromString('20Gi') } } },
  });
  const db = new MySqlReplicationCluster(c, 'Db', { name: NAME, version: EngineVersion.MARIADB_11_4, replicas: 1 });
  const jobs: Jobs = { backup: {}, restore: {} };
  for (const compression of COMPRESSIONS) {
    const schedule = db.addBackupSchedule(`Nightly-${compression}`, { name: `${NAME}-${compression}`, target: target(c, compression), method: BackupMethod.PHYSICAL, compression });
    jobs.backup[compression] = schedule.cronJobs[0].name;
    jobs.restore[compression] = schedule.restoreCronJob.name;
  }
  // a pod on the backup claim, for the baselines (the same claim, reached over the same pod network)
  new k8s.KubePod(c, 'Target', {
    metadata: { name: TARGET_POD },
    spec: {
      securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 999 },
      containers: [{
        name: 'main',
        image: 'mariadb:11.4',
        command: ['bash', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'],
        volumeMounts: [{ name: 'backups', mountPath: MOUNT }, { name: 'scratch', mountPath: '/scratch' }],
      }],
      volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: CLAIM } }, { name: 'scratch', emptyDir: {} }],
    },
  });
  return { chart: c, jobs };
}

/** A chart with only a new 1-pod cluster that starts from the newest zstd backup. */
function restoreChart(name: string): ReturnType<typeof Testing.chart> {
  const c = Testing.chart();
  credentials(c, name);
  new MySqlReplicationCluster(c, 'Restored', {
    name,
    version: EngineVersion.MARIADB_11_4,
    replicas: 1,
    restoreFrom: { target: target(c, BackupCompression.ZSTD), backup: 'latest' },
  });
  return c;
}

async function load(rt: PodRunner, dataMiB: number): Promise<void> {
  const tables = 4;
  const rows = Math.ceil((dataMiB * MIB) / BYTES_PER_ROW / tables);
  const statements = ['SET SESSION sql_log_bin = 0;', 'CREATE DATABASE bench;', 'USE bench;'];
  for (let t = 1; t <= tables; t++) {
    statements.push(`CREATE TABLE t${t} (id BIGINT PRIMARY KEY, a CHAR(32) NOT NULL, b VARCHAR(200) NOT NULL, c INT NOT NULL) ENGINE=InnoDB;`,
      `INSERT INTO t${t} SELECT seq, MD5(seq * 7 + ${t}), CONCAT(SHA2(seq + ${t}, 256), SHA2(seq * 3 + ${t}, 256), LEFT(SHA2(seq * 5, 256), 40)), ` +
      `(seq * 11) MOD 1000003 FROM seq_1_to_${rows};`);
  }
  await sh(rt, PRIMARY, 'server', SQL, { stdin: statements.join('\n'), timeoutMs: 1_800_000 });
}

/** No dirty pages waiting, the source's data files out of the page cache. */
async function clean(rt: PodRunner): Promise<void> {
  await sh(rt, TARGET_POD, 'main', `sync -f ${MOUNT}`);
  await evictPageCache(rt, SOURCE, 'donor', DATA);
}

/** tar of the replica's data files into a file on the claim; seconds and bytes. */
async function rawBackup(rt: PodRunner): Promise<{ seconds: number; bytes: number }> {
  await clean(rt);
  const sender = await serveOnce(rt, SOURCE, 'donor', PORT, `cd ${DATA} && { tar --warning=none -b 2048 -cf - ${TAR_EXCLUDES} . || true; }`, BIG_BUFFERS);
  let out: string;
  try {
    out = await sh(rt, TARGET_POD, 'main', `${TIMING_FUNCTIONS}
mkdir -p ${MOUNT}/raw
mark start
socat ${BIG_BUFFERS} -u TCP:${SOURCE}.${NAME}:${PORT},connect-timeout=10 STDOUT >${MOUNT}/raw/copy.tar
mark end
value bytes "$(stat -c %s ${MOUNT}/raw/copy.tar)"
rm -rf ${MOUNT}/raw
elapsed start end`);
  } catch (error) {
    await sender.cancel();
    throw error;
  }
  await sender.done;
  const v = benchValues(out);
  return { seconds: need(v, 'start..end'), bytes: need(v, 'bytes') };
}

/** The newest backup of a compression: its artifact's path on the target pod and its size. */
async function newest(rt: PodRunner, compression: string): Promise<{ path: string; bytes: number; name: string }> {
  const out = await sh(rt, TARGET_POD, 'main', `dir=${MOUNT}/${compression}
name=$(cd "$dir" && ls -1d [0-9]*/ | sort | tail -n 1); name=\${name%/}
artifact=$(sed -n 's/^  "artifact": "\\(.*\\)",$/\\1/p' "$dir/$name/manifest.json")
printf '%s\\n%s\\n%s\\n' "$name" "$dir/$name/$artifact" "$(stat -c %s "$dir/$name/$artifact")"`);
  const [name, path, bytes] = out.trim().split('\n');
  return { name, path, bytes: Number(bytes) };
}

/** A raw copy of a file's bytes from the claim into the target pod's volume; seconds. */
async function rawCopy(rt: PodRunner, path: string): Promise<number> {
  await sh(rt, TARGET_POD, 'main', `sync -f ${MOUNT}; dd if=${path} iflag=nocache count=0 status=none`);
  const out = await sh(rt, TARGET_POD, 'main', `${TIMING_FUNCTIONS}
mark start
dd if=${path} of=/scratch/copy bs=1M status=none
mark end
rm -f /scratch/copy
elapsed start end`);
  return need(benchValues(out), 'start..end');
}

async function runBackup(rt: PodRunner, job: string): Promise<number> {
  await clean(rt);
  const started = Date.now();
  const result = await rt.runJob(job);
  const seconds = secondsSince(started);
  saveLog(`backup-${job}-${started}`, result.logs ? JSON.stringify(result.logs, undefined, 1) : '');
  if (!result.succeeded) {
    throw new Error(`backup Job ${job} failed (${result.reason}): ${JSON.stringify(result.logs).slice(-3000)}`);
  }
  return seconds;
}

export async function backupBenchmark(options: BackupOptions = {}): Promise<BenchmarkResult> {
  const runs = options.runs ?? 3;
  const dataMiB = options.dataMiB ?? 256;
  const withRestoreJob = options.restoreJob ?? true;
  const rt = await PodRunner.start({ name: 'bench-backup', restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
  try {
    const { chart: c, jobs } = chart();
    await rt.apply(c);
    await rt.waitForStatefulSetReady(NAME, 1, 300_000);
    await rt.waitForReady(TARGET_POD, 120_000);
    let started = Date.now();
    await load(rt, dataMiB);
    await rt.scale(NAME, 2);
    await rt.waitForStatefulSetReady(NAME, 2, 600_000);
    const dataBytes = Number((await sh(rt, SOURCE, 'agent', `du -sb ${DATA}/bench | cut -f1`)).trim());
    log(`backup: ${(dataBytes / MIB).toFixed(0)} MiB loaded and replicated in ${secondsSince(started).toFixed(1)} s`);

    const raw: number[] = [];
    const payload: number[] = [];
    const backupSeconds = new Map<string, number[]>(COMPRESSIONS.map((c2) => [c2, []]));
    const sizes = new Map<string, number[]>(COMPRESSIONS.map((c2) => [c2, []]));
    for (let run = 0; run < runs; run++) {
      const baseline = await rawBackup(rt);
      raw.push(baseline.seconds);
      payload.push(baseline.bytes);
      for (let i = 0; i < COMPRESSIONS.length; i++) {
        const compression = COMPRESSIONS[(i + run) % COMPRESSIONS.length];
        backupSeconds.get(compression)!.push(await runBackup(rt, jobs.backup[compression]));
        sizes.get(compression)!.push((await newest(rt, compression)).bytes);
      }
      log(`backup run ${run + 1}/${runs}: raw copy ${baseline.seconds.toFixed(2)} s; ` +
        COMPRESSIONS.map((c2) => `${c2} ${backupSeconds.get(c2)![run].toFixed(1)} s, ${(sizes.get(c2)![run] / MIB).toFixed(0)} MiB`).join('; '));
      await sleep(1_000);
    }

    // restores of the newest zstd backup
    const restoreInit: number[] = [];
    const restoreReady: number[] = [];
    const restoreRaw: number[] = [];
    const restoreJob: number[] = [];
    const restoreJobRaw: number[] = [];
    for (let run = 0; run < runs; run++) {
      const artifact = await newest(rt, BackupCompression.ZSTD);
      restoreRaw.push(await rawCopy(rt, artifact.path));
      await sh(rt, TARGET_POD, 'main', `sync -f ${MOUNT}; dd if=${artifact.path} iflag=nocache count=0 status=none`);
      const name = `rs${run + 1}`;
      const appliedAt = Date.now();
      await rt.apply(restoreChart(name));
      let init: number | undefined;
      const pod = `${name}-0`;
      await waitUntil(`${pod} to restore and be ready`, () => {
        const status = rt.status(pod);
        if (init === undefined && status?.containers.find((c2) => c2.name === 'server')?.state === 'running') init = secondsSince(appliedAt);
        return status?.ready ?? false;
      }, 900_000, 50);
      restoreReady.push(secondsSince(appliedAt));
      restoreInit.push(init ?? secondsSince(appliedAt));
      const initLog = rt.logs(pod, 'init');
      saveLog(`backup-restore-from-${name}`, initLog);
      if (!/restored .*tables match its manifest/.test(initLog)) {
        throw new Error(`${pod} is ready but did not restore ${artifact.name}:\n${initLog.slice(-3000)}`);
      }
      if (withRestoreJob) {
        restoreJobRaw.push(await rawCopy(rt, artifact.path));
        await sh(rt, TARGET_POD, 'main', `sync -f ${MOUNT}; dd if=${artifact.path} iflag=nocache count=0 status=none`);
        const jobStarted = Date.now();
        const result = await rt.runJob(jobs.restore[BackupCompression.ZSTD]);
        restoreJob.push(secondsSince(jobStarted));
        saveLog(`backup-restore-job-run${run + 1}`, JSON.stringify(result.logs, undefined, 1));
        if (!result.succeeded) {
          throw new Error(`the restore Job failed (${result.reason}): ${JSON.stringify(result.logs).slice(-3000)}`);
        }
      }
      log(`restore run ${run + 1}/${runs}: raw copy ${restoreRaw[run].toFixed(2)} s; new cluster restored in ${restoreInit[run].toFixed(1)} s, ` +
        `ready in ${restoreReady[run].toFixed(1)} s${withRestoreJob ? `; restore Job ${restoreJob[run].toFixed(1)} s` : ''}`);
    }

    const payloadMiB = Math.min(...payload) / MIB;
    const measurements: Measurement[] = [
      ...COMPRESSIONS.map((compression): Measurement => ({
        id: `backup.${compression}`,
        benchmark: 'backup',
        name: `Physical backup Job, ${compression}`,
        unit: 's',
        runs: backupSeconds.get(compression)!,
        baseline: { name: `tar to the claim, ${payloadMiB.toFixed(0)} MiB`, runs: raw },
        notes: compression === COMPRESSIONS[0]
          ? 'runJob of the BackupSchedule\'s CronJob to completion: stream from the replica\'s donor sidecar, compression into the claim, ' +
            'extract + prepare, table checksums with a throwaway server, manifest, pruning. Baseline: tar of the replica\'s data files through socat into a file on the claim.'
          : `as for ${COMPRESSIONS[0]}, compressed with ${compression}.`,
      })),
      ...COMPRESSIONS.map((compression): Measurement => ({
        id: `backup.size.${compression}`,
        benchmark: 'backup',
        name: `Backup size, ${compression}`,
        unit: 'MiB',
        runs: sizes.get(compression)!.map((b) => b / MIB),
        baseline: { name: 'data files copied (tar payload)', runs: payload.map((b) => b / MIB) },
        ...(compression === COMPRESSIONS[0]
          ? { notes: 'the artifact\'s size on the claim (a mariadb-backup xbstream, compressed as the schedule says) against the bytes of the data files the raw copy carried.' }
          : {}),
      })),
      {
        id: 'backup.restore-from',
        benchmark: 'backup',
        name: 'Restore into a new cluster (restoreFrom), zstd',
        unit: 's',
        runs: restoreInit,
        baseline: { name: 'raw copy of the artifact', runs: restoreRaw },
        notes: 'a new 1-pod cluster with restoreFrom the newest zstd backup: from the apply until the primary\'s init containers are done (fetch with SHA-256 check, ' +
          'extract, prepare, tables checked against the manifest with a throwaway server, install). ' +
          `Ready (server started, readiness probe every 5 s): ${restoreReady.map((s) => s.toFixed(1)).join(', ')} s. Baseline: dd of the artifact from the claim into a pod's volume.`,
      },
      ...(withRestoreJob ? [{
        id: 'backup.restore-job',
        benchmark: 'backup',
        name: 'Restore Job into the running cluster, zstd',
        unit: 's',
        runs: restoreJob,
        baseline: { name: 'raw copy of the artifact', runs: restoreJobRaw },
        notes: 'runJob of the -restore CronJob: fetch and check, prepare, dump the copy from a throwaway server, drop and load the user databases through the primary, ' +
          'check every table against the manifest. Baseline as above.',
      }] : []),
    ];
    const notes = [
      `Backup: ${(dataBytes / MIB).toFixed(0)} MiB of InnoDB data in 4 tables (hex text), backups taken from the replica. ` +
      'BackupSchedule and its scripts are committed; there is no e2e test of them on the pod runner yet, so this benchmark is also their first run on it.',
    ];
    return { measurements, notes };
  } finally {
    await rt.stop();
  }
}
