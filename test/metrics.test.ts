import { App, Chart, Cron, Duration, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  BackupTarget, EngineVersion, GaleraCluster, GaleraClusterProps, MySqlReplicationCluster, MySqlReplicationClusterProps,
} from '../src';
import { Manifest, ofKind, one, statefulSetPodSpec as podSpec, synth } from './util';
import { longestCronGap } from '../src/_metrics';

function replication(props: MySqlReplicationClusterProps = {}, namespace?: string) {
  const chart = namespace ? new Chart(Testing.app(), 'test', { namespace }) : Testing.chart();
  const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4, ...props });
  return { chart, db, manifests: synth(chart) };
}

function galera(props: GaleraClusterProps = {}) {
  const chart = Testing.chart();
  const db = new GaleraCluster(chart, 'db', { name: 'gdb', ...props });
  return { chart, db, manifests: synth(chart) };
}

function container(spec: any, name: string): any {
  const found = [...(spec.initContainers ?? []), ...spec.containers].filter((c: any) => c.name === name);
  expect(found).toHaveLength(1);
  return found[0];
}

function rules(manifest: Manifest): Record<string, any> {
  return Object.fromEntries(manifest.spec.groups[0].rules.map((r: any) => [r.alert, r]));
}

const SECURITY = {
  runAsUser: 999,
  runAsGroup: 999,
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

describe('metrics of a MySqlReplicationCluster', () => {
  test('without metrics nothing of the exporter is synthesized and the Secret needs no exporter-password', () => {
    const { manifests, db } = replication();
    const spec = podSpec(manifests, 'db');
    expect(spec.containers.map((c: any) => c.name)).toEqual(['server', 'agent', 'donor']);
    expect(spec.initContainers.map((c: any) => c.name)).toEqual(['init']);
    expect(spec.volumes.find((v: any) => v.name === 'credentials').secret.items.map((i: any) => i.key)).toEqual(['root-password', 'replication-password']);
    expect(ofKind(manifests, 'Service').map((s) => s.metadata.name)).not.toContain('db-metrics');
    expect(ofKind(manifests, 'ServiceMonitor')).toEqual([]);
    expect(ofKind(manifests, 'PrometheusRule')).toEqual([]);
    expect(db.metricsService).toBeUndefined();
    expect(one(manifests, 'ConfigMap', 'db-scripts').data['exporter-lib.sh']).toBeUndefined();
  });

  test('metrics adds the exporter sidecar: pinned image, port 9104 named metrics, non-root, explicit resources, a liveness probe and no readiness probe', () => {
    const { manifests } = replication({ metrics: true });
    const spec = podSpec(manifests, 'db');
    expect(spec.containers.map((c: any) => c.name)).toEqual(['server', 'agent', 'donor', 'metrics']);
    expect(container(spec, 'metrics')).toEqual({
      name: 'metrics',
      image: 'prom/mysqld-exporter:v0.20.0',
      imagePullPolicy: 'IfNotPresent',
      command: ['/bin/mysqld_exporter'],
      args: ['--config.my-cnf=/run/mysqld/exporter.cnf', '--web.listen-address=:9104'],
      ports: [{ name: 'metrics', containerPort: 9104 }],
      securityContext: SECURITY,
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
      volumeMounts: [{ name: 'run', mountPath: '/run/mysqld', readOnly: true }],
      livenessProbe: { tcpSocket: { port: 'metrics' }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
    });
  });

  test('an init container writes the exporter\'s option file from the Secret key exporter-password; the agent creates the account', () => {
    const { manifests } = replication({ metrics: true });
    const spec = podSpec(manifests, 'db');
    expect(spec.initContainers.map((c: any) => c.name)).toEqual(['init', 'metrics-init']);
    const init = container(spec, 'metrics-init');
    expect(init.image).toEqual('mariadb:11.4');
    expect(init.command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/exporter-init.sh']);
    expect(init.securityContext).toEqual(SECURITY);
    expect(init.volumeMounts).toEqual([
      { name: 'run', mountPath: '/run/mysqld' },
      { name: 'scripts', mountPath: '/etc/cdk8s-mysql/scripts', readOnly: true },
      { name: 'credentials', mountPath: '/etc/cdk8s-mysql/credentials', readOnly: true },
    ]);
    for (const name of ['metrics-init', 'agent', 'server']) {
      expect(container(spec, name).env).toContainEqual({ name: 'EXPORTER_CNF', value: '/run/mysqld/exporter.cnf' });
    }
    expect(spec.volumes.find((v: any) => v.name === 'credentials').secret.items.map((i: any) => i.key))
      .toEqual(['root-password', 'replication-password', 'exporter-password']);
    const scripts = one(manifests, 'ConfigMap', 'db-scripts').data;
    expect(Object.keys(scripts)).toEqual(expect.arrayContaining(['exporter-lib.sh', 'exporter-init.sh']));
    expect(MySqlReplicationCluster.EXPORTER_PASSWORD_KEY).toEqual('exporter-password');
  });

  test('MySQL\'s socket directory is the exporter\'s run directory', () => {
    const { manifests } = replication({ metrics: true, version: EngineVersion.MYSQL_8_4 });
    const sidecar = container(podSpec(manifests, 'db'), 'metrics');
    expect(sidecar.args[0]).toEqual('--config.my-cnf=/var/run/mysqld/exporter.cnf');
    expect(sidecar.volumeMounts).toEqual([{ name: 'run', mountPath: '/var/run/mysqld', readOnly: true }]);
  });

  test('turning metrics on rolls the pods (the scripts hash changes)', () => {
    const hash = (m: Manifest[]) => one(m, 'StatefulSet', 'db').spec.template.metadata.annotations['cdk8s-mysql/config-hash'];
    expect(hash(replication({ metrics: true }).manifests)).not.toEqual(hash(replication().manifests));
  });

  test('a headless Service db-metrics reaches the exporters of every pod, ready or not', () => {
    const { manifests, db } = replication({ metrics: true });
    const service = one(manifests, 'Service', 'db-metrics');
    expect(service.metadata.labels['app.kubernetes.io/component']).toEqual('metrics');
    expect(service.spec).toEqual({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      externalIPs: [],
      type: 'ClusterIP',
      ports: [{ name: 'metrics', port: 9104, targetPort: 9104 }],
      // the database pods only, never the pods of the backup Jobs
      selector: { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' },
    });
    expect(db.metricsService?.name).toEqual('db-metrics');
    // the other Services keep their ports
    expect(one(manifests, 'Service', 'db').spec.ports.map((p: any) => p.name)).toEqual(['mysql', 'seed']);
  });

  test('serviceMonitor selects exactly the metrics Service, with the monitoring labels', () => {
    const { manifests, db } = replication({ metrics: true, serviceMonitor: true, monitoringLabels: { release: 'kube-prometheus-stack' } });
    const monitor = one(manifests, 'ServiceMonitor', 'db-metrics');
    expect(monitor.apiVersion).toEqual('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels).toMatchObject({ 'release': 'kube-prometheus-stack', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'metrics' });
    expect(monitor.spec).toEqual({
      selector: { matchLabels: { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'metrics' } },
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
    });
    // only the metrics Service carries all the selected labels
    const selected = ofKind(manifests, 'Service').filter((s) => Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels[k] === v));
    expect(selected.map((s) => s.metadata.name)).toEqual(['db-metrics']);
    expect(db.serviceMonitor).toBeDefined();
  });

  test('alertRules on MariaDB: mysql_up, scrape failures, stopped replication and lag above maxLag, for this cluster\'s pods', () => {
    const { manifests } = replication({ metrics: true, alertRules: true, maxLag: Duration.seconds(45) }, 'shop');
    const rule = one(manifests, 'PrometheusRule', 'db-alerts');
    expect(rule.metadata.namespace).toEqual('shop');
    expect(rule.spec.groups.map((g: any) => g.name)).toEqual(['db-alerts']);
    const sel = '{namespace="shop", pod=~"db-[0-9]+"}';
    const r = rules(rule);
    expect(Object.keys(r)).toEqual(['MySqlDown', 'MySqlExporterUnreachable', 'MySqlReplicationStopped', 'MySqlReplicaLagging']);
    expect(r.MySqlDown).toMatchObject({ expr: `mysql_up${sel} == 0`, for: '2m', labels: { severity: 'critical' } });
    expect(r.MySqlExporterUnreachable).toMatchObject({ expr: `up${sel} == 0`, for: '5m', labels: { severity: 'warning' } });
    expect(r.MySqlReplicationStopped).toMatchObject({
      expr: `mysql_slave_status_slave_io_running${sel} == 0 or mysql_slave_status_slave_sql_running${sel} == 0`,
      for: '5m',
      labels: { severity: 'critical' },
    });
    expect(r.MySqlReplicaLagging).toMatchObject({ expr: `mysql_slave_status_seconds_behind_master${sel} > 45`, for: '2m', labels: { severity: 'warning' } });
    for (const alert of Object.values(r)) {
      expect(alert.annotations.summary).toMatch(/db/);
      expect(alert.annotations.description.length).toBeGreaterThan(20);
    }
  });

  test('alertRules on MySQL match the replica column names of MySQL 8.4 as well as the older ones', () => {
    const { manifests } = replication({ metrics: true, alertRules: true, version: EngineVersion.MYSQL_8_4 });
    const r = rules(one(manifests, 'PrometheusRule', 'db-alerts'));
    const sel = '{pod=~"db-[0-9]+"}';
    expect(r.MySqlReplicaLagging.expr).toEqual(`(mysql_slave_status_seconds_behind_source${sel} or mysql_slave_status_seconds_behind_master${sel}) > 30`);
    expect(r.MySqlReplicationStopped.expr).toContain(`mysql_slave_status_replica_sql_running${sel} or mysql_slave_status_slave_sql_running${sel}`);
  });

  test('metricsImage replaces the exporter image', () => {
    const { manifests } = replication({ metrics: true, metricsImage: 'registry.example.com/mysqld-exporter:v0.19.0' });
    expect(container(podSpec(manifests, 'db'), 'metrics').image).toEqual('registry.example.com/mysqld-exporter:v0.19.0');
  });

  test.each([
    [{ serviceMonitor: true }, /serviceMonitor needs metrics: true .*set metrics: true, or remove serviceMonitor/],
    [{ alertRules: true }, /alertRules needs metrics: true/],
    [{ metricsImage: 'prom/mysqld-exporter:v0.20.0' }, /metricsImage needs metrics: true/],
    [{ metrics: true, metricsImage: 'prom/mysqld-exporter' }, /metricsImage 'prom\/mysqld-exporter' has no tag/],
    [{ metrics: true, monitoringLabels: { release: 'x' } }, /monitoringLabels label the ServiceMonitor and the PrometheusRule, but neither is synthesized/],
    [{ metrics: true, serviceMonitor: true, monitoringLabels: { 'bad key!': 'x' } }, /monitoringLabels has the label key 'bad key!', which Kubernetes rejects/],
    [{ metrics: true, serviceMonitor: true, monitoringLabels: { release: 'not ok' } }, /monitoringLabels.release is 'not ok', which Kubernetes rejects as a label value/],
  ] as Array<[MySqlReplicationClusterProps, RegExp]>)('%j is rejected at synthesis', (props, error) => {
    expect(() => replication(props)).toThrow(error);
  });
});

describe('metrics of a GaleraCluster', () => {
  test('metrics adds the init container, the sidecar on the run directory and the exporter-password key', () => {
    const { manifests } = galera({ metrics: true });
    const spec = podSpec(manifests, 'gdb');
    expect(spec.initContainers.map((c: any) => c.name)).toEqual(['metrics-init']);
    expect(spec.containers.map((c: any) => c.name)).toEqual(['mariadb', 'metrics']);
    expect(container(spec, 'metrics').args).toEqual(['--config.my-cnf=/run/mysqld/exporter.cnf', '--web.listen-address=:9104']);
    expect(container(spec, 'metrics').readinessProbe).toBeUndefined();
    expect(container(spec, 'mariadb').env).toContainEqual({ name: 'EXPORTER_CNF', value: '/run/mysqld/exporter.cnf' });
    expect(spec.volumes.find((v: any) => v.name === 'credentials').secret.items.map((i: any) => i.key))
      .toEqual(['root-password', 'sst-password', 'exporter-password']);
    expect(one(manifests, 'Service', 'gdb-metrics').spec.publishNotReadyAddresses).toBe(true);
  });

  test('without metrics the Galera pod has no init container', () => {
    const spec = podSpec(galera().manifests, 'gdb');
    expect(spec.initContainers).toBeUndefined();
    expect(spec.containers.map((c: any) => c.name)).toEqual(['mariadb']);
  });

  test('alertRules: a node not Synced unless a backup desynchronized it, fewer nodes than replicas, mysql_up and scrape failures', () => {
    const { manifests } = galera({ metrics: true, alertRules: true, serviceMonitor: true, replicas: 5 });
    const r = rules(one(manifests, 'PrometheusRule', 'gdb-alerts'));
    const sel = '{pod=~"gdb-[0-9]+"}';
    expect(Object.keys(r)).toEqual(['GaleraDown', 'GaleraExporterUnreachable', 'GaleraNodeNotSynced', 'GaleraClusterTooSmall']);
    expect(r.GaleraNodeNotSynced).toMatchObject({
      expr: `mysql_global_status_wsrep_local_state${sel} != 4 unless on(namespace, pod) mysql_global_variables_wsrep_desync${sel} == 1`,
      for: '10m',
    });
    expect(r.GaleraClusterTooSmall).toMatchObject({ expr: `max by (namespace) (mysql_global_status_wsrep_cluster_size${sel}) < 5`, for: '5m' });
    expect(r.GaleraDown.expr).toEqual(`mysql_up${sel} == 0`);
    expect(one(manifests, 'ServiceMonitor', 'gdb-metrics').spec.selector.matchLabels['app.kubernetes.io/instance']).toEqual('gdb');
  });

  test('serviceMonitor without metrics is rejected at synthesis', () => {
    expect(() => galera({ serviceMonitor: true })).toThrow(/serviceMonitor needs metrics: true/);
  });
});

describe('backup alerts', () => {
  function backup(options: Record<string, unknown>, namespace = 'shop') {
    const chart = new Chart(new App(), 'test', { namespace });
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4 });
    const claim = BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups'));
    const schedule = db.addBackupSchedule('Nightly', { target: claim, ...options });
    return { schedule, manifests: synth(chart) };
  }

  test('alertRules fires when the last successful backup is older than the longest gap plus both deadlines, from kube-state-metrics', () => {
    const { manifests, schedule } = backup({ alertRules: true, times: '01:00,13:00,19:00', monitoringLabels: { release: 'prom' } });
    const rule = one(manifests, 'PrometheusRule', 'db-nightly-alerts');
    expect(rule.metadata.labels).toMatchObject({ 'release': 'prom', 'app.kubernetes.io/component': 'backup' });
    const r = rules(rule);
    expect(Object.keys(r)).toEqual(['MySqlBackupTooOld']);
    // 13:00 → 19:00 is 6 h, 19:00 → 01:00 is 6 h, 01:00 → 13:00 is 12 h: 12 h + 30 min + 6 h
    const allowed = 12 * 3600 + 1800 + 6 * 3600;
    const sel = '{namespace="shop", cronjob=~"db-nightly"}';
    expect(r.MySqlBackupTooOld.expr).toEqual(
      `time() - max by (namespace) (kube_cronjob_status_last_successful_time${sel}) > ${allowed} or ` +
      `(time() - min by (namespace) (kube_cronjob_created${sel}) > ${allowed} unless max by (namespace) (kube_cronjob_status_last_successful_time${sel}))`,
    );
    expect(r.MySqlBackupTooOld.labels).toEqual({ severity: 'critical' });
    expect(schedule.alertRules).toBeDefined();
  });

  test('a schedule of several CronJobs is judged by the newest success of any of them', () => {
    const { manifests } = backup({
      alertRules: true,
      schedules: [Cron.schedule({ minute: '0', hour: '2' }), Cron.schedule({ minute: '30', hour: '14' })],
      startingDeadline: Duration.minutes(10),
      activeDeadline: Duration.hours(1),
    });
    const expr = rules(one(manifests, 'PrometheusRule', 'db-nightly-alerts')).MySqlBackupTooOld.expr;
    expect(expr).toContain('cronjob=~"db-nightly|db-nightly-2"');
    // 02:00 → 14:30 is 12.5 h, 14:30 → 02:00 is 11.5 h
    expect(expr).toContain(`> ${12.5 * 3600 + 600 + 3600} `);
  });

  test('without alertRules there is no PrometheusRule; monitoringLabels alone are rejected', () => {
    expect(ofKind(backup({}).manifests, 'PrometheusRule')).toEqual([]);
    expect(() => backup({ monitoringLabels: { release: 'prom' } })).toThrow(/monitoringLabels label the PrometheusRule of alertRules, which is not synthesized/);
  });

  test.each([
    [['0 1 * * *'], 86_400],
    [['*/15 * * * *'], 900],
    [['0 3 * * 0'], 7 * 86_400],
    [['0 3 * * MON-FRI'], 3 * 86_400],
    [['0 0 1 * *'], 31 * 86_400],
    [['0 0 1 1,7 *'], 184 * 86_400],
    [['0 0 13 * 5'], 7 * 86_400],
    [['0 1 * * *', '30 1 * * *'], 86_400 - 1800],
  ])('the longest gap of %j is %i seconds', (expressions, seconds) => {
    expect(longestCronGap(expressions)).toEqual(seconds);
  });
});
