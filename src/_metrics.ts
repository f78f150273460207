import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { CONTAINER_SECURITY, validateImage } from './_common';

/**
 * The mysqld_exporter sidecar and the Prometheus Operator objects of the clusters (`metrics`,
 * `serviceMonitor`, `alertRules`) and the backup alerts of `BackupSchedule`.
 */

/** The exporter image: a release of prometheus/mysqld_exporter (flags as of 0.15; 0.14 takes the same two). */
export const DEFAULT_EXPORTER_IMAGE = 'prom/mysqld-exporter:v0.20.0';
/** The exporter's HTTP port and the name of that port on the container and the Service. */
export const METRICS_PORT = 9104;
export const METRICS_PORT_NAME = 'metrics';
/** The key of the exporter's password in the credentials Secret. */
export const EXPORTER_PASSWORD_KEY = 'exporter-password';
/** The scripts that the metrics add to a cluster's scripts ConfigMap. */
export const EXPORTER_SCRIPTS = ['exporter-lib.sh', 'exporter-init.sh'];

/** The monitoring props shared by the clusters (see their documentation). */
export interface MonitoringProps {
  readonly metrics?: boolean;
  readonly metricsImage?: string;
  readonly serviceMonitor?: boolean;
  readonly alertRules?: boolean;
  readonly monitoringLabels?: { [key: string]: string };
}

/** The checked monitoring settings of a cluster. */
export interface Monitoring {
  readonly enabled: boolean;
  readonly image: string;
  readonly serviceMonitor: boolean;
  readonly alertRules: boolean;
  readonly labels: Record<string, string>;
}

/** Checks the monitoring props of a cluster; every combination that would do nothing is an error. */
export function resolveMonitoring(props: MonitoringProps): Monitoring {
  const enabled = props.metrics ?? false;
  const monitor = props.serviceMonitor ?? false;
  const alertRules = props.alertRules ?? false;
  if (!enabled) {
    for (const [prop, set] of [['serviceMonitor', monitor], ['alertRules', alertRules], ['metricsImage', props.metricsImage !== undefined]] as const) {
      if (set) {
        throw new Error(`${prop} needs metrics: true (it is about the mysqld_exporter sidecar, which only metrics adds): set metrics: true, or remove ${prop}`);
      }
    }
  }
  const image = props.metricsImage ?? DEFAULT_EXPORTER_IMAGE;
  validateImage('metricsImage', image);
  const labels = checkLabels('monitoringLabels', props.monitoringLabels ?? {});
  if (Object.keys(labels).length > 0 && !monitor && !alertRules) {
    throw new Error('monitoringLabels label the ServiceMonitor and the PrometheusRule, but neither is synthesized: set serviceMonitor or alertRules, or remove monitoringLabels');
  }
  return { enabled, image, serviceMonitor: monitor, alertRules, labels };
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Checks Kubernetes label keys and values (`prop` names them in errors). */
export function checkLabels(prop: string, labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (!LABEL_NAME.test(name) || (prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix)))) {
      throw new Error(`${prop} has the label key '${key}', which Kubernetes rejects: use [prefix/]name, the name of at most 63 letters, digits, '-', '_' or '.', e.g. 'release'`);
    }
    if (typeof value !== 'string' || !LABEL_VALUE.test(value)) {
      throw new Error(`${prop}.${key} is '${value}', which Kubernetes rejects as a label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. 'kube-prometheus-stack'`);
    }
  }
  return { ...labels };
}

/** What the clusters pass to build the sidecar and its init container. */
export interface ExporterPodProps {
  /** The image of the database server, which writes the exporter's option file. */
  readonly serverImage: string;
  readonly exporterImage: string;
  /** The run directory the pod's containers share (the server's socket is in it). */
  readonly runDir: string;
  readonly scriptsDir: string;
  readonly credentialsDir: string;
  /** Environment of the init container: DB_ENGINE, SECRETS_DIR, DB_SOCKET and EXPORTER_CNF at least. */
  readonly env: k8s.EnvVar[];
}

/** Where the exporter's option file is: in the run directory, written at every pod start. */
export function exporterCnf(runDir: string): string {
  return `${runDir}/exporter.cnf`;
}

const SIDECAR_RESOURCES: k8s.ResourceRequirements = {
  requests: { cpu: k8s.Quantity.fromString('10m'), memory: k8s.Quantity.fromString('32Mi') },
  limits: { memory: k8s.Quantity.fromString('128Mi') },
};

