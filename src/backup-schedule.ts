import { ApiObject, Chart, Cron, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { BACKUP_SCRIPTS, BoundBackupTarget, checkBackupName } from './_backup';
import { CONTAINER_SECURITY, POD_SECURITY, recommendedLabels } from './_common';
import * as guard from './_guardrails';
import { backupAlerts, checkLabels, longestCronGap, prometheusRule } from './_metrics';
import { readScripts } from './_scripts';
import { TLS_DIR } from './_tls';
import { BackupTarget } from './backup-target';
import { IDatabaseCluster } from './database-cluster';

/**
 * How a backup copies the data.
 */
export enum BackupMethod {
  /**
   * A physical copy of the data files: MariaDB's `mariadb-backup` (or Percona XtraBackup for
   * MySQL) streamed from a member's sidecar. Fast to take and to restore, for the same release
   * series only.
   */
  PHYSICAL = 'physical',
  /**
   * An SQL dump (`mariadb-dump` / `mysqldump`) of every user database with routines, triggers and
   * events, plus the user accounts, taken in one consistent snapshot. Portable and small, slower
   * to restore.
   */
  LOGICAL = 'logical',
}

/**
 * How the backup artifact is compressed.
 */
export enum BackupCompression {
  /** zstd (`.zst`): fast, good ratio; every supported image has it. */
  ZSTD = 'zstd',
  /** gzip (`.gz`): slower, widely readable. */
  GZIP = 'gzip',
  /** Not compressed. */
  NONE = 'none',
}

/**
 * A restore drill: a CronJob that restores a backup into a throwaway server inside its own pod
 * and compares every table's row count and `CHECKSUM TABLE` with the backup's manifest.
 */
export interface RestoreDrillOptions {
  /**
   * Times of day of the drill, comma-separated `HH:MM` in `timeZone`, e.g. `'05:30'`.
   * Give either `times` or `schedules`.
   *
   * @default - Sundays at 05:00 when `schedules` is not set either
   */
  readonly times?: string;

  /**
   * Cron schedules of the drill, e.g. `[Cron.weekly()]`.
   *
   * @default - Sundays at 05:00 when `times` is not set either
   */
  readonly schedules?: Cron[];

  /**
   * The backup to restore: the name of its directory, or `latest` for the newest complete
   * backup of this schedule's method.
   *
   * @default 'latest'
   */
  readonly backup?: string;
}

/**
 * Options of a `BackupSchedule`, for `cluster.addBackupSchedule(id, options)`.
 */
export interface BackupScheduleOptions {
  /**
   * Where the backups are kept: `BackupTarget.persistentVolumeClaim(…)` or `BackupTarget.s3(…)`.
   */
  readonly target: BackupTarget;

  /**
   * How the data is copied. A physical backup of MySQL adds a percona-xtrabackup sidecar to the
   * cluster's pods (the `mysql` image has no physical backup tool).
   *
   * @default - BackupMethod.PHYSICAL for MariaDB, BackupMethod.LOGICAL for MySQL
   */
  readonly method?: BackupMethod;

  /**
   * Times of day, comma-separated `HH:MM` (24 h) in `timeZone`, e.g. `'01:01,13:01'`. Times that
   * share their minute share one CronJob (`1 1,13 * * *`); each other minute gets its own.
   * Give either `times` or `schedules`; runs must be at least 5 minutes apart.
   *
   * @default - daily at 01:00 when `schedules` is not set either
   */
  readonly times?: string;

  /**
   * Cron schedules, one CronJob each, e.g. `[Cron.schedule({ minute: '15', hour: '*\/6' })]`.
   * Give either `times` or `schedules`; runs must be at least 5 minutes apart, and each schedule
   * must run on some date.
   *
   * @default - daily at 01:00 when `times` is not set either
   */
  readonly schedules?: Cron[];

  /**
   * The time zone of `times` and `schedules`, an IANA name such as `Europe/Berlin`
   * (CronJob `spec.timeZone`).
   *
   * @default 'Etc/UTC'
   */
  readonly timeZone?: string;

  /**
   * Keep at least this many of the newest complete backups (of this schedule's method). A
   * backup is kept when `keepLast` or `keepFor` keeps it; the newest complete backup is never
   * deleted; pruning runs only after a successful backup.
   *
   * @default - 7 when `keepFor` is not set, else none
   */
  readonly keepLast?: number;

  /**
   * Keep every complete backup younger than this (by the start time in its name), e.g.
   * `Duration.days(7)`. Without `keepLast`, it must be longer than the time between two
   * backups, so that more than the newest one is kept.
   *
   * @default - no age rule
   */
  readonly keepFor?: Duration;

  /**
   * Compression of the artifact.
   *
   * @default BackupCompression.ZSTD
   */
  readonly compression?: BackupCompression;

  /**
   * The name of the CronJob (and the prefix of the other objects' names: `<name>-restore`,
   * `<name>-drill`, `<name>-scripts`). A DNS label of at most 44 characters.
   *
   * @default - `<cluster name>-<id in kebab case>`, e.g. `orders-nightly`
   */
  readonly name?: string;

  /**
   * CPU and memory of each container of the Jobs.
   *
   * @default - requests 100m CPU and 256 MiB; limit 1 GiB memory
   */
  readonly resources?: kplus.ContainerResources;

  /**
   * A run that could not start within this time after its scheduled time is skipped
   * (`startingDeadlineSeconds`).
   *
   * @default Duration.minutes(30)
   */
  readonly startingDeadline?: Duration;

  /**
   * The longest a run may take before Kubernetes stops it (`activeDeadlineSeconds`). Leftovers of
   * runs older than this are removed by the next successful run.
   *
   * @default Duration.hours(6)
   */
  readonly activeDeadline?: Duration;

  /**
   * How many times a failed run is retried with a new pod (`backoffLimit`).
   *
   * @default 1
   */
  readonly backoffLimit?: number;

  /**
   * How many finished Jobs Kubernetes keeps, each of succeeded and failed ones.
   *
   * @default 3
   */
  readonly jobsHistoryLimit?: number;

  /**
   * Also synthesize a restore drill CronJob.
   *
   * @default - no drill
   */
  readonly restoreDrill?: RestoreDrillOptions;

  /**
   * Also synthesize a Prometheus Operator PrometheusRule `<name>-alerts` that fires when the
   * last successful backup is older than the schedule allows: the longest gap between two
   * scheduled runs plus `startingDeadline` and `activeDeadline` (or when no run succeeded that
   * long after the CronJob was created). It reads `kube_cronjob_status_last_successful_time` and
   * `kube_cronjob_created` of kube-state-metrics, which must run in the cluster and be scraped.
   *
   * @default false
   */
  readonly alertRules?: boolean;

  /**
   * Labels of the PrometheusRule, for the rule selector of your Prometheus (e.g.
   * `{ release: 'kube-prometheus-stack' }`).
   *
   * @default - none
   */
  readonly monitoringLabels?: { [key: string]: string };
}

/**
 * Properties of a `BackupSchedule`.
 */
export interface BackupScheduleProps extends BackupScheduleOptions {
  /** The cluster to back up. */
  readonly cluster: IDatabaseCluster;
}

/** uid and gid of the `mysql` user of the official images. */
const SCRIPTS_DIR = '/etc/cdk8s-mysql/scripts';
const CREDENTIALS_DIR = '/etc/cdk8s-mysql/credentials';
const WORK_DIR = '/var/lib/cdk8s-mysql/work';
const RUN_DIR = '/run/cdk8s-mysql';
const TMP_DIR = '/tmp';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_NAME = 44;


/**
 * Scheduled backups of a MySQL or MariaDB cluster that prove themselves restorable, with
 * retention and a one-step restore.
 *
 * Synthesizes:
 * - a CronJob `<name>` per schedule (`concurrencyPolicy: Forbid`, deadlines, history limits, as
 *   uid 999 with a read-only root filesystem). Each run picks a ready source member, takes the
 *   backup, checks it, writes the artifact, its checksum and a manifest (engine, version, GTID
 *   position, size, start and end time, row count and `CHECKSUM TABLE` of every table) under a
 *   temporary name, moves it into place, then prunes old backups:
 *   - physical: receives the member sidecar's stream into the target, extracts and prepares it
 *     from what was stored, and computes the manifest's table checksums on the prepared copy
 *     with a throwaway server (so they are exactly the backup's);
 *   - logical: pauses the source (replica: its SQL thread; Galera node: desynchronized and
 *     read-locked; a primary without replicas: read-locked), takes the table checksums and the
 *     dump of the same frozen data, then resumes it;
 * - a suspended CronJob `<name>-restore` that, run on demand (`kubectl create job --from=cronjob/<name>-restore …`),
 *   loads the newest (or a named) backup into the cluster's writable member;
 * - with `restoreDrill`, a CronJob `<name>-drill` that restores a backup into a throwaway server
 *   in its own pod and fails unless every table matches the manifest;
 * - a ConfigMap `<name>-scripts`.
 */
export class BackupSchedule extends Construct {
  /** The name of the backup CronJob, the prefix of the other objects' names. */
  public readonly name: string;
  /** How the data is copied. */
  public readonly method: BackupMethod;
  /** The cron expressions, one per backup CronJob. */
  public readonly schedules: string[];
  /** The backup CronJobs, one per schedule. */
  public readonly cronJobs: k8s.KubeCronJob[];
  /** The suspended CronJob that restores a backup into the cluster when run. */
  public readonly restoreCronJob: k8s.KubeCronJob;
  /** The restore drill CronJob, if any. */
  public readonly drillCronJob?: k8s.KubeCronJob;
  /** With `alertRules`: the PrometheusRule (an ApiObject). */
  public readonly alertRules?: ApiObject;
  /** The ConfigMap with the scripts of the Jobs. */
  public readonly scriptsConfigMap: kplus.ConfigMap;

  public constructor(scope: Construct, id: string, props: BackupScheduleProps) {
    super(scope, id);
    const cluster = props.cluster;
    if (!cluster) {
      throw new Error('BackupSchedule needs a cluster: use cluster.addBackupSchedule(id, options), or pass cluster');
    }
    if (!props.target) {
      throw new Error(
        `BackupSchedule '${id}' of cluster '${cluster.name}' has no target: pass target: BackupTarget.persistentVolumeClaim(claim) or BackupTarget.s3({ bucket, credentials })`,
      );
    }
    if (!(props.target instanceof BackupTarget)) {
      throw new Error(`BackupSchedule '${id}' target is not a BackupTarget (got ${JSON.stringify(props.target)}): make it with BackupTarget.persistentVolumeClaim(…) or BackupTarget.s3(…)`);
    }

    const name = props.name ?? `${cluster.name}-${kebab(id)}`;
    if (!DNS_LABEL.test(name) || name.length > MAX_NAME) {
      throw new Error(
        `BackupSchedule name '${name}' is not usable: it must be a DNS label (lowercase letters, digits, '-') of at most ${MAX_NAME} characters ` +
        `(its CronJobs add '-restore' and Kubernetes adds 11): ${props.name === undefined ? 'set name' : 'choose another name'}`,
      );
    }
    this.name = name;

    const version = cluster.version;
    const method = props.method ?? (version.isMariaDb ? BackupMethod.PHYSICAL : BackupMethod.LOGICAL);
    this.method = method;
    const compression = props.compression ?? BackupCompression.ZSTD;

    const timeZone = props.timeZone ?? 'Etc/UTC';
    guard.checkTimeZone('timeZone', timeZone);
    this.schedules = cronExpressions('', props.times, props.schedules, '0 1 * * *');

    const keepFor = props.keepFor;
    if (keepFor !== undefined && keepFor.toSeconds() <= 0) {
      throw new Error(`keepFor must be longer than 0, got ${keepFor.toSeconds()} s: keep backups for e.g. Duration.days(7), or leave it unset to keep by count only`);
    }
    const keepLast = props.keepLast ?? (keepFor === undefined ? 7 : undefined);
    if (keepLast !== undefined && (!Number.isInteger(keepLast) || keepLast < 1)) {
      throw new Error(`keepLast must be a whole number of at least 1, got ${keepLast}: the newest backup is always kept; e.g. keepLast: 7`);
    }
    const startingDeadline = seconds('startingDeadline', props.startingDeadline ?? Duration.minutes(30), 10);
    const activeDeadline = seconds('activeDeadline', props.activeDeadline ?? Duration.hours(6), 60);
    const backoffLimit = props.backoffLimit ?? 1;
    if (!Number.isInteger(backoffLimit) || backoffLimit < 0) {
      throw new Error(`backoffLimit must be a whole number of at least 0, got ${backoffLimit}: e.g. 1 retries a failed run once`);
    }
    const historyLimit = props.jobsHistoryLimit ?? 3;
    if (!Number.isInteger(historyLimit) || historyLimit < 0) {
      throw new Error(`jobsHistoryLimit must be a whole number of at least 0, got ${historyLimit}: e.g. 3`);
    }
    // guardrails: runs that never come or come too often, retention that keeps one backup, resources
    const given = props.times !== undefined ? `times '${props.times}'`
      : props.schedules !== undefined ? `schedules '${this.schedules.join('; ')}'` : `the default schedule '${this.schedules[0]}'`;
    guard.checkBackupCadence(given, guard.shortestGapMinutes('', this.schedules), keepFor, props.keepLast !== undefined);
    guard.checkResources('resources', props.resources);

    // physical needs the cluster's stream (MySQL: turns on its xtrabackup sidecar)
    let toolsImage = cluster.image;
    let streamPort: number | undefined;
    if (method === BackupMethod.PHYSICAL) {
      const stream = cluster.physicalBackupStream();
      toolsImage = stream.toolsImage;
      streamPort = stream.port;
    }

    const target = props.target._bind(cluster.name);
    checkNoTwin(this, cluster, target, method);

    const labels = recommendedLabels(version.engine, cluster.name, 'backup');
    const scripts = readScripts(BACKUP_SCRIPTS);
    this.scriptsConfigMap = new kplus.ConfigMap(this, 'Scripts', { metadata: { name: `${name}-scripts`, labels }, data: scripts });

    const env: Record<string, string> = {
      DB_ENGINE: version.engine,
      DB_PORT: `${cluster.port}`,
      CLUSTER_NAME: cluster.name,
      TOPOLOGY: cluster.topology,
      MEMBERS: cluster.backupMembers.join(' '),
      WRITE_HOST: cluster.writeHost,
      METHOD: method,
      COMPRESSION: compression,
      SECRETS_DIR: CREDENTIALS_DIR,
      RUN_DIR,
      WORK_DIR,
      TMPDIR: TMP_DIR,
      ...(streamPort !== undefined ? { STREAM_PORT: `${streamPort}` } : {}),
      ...(keepLast !== undefined ? { KEEP_LAST: `${keepLast}` } : {}),
      ...(keepFor !== undefined ? { KEEP_SECONDS: `${Math.floor(keepFor.toSeconds())}` } : {}),
      STALE_SECONDS: `${activeDeadline}`,
      // TLS: connections to the members use TLS, verified against the cluster's CA
      ...(cluster.tlsSecretName ? { TLS_DIR } : {}),
      ...target.env,
    };
    const resources = kubeResources(props.resources ?? {
      cpu: { request: kplus.Cpu.millis(100) },
      memory: { request: Size.mebibytes(256), limit: Size.gibibytes(1) },
    });
    const jobs = new JobFactory({
      labels,
      env,
      target,
      resources,
      scriptsConfigMap: this.scriptsConfigMap.name,
      credentials: cluster.credentials.name,
      tlsSecretName: cluster.tlsSecretName,
      timeZone,
      startingDeadline,
      activeDeadline,
      backoffLimit,
      historyLimit,
    });

    // the backup: take (tools image) → verify (physical, server image) → store (server image)
    const take = jobs.container('backup', method === BackupMethod.PHYSICAL ? toolsImage : cluster.image, 'backup-take.sh');
    const verify = method === BackupMethod.PHYSICAL ? [jobs.container('verify', cluster.image, 'backup-verify.sh', false)] : [];
    const store = jobs.container('store', cluster.image, 'backup-store.sh');
    this.cronJobs = this.schedules.map((schedule, i) => jobs.cronJob(this, i === 0 ? 'Resource' : `Resource${i + 1}`,
      i === 0 ? name : `${name}-${i + 1}`, schedule, [take, ...verify], store, {}));
    this.node.defaultChild = this.cronJobs[0];

    // the restore: fetch (tools image) → load into the cluster (server image); run on demand only
    const fetch = jobs.container('fetch', toolsImage, 'restore-fetch.sh');
    const load = jobs.container('restore', cluster.image, 'restore-load.sh', false);
    this.restoreCronJob = jobs.cronJob(this, 'Restore', `${name}-restore`, '0 0 1 1 *', [fetch], load, { BACKUP: 'latest' }, true);

    if (props.restoreDrill) {
      const drill = props.restoreDrill;
      const drillSchedules = cronExpressions('restoreDrill.', drill.times, drill.schedules, '0 5 * * 0');
      if (drillSchedules.length > 1) {
        throw new Error(`restoreDrill takes one schedule, got ${drillSchedules.length} (${drillSchedules.join('; ')}): give times that share their minute, or one Cron`);
      }
      guard.shortestGapMinutes('restoreDrill.', drillSchedules);
      const backup = drill.backup ?? 'latest';
      checkBackupName('restoreDrill.backup', backup);
      const run = jobs.container('drill', cluster.image, 'restore-drill.sh', false);
      this.drillCronJob = jobs.cronJob(this, 'Drill', `${name}-drill`, drillSchedules[0], [fetch], run, { BACKUP: backup });
    }

    // alerts on the CronJobs' last success (kube-state-metrics)
    const monitoringLabels = checkLabels('monitoringLabels', props.monitoringLabels ?? {});
    if (props.alertRules) {
      const allowed = longestCronGap(this.schedules) + startingDeadline + activeDeadline;
      this.alertRules = prometheusRule(this, 'AlertRules', `${name}-alerts`, { ...labels, ...monitoringLabels },
        backupAlerts(name, Chart.of(this).namespace, this.cronJobs.map((c) => c.name), allowed));
    } else if (Object.keys(monitoringLabels).length > 0) {
      throw new Error('monitoringLabels label the PrometheusRule of alertRules, which is not synthesized: set alertRules: true, or remove monitoringLabels');
    }
  }
}

interface JobFactoryProps {
  readonly labels: Record<string, string>;
  readonly env: Record<string, string>;
  readonly target: BoundBackupTarget;
  readonly resources: k8s.ResourceRequirements;
  readonly scriptsConfigMap: string;
  readonly credentials: string;
  readonly tlsSecretName?: string;
  readonly timeZone: string;
  readonly startingDeadline: number;
  readonly activeDeadline: number;
  readonly backoffLimit: number;
  readonly historyLimit: number;
}

/** Builds the containers and CronJobs of one schedule, all with the same volumes and security. */
class JobFactory {
  constructor(private readonly props: JobFactoryProps) {}

  /** A container that runs one script; `target` false for those that never touch the target. */
  public container(name: string, image: string, script: string, target = true): k8s.Container {
    const mounts: k8s.VolumeMount[] = [
      { name: 'scripts', mountPath: SCRIPTS_DIR, readOnly: true },
      { name: 'credentials', mountPath: CREDENTIALS_DIR, readOnly: true },
      { name: 'work', mountPath: WORK_DIR },
      { name: 'run', mountPath: RUN_DIR },
      { name: 'tmp', mountPath: TMP_DIR },
      ...(this.props.tlsSecretName ? [{ name: 'tls-ca', mountPath: TLS_DIR, readOnly: true }] : []),
      ...(target ? this.props.target.mounts : []),
    ];
    return {
      name,
      image,
      imagePullPolicy: 'IfNotPresent',
      command: ['bash', `${SCRIPTS_DIR}/${script}`],
      env: Object.entries(this.props.env).map(([key, value]) => ({ name: key, value })),
      securityContext: CONTAINER_SECURITY,
      resources: this.props.resources,
      volumeMounts: mounts,
    };
  }

  public cronJob(scope: Construct, id: string, name: string, schedule: string, steps: k8s.Container[], main: k8s.Container,
    extraEnv: Record<string, string>, suspend = false): k8s.KubeCronJob {
    const p = this.props;
    const withEnv = (c: k8s.Container): k8s.Container => ({
      ...c,
      env: [...(c.env ?? []), ...Object.entries(extraEnv).map(([key, value]) => ({ name: key, value }))],
    });
    const volumes: k8s.Volume[] = [
      { name: 'scripts', configMap: { name: p.scriptsConfigMap } },
      { name: 'credentials', secret: { secretName: p.credentials, defaultMode: 0o440, items: [{ key: 'root-password', path: 'root-password' }] } },
      { name: 'work', emptyDir: {} },
      { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('16Mi') } },
      { name: 'tmp', emptyDir: {} },
      ...(p.tlsSecretName ? [{ name: 'tls-ca', secret: { secretName: p.tlsSecretName, defaultMode: 0o444, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] : []),
      ...p.target.volumes,
    ];
    return new k8s.KubeCronJob(scope, id, {
      metadata: { name, labels: p.labels },
      spec: {
        schedule,
        timeZone: p.timeZone,
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: p.startingDeadline,
        successfulJobsHistoryLimit: p.historyLimit,
        failedJobsHistoryLimit: p.historyLimit,
        ...(suspend ? { suspend: true } : {}),
        jobTemplate: {
          metadata: { labels: p.labels },
          spec: {
            backoffLimit: p.backoffLimit,
            activeDeadlineSeconds: p.activeDeadline,
            template: {
              metadata: { labels: p.labels },
              spec: {
                restartPolicy: 'Never',
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                securityContext: POD_SECURITY,
                initContainers: [...p.target.initContainers(CONTAINER_SECURITY, p.resources), ...steps.map(withEnv)],
                containers: [withEnv(main)],
                volumes,
              },
            },
          },
        },
      },
    });
  }
}

/**
 * The cron expressions of `times` or `schedules` (`prefix` names the props in messages), or
 * `fallback` when neither is given.
 */
function cronExpressions(prefix: string, times: string | undefined, schedules: Cron[] | undefined, fallback: string): string[] {
  if (times !== undefined && schedules !== undefined) {
    throw new Error(`${prefix}times and ${prefix}schedules are both set: give one of them`);
  }
  if (schedules !== undefined) {
    if (schedules.length === 0) {
      throw new Error(`${prefix}schedules is empty: give at least one Cron, e.g. [Cron.daily()], or leave it unset`);
    }
    const expressions = schedules.map((cron, i) => {
      const expression = cron?.expressionString;
      checkCron(`${prefix}schedules[${i}]`, expression);
      return expression;
    });
    const duplicate = expressions.find((e, i) => expressions.indexOf(e) !== i);
    if (duplicate !== undefined) {
      throw new Error(`${prefix}schedules has '${duplicate}' twice: give each schedule once`);
    }
    return expressions;
  }
  if (times === undefined) {
    return [fallback];
  }
  const list = times.split(',').map((t) => t.trim());
  const byMinute = new Map<number, number[]>();
  for (const time of list) {
    const match = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(time);
    if (!match) {
      throw new Error(`${prefix}times '${times}' has '${time}', which is not a time of day: give comma-separated HH:MM (00:00 to 23:59), e.g. '01:01,13:01'`);
    }
    const [hour, minute] = [Number(match[1]), Number(match[2])];
    const hours = byMinute.get(minute) ?? [];
    if (hours.includes(hour)) {
      throw new Error(`${prefix}times '${times}' has ${time} twice: give each time once`);
    }
    byMinute.set(minute, [...hours, hour]);
  }
  return [...byMinute.entries()].map(([minute, hours]) => `${minute} ${hours.sort((a, b) => a - b).join(',')} * * *`);
}

const CRON_FIELDS: ReadonlyArray<{ name: string; min: number; max: number; names?: string[] }> = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

/** Checks a five-field cron expression as the CronJob controller parses it. */
function checkCron(prop: string, expression: string | undefined): void {
  const fields = typeof expression === 'string' ? expression.trim().split(/\s+/) : [];
  if (fields.length !== 5) {
    throw new Error(`${prop} '${expression}' is not a cron expression of five fields (minute hour day-of-month month day-of-week): e.g. Cron.schedule({ minute: '0', hour: '1' })`);
  }
  fields.forEach((field, i) => {
    const spec = CRON_FIELDS[i];
    const value = (token: string): number => {
      const index = spec.names?.indexOf(token.toUpperCase()) ?? -1;
      if (index >= 0) return spec.name === 'month' ? index + 1 : index;
      return /^[0-9]+$/.test(token) ? Number(token) : NaN;
    };
    const ok = field.split(',').every((part) => {
      const [range, step, extra] = part.split('/');
      if (extra !== undefined || (step !== undefined && !/^[1-9][0-9]*$/.test(step))) return false;
      if (range === '*' || (range === '?' && (i === 2 || i === 4))) return true;
      const [from, to, more] = range.split('-');
      if (more !== undefined) return false;
      const a = value(from);
      const b = to === undefined ? a : value(to);
      return a >= spec.min && a <= spec.max && b >= spec.min && b <= spec.max && a <= b;
    });
    if (!ok) {
      throw new Error(`${prop} '${expression}' has an invalid ${spec.name} field '${field}': use *, numbers ${spec.min}-${spec.max}, ranges a-b, lists a,b and steps */n`);
    }
  });
}

/** A Duration in whole seconds, at least `min`. */
function seconds(prop: string, duration: Duration, min: number): number {
  const s = Math.floor(duration.toSeconds());
  if (s < min) {
    throw new Error(`${prop} must be at least ${min} seconds, got ${duration.toSeconds()} s: e.g. Duration.minutes(30)`);
  }
  return s;
}

/** `NightlyBackup` → `nightly-backup`. */
function kebab(id: string): string {
  return id.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase();
}

/** Two schedules of one cluster, method and target directory would prune each other's backups. */
const twinKeys = new WeakMap<BackupSchedule, string>();
function checkNoTwin(self: BackupSchedule, cluster: IDatabaseCluster, target: BoundBackupTarget, method: BackupMethod): void {
  const key = `${cluster.name} ${method} ${target.description}`;
  const twins = self.node.root.node.findAll().filter((c) => c !== self && c instanceof BackupSchedule && twinKeys.get(c) === key);
  twinKeys.set(self, key);
  if (twins.length > 0) {
    throw new Error(
      `BackupSchedule '${self.node.id}' writes ${method} backups of cluster '${cluster.name}' to ${target.description}, as '${twins[0].node.id}' does: ` +
      'their retention would prune each other\'s backups; give one of them another path (persistentVolumeClaim) or prefix (s3)',
    );
  }
}

function kubeResources(resources: kplus.ContainerResources): k8s.ResourceRequirements {
  const quantity = (size: Size) => k8s.Quantity.fromString(`${Math.ceil(size.toMebibytes())}Mi`);
  const limits: Record<string, k8s.Quantity> = {};
  const requests: Record<string, k8s.Quantity> = {};
  if (resources.cpu?.limit) limits.cpu = k8s.Quantity.fromString(resources.cpu.limit.amount);
  if (resources.cpu?.request) requests.cpu = k8s.Quantity.fromString(resources.cpu.request.amount);
  if (resources.memory?.limit) limits.memory = quantity(resources.memory.limit);
  if (resources.memory?.request) requests.memory = quantity(resources.memory.request);
  return {
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
  };
}
