import * as fs from 'fs';
import * as path from 'path';
import { Chart, Cron, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  BackupCompression, BackupMethod, BackupSchedule, BackupScheduleOptions, BackupTarget, ClusterTopology, EngineVersion,
  MySqlReplicationCluster, MySqlReplicationClusterProps,
} from '../src';
import { Manifest, ofKind, one, synth } from './util';

const SCRIPTS_DIR = path.join(__dirname, '..', 'src', 'scripts');

let claims = 0;
function pvc(chart: Chart) {
  return BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, `BackupClaim${claims++}`, 'backups'));
}

function s3(chart: Chart) {
  return BackupTarget.s3({ bucket: 'db-backups', endpoint: 'http://minio.storage.svc:9000', credentials: kplus.Secret.fromSecretName(chart, 'S3', 's3-credentials') });
}

/** A MariaDB 11.4 cluster `db` of 3 with a schedule `Nightly`; options may replace the target. */
function schedule(options: Partial<BackupScheduleOptions> = {}, clusterProps: MySqlReplicationClusterProps = {}) {
  const chart = Testing.chart();
  const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4, ...clusterProps });
  const backup = db.addBackupSchedule('Nightly', { target: pvc(chart), ...options });
  return { chart, db, backup, manifests: synth(chart) };
}

function cronJob(manifests: Manifest[], name = 'db-nightly'): any {
  return one(manifests, 'CronJob', name);
}

function podSpec(manifests: Manifest[], name = 'db-nightly'): any {
  return cronJob(manifests, name).spec.jobTemplate.spec.template.spec;
}

function containerNames(spec: any): string[][] {
  return [spec.initContainers.map((c: any) => c.name), spec.containers.map((c: any) => c.name)];
}

function env(container: any): Record<string, string> {
  return Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
}

function forSnapshot(manifests: Manifest[]): Manifest[] {
  return manifests.map((m) => (m.kind === 'ConfigMap' && m.metadata.name.endsWith('-scripts')
    ? { ...m, data: Object.fromEntries(Object.keys(m.data).map((k) => [k, `<src/scripts/${k}>`])) }
    : m));
}