/**
 * The init container that writes the exporter's option file, and the exporter sidecar. The
 * sidecar logs in over the server's socket with the option file; it has a liveness probe on
 * its HTTP port but no readiness probe: a pod is ready only when all its containers are, and
 * the exporter must never take a database out of its Services.
 */
export function exporterContainers(p: ExporterPodProps): { init: k8s.Container; sidecar: k8s.Container } {
  const run: k8s.VolumeMount = { name: 'run', mountPath: p.runDir };
  const init: k8s.Container = {
    name: 'metrics-init',
    image: p.serverImage,
    imagePullPolicy: 'IfNotPresent',
    command: ['bash', `${p.scriptsDir}/exporter-init.sh`],
    env: p.env,
    securityContext: CONTAINER_SECURITY,
    resources: SIDECAR_RESOURCES,
    volumeMounts: [
      run,
      { name: 'scripts', mountPath: p.scriptsDir, readOnly: true },
      { name: 'credentials', mountPath: p.credentialsDir, readOnly: true },
    ],
  };
  const sidecar: k8s.Container = {
    name: 'metrics',
    image: p.exporterImage,
    imagePullPolicy: 'IfNotPresent',
    command: ['/bin/mysqld_exporter'],
    args: [`--config.my-cnf=${exporterCnf(p.runDir)}`, `--web.listen-address=:${METRICS_PORT}`],
    ports: [{ name: METRICS_PORT_NAME, containerPort: METRICS_PORT }],
    securityContext: CONTAINER_SECURITY,
    resources: SIDECAR_RESOURCES,
    // the socket is reachable on a read-only mount; the exporter writes nothing
    volumeMounts: [{ ...run, readOnly: true }],
    livenessProbe: {
      tcpSocket: { port: k8s.IntOrString.fromString(METRICS_PORT_NAME) },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
    },
  };
  return { init, sidecar };
}

/**
 * A headless Service `<name>-metrics` for the exporters of a cluster's pods, ready or not (a pod
 * that is not ready is when its metrics matter most).
 */
export function metricsService(scope: Construct, name: string, labels: Record<string, string>, selector: Record<string, string>): kplus.Service {
  const service = new kplus.Service(scope, 'MetricsService', {
    metadata: { name: `${name}-metrics`, labels: { ...labels, 'app.kubernetes.io/component': 'metrics' } },
    clusterIP: 'None',
    ports: [{ name: METRICS_PORT_NAME, port: METRICS_PORT, targetPort: METRICS_PORT }],
  });
  ApiObject.of(service).addJsonPatch(JsonPatch.add('/spec/publishNotReadyAddresses', true));
  for (const [key, value] of Object.entries(selector)) {
    service.selectLabel(key, value);
  }
  return service;
}

/** What a cluster with `metrics` synthesizes besides its pods' containers. */
export interface MonitoringObjects {
  readonly metricsService: kplus.Service;
  readonly serviceMonitor?: ApiObject;
  readonly alertRules?: ApiObject;
}

/**
 * The exporters' Service `<name>-metrics`, and as asked the ServiceMonitor and the
 * PrometheusRule `<name>-alerts` with `rules`, labelled with the cluster's and the monitoring labels.
 */
export function monitoringObjects(scope: Construct, name: string, monitoring: Monitoring, labels: Record<string, string>,
  selector: Record<string, string>, rules: () => AlertRule[]): MonitoringObjects {
  const service = metricsService(scope, name, labels, selector);
  const objectLabels = { ...labels, 'app.kubernetes.io/component': 'metrics', ...monitoring.labels };
  return {
    metricsService: service,
    serviceMonitor: monitoring.serviceMonitor
      ? serviceMonitor(scope, name, objectLabels, { ...selector, 'app.kubernetes.io/component': 'metrics' })
      : undefined,
    alertRules: monitoring.alertRules ? prometheusRule(scope, 'AlertRules', `${name}-alerts`, objectLabels, rules()) : undefined,
  };
}

/** A ServiceMonitor that scrapes the exporters behind `service` every 30 seconds. */
export function serviceMonitor(scope: Construct, name: string, labels: Record<string, string>, serviceLabels: Record<string, string>): ApiObject {
  return new ApiObject(scope, 'ServiceMonitor', {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: `${name}-metrics`, labels },
    spec: {
      selector: { matchLabels: serviceLabels },
      endpoints: [{ port: METRICS_PORT_NAME, path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
    },
  });
}

/** One alerting rule of a PrometheusRule. */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: 'warning' | 'critical';
  readonly summary: string;
  readonly description: string;
}

/** A PrometheusRule with one group of alerting rules. */
export function prometheusRule(scope: Construct, id: string, name: string, labels: Record<string, string>, rules: AlertRule[]): ApiObject {
  return new ApiObject(scope, id, {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name, labels },
    spec: {
      groups: [{
        name,
        rules: rules.map((r) => ({
          alert: r.alert,
          expr: r.expr,
          for: r.for,
          labels: { severity: r.severity },
          annotations: { summary: r.summary, description: r.description },
        })),
      }],
    },
  });
}

/** A PromQL label matcher for the pods of a StatefulSet (and its namespace, when the chart has one). */
export function podSelector(name: string, namespace: string | undefined): string {
  return `{${namespace ? `namespace="${namespace}", ` : ''}pod=~"${name}-[0-9]+"}`;
}

/** Alerts every cluster has: the exporter cannot reach its server, or Prometheus cannot reach the exporter. */
function commonAlerts(kind: string, name: string, sel: string): AlertRule[] {
  return [
    {
      alert: `${kind}Down`,
      expr: `mysql_up${sel} == 0`,
      for: '2m',
      severity: 'critical',
      summary: `A server of ${name} does not answer its exporter`,
      description: 'mysql_up is 0 on {{ $labels.pod }}: the mysqld_exporter sidecar cannot log in to the server over its socket (the server is down or restarting, or the exporter\'s account is missing).',
    },
    {
      alert: `${kind}ExporterUnreachable`,
      expr: `up${sel} == 0`,
      for: '5m',
      severity: 'warning',
      summary: `Prometheus cannot scrape an exporter of ${name}`,
      description: 'Prometheus cannot scrape the mysqld_exporter sidecar of {{ $labels.pod }} on port 9104 (the pod is gone, the sidecar restarts, or a NetworkPolicy blocks the monitoring namespace).',
    },
  ];
}

/**
 * The alerts of a replication cluster. The exporter names the replication metrics after the
 * columns of SHOW SLAVE/REPLICA STATUS: MariaDB's are `Slave_IO_Running`, `Seconds_Behind_Master`;
 * MySQL 8.4's are `Replica_IO_Running`, `Seconds_Behind_Source` (exporter 0.16 and later), so on
 * MySQL both names are matched.
 */
export function replicationAlerts(name: string, namespace: string | undefined, mariadb: boolean, maxLagSeconds: number): AlertRule[] {
  const sel = podSelector(name, namespace);
  const metric = (mariadbName: string, mysqlName: string) =>
    (mariadb ? `mysql_slave_status_${mariadbName}${sel}` : `(mysql_slave_status_${mysqlName}${sel} or mysql_slave_status_${mariadbName}${sel})`);
  return [
    ...commonAlerts('MySql', name, sel),
    {
      alert: 'MySqlReplicationStopped',
      expr: `${metric('slave_io_running', 'replica_io_running')} == 0 or ${metric('slave_sql_running', 'replica_sql_running')} == 0`,
      for: '5m',
      severity: 'critical',
      summary: `Replication of ${name} is stopped on a replica`,
      description: 'The replication IO or SQL thread of {{ $labels.pod }} has not run for 5 minutes: it serves stale data and has left the read Service. Check Last_IO_Error and Last_SQL_Error in SHOW REPLICA STATUS.',
    },
    {
      alert: 'MySqlReplicaLagging',
      expr: `${metric('seconds_behind_master', 'seconds_behind_source')} > ${maxLagSeconds}`,
      for: '2m',
      severity: 'warning',
      summary: `A replica of ${name} lags more than maxLag (${maxLagSeconds}s)`,
      description: `{{ $labels.pod }} is {{ $value }} seconds behind the primary (maxLag ${maxLagSeconds}s), so it is out of the read Service.`,
    },
  ];
}

/** The alerts of a Galera cluster. */
export function galeraAlerts(name: string, namespace: string | undefined, replicas: number): AlertRule[] {
  const sel = podSelector(name, namespace);
  return [
    ...commonAlerts('Galera', name, sel),
    {
      alert: 'GaleraNodeNotSynced',
      // 4 is Synced; a node that a backup desynchronized on purpose (wsrep_desync) is not reported
      expr: `mysql_global_status_wsrep_local_state${sel} != 4 unless on(namespace, pod) mysql_global_variables_wsrep_desync${sel} == 1`,
      for: '10m',
      severity: 'warning',
      summary: `A node of ${name} is not Synced`,
      description: '{{ $labels.pod }} has been in wsrep_local_state {{ $value }} (1 Joining, 2 Donor/Desynced, 3 Joined; 4 is Synced) for 10 minutes: it does not serve clients.',
    },
    {
      alert: 'GaleraClusterTooSmall',
      expr: `max by (namespace) (mysql_global_status_wsrep_cluster_size${sel}) < ${replicas}`,
      for: '5m',
      severity: 'warning',
      summary: `${name} has fewer than its ${replicas} nodes`,
      description: `The largest component of ${name} has {{ $value }} of its ${replicas} nodes: it survives fewer failures until the others rejoin.`,
    },
  ];
}