describe('BackupSchedule', () => {
  test('defaults (MariaDB): a nightly physical backup to a claim, kept 7 times, and a suspended restore', () => {
    const { manifests } = schedule();
    expect(forSnapshot(ofKind(manifests, 'CronJob').concat(ofKind(manifests, 'ConfigMap', 'db-nightly-scripts')))).toMatchSnapshot();
  });

  describe('the backup CronJob', () => {
    test('runs daily at 01:00 UTC, one run at a time, skipped when it cannot start within 30 minutes, stopped after 6 hours', () => {
      const { manifests, backup } = schedule();
      const spec = cronJob(manifests).spec;
      expect(spec).toMatchObject({
        schedule: '0 1 * * *',
        timeZone: 'Etc/UTC',
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: 1800,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
      });
      expect(spec.suspend).toBeUndefined();
      expect(spec.jobTemplate.spec).toMatchObject({ backoffLimit: 1, activeDeadlineSeconds: 21600 });
      expect(spec.jobTemplate.spec.template.spec.restartPolicy).toEqual('Never');
      expect(backup.schedules).toEqual(['0 1 * * *']);
      expect(backup.method).toEqual(BackupMethod.PHYSICAL);
    });

    test('physical: receive and prepare (tools image), verify (server image), then store', () => {
      const { manifests } = schedule();
      const spec = podSpec(manifests);
      expect(containerNames(spec)).toEqual([['backup', 'verify'], ['store']]);
      expect(spec.initContainers.map((c: any) => [c.image, c.command])).toEqual([
        ['mariadb:11.4', ['bash', '/etc/cdk8s-mysql/scripts/backup-take.sh']],
        ['mariadb:11.4', ['bash', '/etc/cdk8s-mysql/scripts/backup-verify.sh']],
      ]);
      expect(spec.containers[0].command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/backup-store.sh']);
      // only the containers that touch the target mount it
      const mounts = (c: any) => c.volumeMounts.map((m: any) => m.name);
      expect(mounts(spec.initContainers[0])).toContain('backup-target');
      expect(mounts(spec.initContainers[1])).not.toContain('backup-target');
      expect(mounts(spec.containers[0])).toContain('backup-target');
    });

    test('the scripts learn everything from the environment: members, stream port, method, retention', () => {
      const { manifests } = schedule({ keepLast: 10, keepFor: Duration.days(7) }, { replicas: 3 });
      expect(env(podSpec(manifests).containers[0])).toEqual({
        DB_ENGINE: 'mariadb',
        DB_PORT: '3306',
        CLUSTER_NAME: 'db',
        TOPOLOGY: 'replication',
        MEMBERS: 'db-2.db db-1.db',
        WRITE_HOST: 'db-write',
        METHOD: 'physical',
        COMPRESSION: 'zstd',
        SECRETS_DIR: '/etc/cdk8s-mysql/credentials',
        RUN_DIR: '/run/cdk8s-mysql',
        WORK_DIR: '/var/lib/cdk8s-mysql/work',
        TMPDIR: '/tmp',
        STREAM_PORT: '3307',
        KEEP_LAST: '10',
        KEEP_SECONDS: '604800',
        STALE_SECONDS: '21600',
        TARGET_KIND: 'pvc',
        TARGET_DIR: '/var/backups/cdk8s-mysql/db',
      });
    });

    test('runs as the images\' mysql user (uid 999) with a read-only root filesystem, no privileges and no service account token', () => {
      const { manifests } = schedule();
      const spec = podSpec(manifests);
      expect(spec.securityContext).toEqual({
        runAsUser: 999, runAsGroup: 999, runAsNonRoot: true, fsGroup: 999, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of [...spec.initContainers, ...spec.containers]) {
        expect(c.securityContext).toEqual({
          runAsUser: 999, runAsGroup: 999, runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] },
        });
        expect(c.resources).toEqual({ limits: { memory: '1024Mi' }, requests: { cpu: '100m', memory: '256Mi' } });
      }
    });

    test('the root password is a mounted file, and no secret is in the environment or the arguments', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4, credentials: kplus.Secret.fromSecretName(chart, 'C', 'db-secrets') });
      db.addBackupSchedule('Nightly', { target: s3(chart) });
      const spec = podSpec(synth(chart));
      expect(spec.volumes.find((v: any) => v.name === 'credentials')).toEqual({
        name: 'credentials', secret: { secretName: 'db-secrets', defaultMode: 0o440, items: [{ key: 'root-password', path: 'root-password' }] },
      });
      const containers = [...spec.initContainers, ...spec.containers];
      expect(JSON.stringify(containers)).not.toMatch(/valueFrom|secretKeyRef|password=/);
    });

    test('logical: dump (server image), then store; no stream port', () => {
      const { manifests, backup } = schedule({ method: BackupMethod.LOGICAL, compression: BackupCompression.GZIP });
      const spec = podSpec(manifests);
      expect(backup.method).toEqual(BackupMethod.LOGICAL);
      expect(containerNames(spec)).toEqual([['backup'], ['store']]);
      expect(env(spec.containers[0])).toMatchObject({ METHOD: 'logical', COMPRESSION: 'gzip' });
      expect(env(spec.containers[0]).STREAM_PORT).toBeUndefined();
    });

    test('S3: the rclone binary is copied out of its image first', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4 });
      db.addBackupSchedule('Nightly', { target: s3(chart) });
      const spec = podSpec(synth(chart));
      expect(containerNames(spec)).toEqual([['rclone', 'backup', 'verify'], ['store']]);
      expect(env(spec.containers[0])).toMatchObject({ TARGET_KIND: 's3', S3_BUCKET: 'db-backups', S3_PREFIX: 'db' });
    });

    test('a cluster with only a primary is backed up from it', () => {
      const { manifests } = schedule({}, { replicas: 1 });
      expect(env(podSpec(manifests).containers[0]).MEMBERS).toEqual('db-0.db');
    });

    test('deadlines, retries, history and resources are options', () => {
      const { manifests } = schedule({
        startingDeadline: Duration.minutes(5),
        activeDeadline: Duration.hours(2),
        backoffLimit: 0,
        jobsHistoryLimit: 1,
        resources: {
          cpu: { request: kplus.Cpu.millis(500), limit: kplus.Cpu.units(2) },
          memory: { request: Size.gibibytes(1), limit: Size.gibibytes(2) },
        },
      });
      const spec = cronJob(manifests).spec;
      expect(spec).toMatchObject({ startingDeadlineSeconds: 300, successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 });
      expect(spec.jobTemplate.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 7200 });
      expect(env(spec.jobTemplate.spec.template.spec.containers[0]).STALE_SECONDS).toEqual('7200');
      expect(spec.jobTemplate.spec.template.spec.containers[0].resources).toEqual({ limits: { cpu: '2', memory: '2048Mi' }, requests: { cpu: '500m', memory: '1024Mi' } });
    });
  });

  describe('times and schedules', () => {
    test('times that share their minute share one CronJob; other minutes get their own, named <name>-2, …', () => {
      const { manifests, backup } = schedule({ times: '01:01, 13:01,02:30', timeZone: 'Asia/Shanghai' });
      expect(backup.schedules).toEqual(['1 1,13 * * *', '30 2 * * *']);
      expect(cronJob(manifests, 'db-nightly').spec).toMatchObject({ schedule: '1 1,13 * * *', timeZone: 'Asia/Shanghai' });
      expect(cronJob(manifests, 'db-nightly-2').spec).toMatchObject({ schedule: '30 2 * * *', timeZone: 'Asia/Shanghai' });
      expect(backup.cronJobs).toHaveLength(2);
    });

    test('cron schedules: one CronJob each', () => {
      const { backup, manifests } = schedule({ schedules: [Cron.schedule({ minute: '15', hour: '*/6' }), Cron.weekly()] });
      expect(backup.schedules).toEqual(['15 */6 * * *', '0 0 * * 0']);
      expect(ofKind(manifests, 'CronJob').map((c) => c.metadata.name)).toEqual(['db-nightly', 'db-nightly-2', 'db-nightly-restore']);
    });

    test('accepts month and weekday names, ranges, lists and steps', () => {
      const { backup } = schedule({ schedules: [Cron.schedule({ minute: '0,30', hour: '1-5/2', day: '?', month: 'JAN-MAR', weekDay: 'MON-FRI' })] });
      expect(backup.schedules).toEqual(['0,30 1-5/2 ? JAN-MAR MON-FRI']);
    });
  });

  describe('the restore CronJob', () => {
    test('is suspended, so it runs only when a Job is created from it; fetches and checks, then loads into the write Service', () => {
      const { manifests, backup } = schedule();
      const job = cronJob(manifests, 'db-nightly-restore');
      expect(job.spec.suspend).toBe(true);
      expect(backup.restoreCronJob).toBeDefined();
      const spec = job.spec.jobTemplate.spec.template.spec;
      expect(containerNames(spec)).toEqual([['fetch'], ['restore']]);
      expect(spec.initContainers[0].command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/restore-fetch.sh']);
      expect(spec.containers[0].command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/restore-load.sh']);
      expect(env(spec.containers[0])).toMatchObject({ BACKUP: 'latest', WRITE_HOST: 'db-write' });
      expect(env(spec.initContainers[0])).toMatchObject({ BACKUP: 'latest', METHOD: 'physical' });
    });
  });

  describe('the restore drill', () => {
    test('a CronJob that fetches the latest backup and restores it into a throwaway server, Sundays at 05:00 by default', () => {
      const { manifests, backup } = schedule({ restoreDrill: {} });
      const job = cronJob(manifests, 'db-nightly-drill');
      expect(backup.drillCronJob).toBeDefined();
      expect(job.spec).toMatchObject({ schedule: '0 5 * * 0', concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' });
      expect(job.spec.suspend).toBeUndefined();
      const spec = job.spec.jobTemplate.spec.template.spec;
      expect(containerNames(spec)).toEqual([['fetch'], ['drill']]);
      expect(spec.containers[0].command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/restore-drill.sh']);
      expect(env(spec.containers[0]).BACKUP).toEqual('latest');
    });

    test('takes times and a named backup', () => {
      const { manifests } = schedule({ restoreDrill: { times: '04:45', backup: '20250101T010100Z-physical' } });
      const job = cronJob(manifests, 'db-nightly-drill');
      expect(job.spec.schedule).toEqual('45 4 * * *');
      expect(env(job.spec.jobTemplate.spec.template.spec.containers[0]).BACKUP).toEqual('20250101T010100Z-physical');
    });

    test('no drill unless asked for', () => {
      const { manifests, backup } = schedule();
      expect(ofKind(manifests, 'CronJob', 'db-nightly-drill')).toEqual([]);
      expect(backup.drillCronJob).toBeUndefined();
    });
  });

  describe('MySQL', () => {
    test('logical by default, with the mysql image', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db' });
      const backup = db.addBackupSchedule('Nightly', { target: pvc(chart) });
      const manifests = synth(chart);
      expect(backup.method).toEqual(BackupMethod.LOGICAL);
      expect(podSpec(manifests).initContainers.map((c: any) => c.image)).toEqual(['mysql:8.4']);
      // no sidecar is added for logical backups
      expect(one(manifests, 'StatefulSet').spec.template.spec.containers.map((c: any) => c.name)).toEqual(['server', 'agent']);
    });

    test('physical adds a percona-xtrabackup sidecar of the server\'s series (as uid 999) serving port 3307, and uses its image to receive and prepare', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MYSQL_8_0 });
      db.addBackupSchedule('Nightly', { target: pvc(chart), method: BackupMethod.PHYSICAL });
      db.addBackupSchedule('Hourly', { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Other', 'other')), method: BackupMethod.PHYSICAL });
      const manifests = synth(chart);
      const pod = one(manifests, 'StatefulSet').spec.template.spec;
      const sidecars = pod.containers.filter((c: any) => c.name === 'backup');
      expect(sidecars).toHaveLength(1);
      expect(sidecars[0]).toMatchObject({
        image: 'percona/percona-xtrabackup:8.0',
        command: ['bash', '/etc/cdk8s-mysql/scripts/backup-mysql-donor.sh'],
        ports: [{ name: 'seed', containerPort: 3307 }],
        securityContext: { runAsUser: 999, runAsGroup: 999, readOnlyRootFilesystem: true },
      });
      expect(env(sidecars[0])).toMatchObject({ SEED_PORT: '3307', DB_ENGINE: 'mysql' });
      expect(Object.keys(one(manifests, 'ConfigMap', 'db-scripts').data)).toEqual(expect.arrayContaining(['backup-mysql-donor.sh', 'backup-mysql-send.sh']));
      expect(one(manifests, 'Service', 'db').spec.ports.map((p: any) => p.port)).toEqual([3306, 3307]);
      expect(podSpec(manifests).initContainers.map((c: any) => c.image)).toEqual(['percona/percona-xtrabackup:8.0', 'mysql:8.0']);
      expect(podSpec(manifests, 'db-nightly-restore').initContainers.map((c: any) => c.image)).toEqual(['percona/percona-xtrabackup:8.0']);
    });

    test('the sidecar changes the pods\' config hash, so they roll', () => {
      const hash = (physical: boolean) => {
        const chart = Testing.chart();
        const db = new MySqlReplicationCluster(chart, 'db', { name: 'db' });
        db.addBackupSchedule('Nightly', { target: pvc(chart), method: physical ? BackupMethod.PHYSICAL : BackupMethod.LOGICAL });
        return one(synth(chart), 'StatefulSet').spec.template.metadata.annotations['cdk8s-mysql/config-hash'];
      };
      expect(hash(true)).not.toEqual(hash(false));
    });
  });

  test('the scripts ConfigMap carries src/scripts byte for byte', () => {
    const { manifests } = schedule();
    const data = one(manifests, 'ConfigMap', 'db-nightly-scripts').data;
    expect(Object.keys(data).sort()).toEqual(['backup-lib.sh', 'backup-store.sh', 'backup-take.sh', 'backup-verify.sh', 'lib.sh', 'restore-drill.sh', 'restore-fetch.sh', 'restore-load.sh']);
    for (const [file, text] of Object.entries(data)) {
      expect(text).toEqual(fs.readFileSync(path.join(SCRIPTS_DIR, file), 'utf8'));
    }
  });

  test('the name is an option; new BackupSchedule(…) works as well as addBackupSchedule', () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_10_11 });
    const backup = new BackupSchedule(chart, 'Backup', { cluster: db, target: pvc(chart), name: 'orders-backup' });
    const manifests = synth(chart);
    expect(backup.name).toEqual('orders-backup');
    expect(ofKind(manifests, 'CronJob').map((c) => c.metadata.name)).toEqual(['orders-backup', 'orders-backup-restore']);
    expect(db.topology).toEqual(ClusterTopology.REPLICATION);
  });

  describe('restoreFrom (a new cluster from a backup)', () => {
    test('the primary\'s first start fetches and checks the backup in a restore init container, then init restores it', () => {
      const chart = Testing.chart();
      new MySqlReplicationCluster(chart, 'db', { name: 'db2', version: EngineVersion.MARIADB_11_4, restoreFrom: { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'C', 'backups'), { path: 'db' }) } });
      const manifests = synth(chart);
      const pod = one(manifests, 'StatefulSet').spec.template.spec;
      expect(pod.initContainers.map((c: any) => c.name)).toEqual(['restore', 'init']);
      const [restore, init] = pod.initContainers;
      expect(restore).toMatchObject({ image: 'mariadb:11.4', command: ['bash', '/etc/cdk8s-mysql/scripts/restore-fetch.sh'] });
      expect(env(restore)).toMatchObject({
        BACKUP: 'latest',
        RESTORE_BACKUP: 'latest',
        RESTORE_DIR: '/var/lib/mysql/restore.tmp',
        DATA_ROOT: '/var/lib/mysql',
        TARGET_KIND: 'pvc',
        TARGET_DIR: '/var/backups/cdk8s-mysql/db',
      });
      expect(env(init)).toMatchObject({ RESTORE_BACKUP: 'latest', RESTORE_DIR: '/var/lib/mysql/restore.tmp' });
      expect(restore.volumeMounts.map((m: any) => m.name)).toEqual(['data', 'run', 'tmp', 'scripts', 'backup-target']);
      expect(pod.volumes).toContainEqual({ name: 'backup-target', persistentVolumeClaim: { claimName: 'backups' } });
      expect(Object.keys(one(manifests, 'ConfigMap', 'db2-scripts').data)).toEqual(expect.arrayContaining(['backup-lib.sh', 'restore-fetch.sh']));
      // the other containers never see the backup
      expect(pod.containers.flatMap((c: any) => c.volumeMounts.map((m: any) => m.name))).not.toContain('backup-target');
    });

    test('MySQL from S3 with a named backup: rclone is copied first, and the xtrabackup image fetches (it prepares physical copies)', () => {
      const chart = Testing.chart();
      new MySqlReplicationCluster(chart, 'db', { name: 'db', restoreFrom: { target: s3(chart), backup: '20250101T010100Z-physical' } });
      const pod = one(synth(chart), 'StatefulSet').spec.template.spec;
      expect(pod.initContainers.map((c: any) => [c.name, c.image])).toEqual([
        ['rclone', 'rclone/rclone:1.69'], ['restore', 'percona/percona-xtrabackup:8.4'], ['init', 'mysql:8.4'],
      ]);
      expect(env(pod.initContainers[1])).toMatchObject({ BACKUP: '20250101T010100Z-physical', TARGET_KIND: 's3', S3_PREFIX: 'db' });
    });
  });

  // the guardrails of the options: test/guardrails.test.ts
  describe('bad input', () => {
    test('fails for a physical method on a cluster that cannot serve physical copies', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4 });
      const cannot = Object.assign(Object.create(db), {
        physicalBackupStream: () => {
          throw new Error('cluster db cannot serve physical copies: use method: BackupMethod.LOGICAL');
        },
      });
      expect(() => new BackupSchedule(chart, 'Backup', { cluster: cannot, target: pvc(chart), method: BackupMethod.PHYSICAL })).toThrow(
        'cluster db cannot serve physical copies: use method: BackupMethod.LOGICAL',
      );
    });
  });
});