/** The alert of a backup schedule; kube-state-metrics provides the CronJob metrics. */
export function backupAlerts(name: string, namespace: string | undefined, cronJobs: string[], allowedSeconds: number): AlertRule[] {
  const sel = `{${namespace ? `namespace="${namespace}", ` : ''}cronjob=~"${cronJobs.join('|')}"}`;
  const last = `max by (namespace) (kube_cronjob_status_last_successful_time${sel})`;
  return [{
    alert: 'MySqlBackupTooOld',
    expr: `time() - ${last} > ${allowedSeconds} or (time() - min by (namespace) (kube_cronjob_created${sel}) > ${allowedSeconds} unless ${last})`,
    for: '5m',
    severity: 'critical',
    summary: `No successful backup of ${name} within its schedule`,
    description: `The last successful run of ${cronJobs.join(', ')} is older than ${allowedSeconds}s (the longest gap of its schedule plus its starting and active deadlines), or there has been none since the CronJob was created.`,
  }];
}

/**
 * The longest time (seconds) between two consecutive runs of a set of five-field cron
 * expressions (already checked), over four years of calendar: the longest a schedule leaves
 * without a backup. Time zones and daylight saving shifts are ignored (at most an hour).
 */
export function longestCronGap(expressions: string[]): number {
  const crons = expressions.map(parseCron);
  const start = Date.UTC(2024, 0, 1);
  const days = 4 * 366 + 1;
  let previous: number | undefined;
  let first: number | undefined;
  let longest = 0;
  for (let d = 0; d < days; d++) {
    const day = new Date(start + d * 86_400_000);
    const minutes = new Set<number>();
    for (const c of crons) {
      if (!c.months.has(day.getUTCMonth() + 1)) continue;
      const dom = c.days.has(day.getUTCDate());
      const dow = c.weekdays.has(day.getUTCDay());
      // cron: when both day fields are restricted, either matches
      if (!(c.daysRestricted && c.weekdaysRestricted ? dom || dow : dom && dow)) continue;
      for (const h of c.hours) for (const m of c.minutes) minutes.add(h * 60 + m);
    }
    for (const minute of [...minutes].sort((a, b) => a - b)) {
      const t = d * 1440 + minute;
      if (previous !== undefined) longest = Math.max(longest, t - previous);
      first ??= t;
      previous = t;
    }
  }
  if (previous === undefined || first === undefined) {
    throw new Error(`the schedules ${expressions.join('; ')} never run`);
  }
  return longest === 0 ? days * 86_400 : longest * 60;
}

interface ParsedCron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  daysRestricted: boolean;
  weekdaysRestricted: boolean;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function parseCron(expression: string): ParsedCron {
  const [minute, hour, day, month, weekday] = expression.trim().split(/\s+/);
  const weekdays = expand(weekday, 0, 7, WEEKDAYS, 0);
  if (weekdays.delete(7)) weekdays.add(0);
  return {
    minutes: expand(minute, 0, 59),
    hours: expand(hour, 0, 23),
    days: expand(day, 1, 31),
    months: expand(month, 1, 12, MONTHS, 1),
    weekdays,
    daysRestricted: !/^[*?]$/.test(day),
    weekdaysRestricted: !/^[*?]$/.test(weekday),
  };
}

function expand(field: string, min: number, max: number, names: string[] = [], offset = 0): Set<number> {
  const value = (token: string) => {
    const i = names.indexOf(token.toUpperCase());
    return i >= 0 ? i + offset : Number(token);
  };
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const [range, step] = part.split('/');
    let from = min;
    let to = max;
    if (range !== '*' && range !== '?') {
      const [a, b] = range.split('-');
      from = value(a);
      to = b === undefined ? (step === undefined ? from : max) : value(b);
    }
    for (let v = from; v <= to; v += step === undefined ? 1 : Number(step)) out.add(v);
  }
  return out;
}
