/**
 * Metrics end to end on the pod runner: a 2-pod MySqlReplicationCluster and a 3-node
 * GaleraCluster with `metrics`, their mysqld_exporter sidecars (Debian's
 * prometheus-mysqld-exporter standing in for prom/mysqld-exporter, see runner/profiles.ts)
 * scraped over the pod network from the runner's client, as Prometheus would.
 */
import { Chart, Duration, Size, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner } from './runner';
import { EngineVersion, GaleraCluster, MySqlReplicationCluster } from '../../src';

jest.setTimeout(300_000);

const RUNNER = 'metrics-e2e';
const REPL = 'mon';
const GALERA = 'gmon';
/** '#', ';', quotes, a backslash and spaces: the option file must carry them literally. */
const EXPORTER_PASSWORD = 'exp "pw" #1; \'q\' \\ x';
const PASSWORDS = { 'root-password': 'r00t "pw" #1', 'replication-password': "repl'pw;2", 'sst-password': "s'st:pw#3", 'exporter-password': EXPORTER_PASSWORD };

let rt: PodRunner;
let manifests: any[];

function chart(): Chart {
  const c = Testing.chart();
  for (const name of [REPL, GALERA]) {
    new k8s.KubeSecret(c, `${name}Credentials`, { metadata: { name: `${name}-credentials` }, stringData: PASSWORDS });
  }
  new MySqlReplicationCluster(c, 'Replication', {
    name: REPL,
    version: EngineVersion.MARIADB_11_4,
    replicas: 2,
    storage: Size.gibibytes(1),
    metrics: true,
    serviceMonitor: true,
    alertRules: true,
    monitoringLabels: { release: 'monitoring' },
  });
  new GaleraCluster(c, 'Galera', {
    name: GALERA,
    version: EngineVersion.MARIADB_11_4,
    storage: Size.gibibytes(1),
    primaryComponentTimeout: Duration.seconds(30),
    serverOptions: { innodb_buffer_pool_size: '64M', wsrep_provider_options: 'gcache.size=32M' },
    metrics: true,
    alertRules: true,
  });
  return c;
}

/** One scrape of a pod's exporter from the client namespace: the sample lines by metric name. */
async function scrape(pod: string): Promise<Map<string, string[]>> {
  const r = await rt.client(['curl', '--silent', '--show-error', '--fail', '--max-time', '10', `http://${rt.podIP(pod)}:9104/metrics`]);
  if (r.code !== 0) {
    throw new Error(`scraping ${pod} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  const samples = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match) {
      samples.set(match[1], [...(samples.get(match[1]) ?? []), match[3]]);
    }
  }
  return samples;
}

/** Scrapes until `ready` holds (the exporter's account arrives a few seconds after the server runs). */
async function scrapeUntil(
  pod: string, what: string, ready: (m: Map<string, string[]>) => boolean, timeoutMs = 90_000,
): Promise<Map<string, string[]>> {
  const deadline = Date.now() + timeoutMs;
  let last: Map<string, string[]> | undefined;
  let error: unknown;
  while (Date.now() < deadline) {
    try {
      last = await scrape(pod);
      if (ready(last)) return last;
    } catch (e) {
      error = e;
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(`${pod}: ${what} did not happen within ${timeoutMs / 1000} s; last mysql_up ${last?.get('mysql_up')}, last error ${error}\n${rt.describe()}`);
}

const value = (m: Map<string, string[]>, name: string) => m.get(name);

beforeAll(async () => {
  rt = await PodRunner.start({ name: RUNNER, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
  manifests = Testing.synth(chart());
  await rt.apply(manifests);
  await Promise.all([rt.waitForStatefulSetReady(REPL, 2, 240_000), rt.waitForStatefulSetReady(GALERA, 3, 240_000)]);
});

afterAll(async () => {
  await rt?.stop();
});

describe('replication cluster with metrics', () => {
  test('the primary\'s exporter logs in (mysql_up 1) with no scrape error and reports no replication', async () => {
    const m = await scrapeUntil(`${REPL}-0`, 'mysql_up 1', (s) => value(s, 'mysql_up')?.[0] === '1');
    expect(value(m, 'mysql_exporter_last_scrape_error')).toEqual(['0']);
    expect(value(m, 'mysql_slave_status_seconds_behind_master')).toBeUndefined();
    expect(Number(value(m, 'mysql_global_status_uptime')?.[0])).toBeGreaterThan(0);
  });

  test('the replica\'s exporter reports both replication threads running and its lag', async () => {
    const m = await scrapeUntil(`${REPL}-1`, 'replication metrics', (s) => value(s, 'mysql_up')?.[0] === '1' && s.has('mysql_slave_status_seconds_behind_master'));
    expect(value(m, 'mysql_exporter_last_scrape_error')).toEqual(['0']);
    expect(value(m, 'mysql_slave_status_slave_io_running')).toEqual(['1']);
    expect(value(m, 'mysql_slave_status_slave_sql_running')).toEqual(['1']);
    const lag = Number(value(m, 'mysql_slave_status_seconds_behind_master')?.[0]);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThanOrEqual(30);
  });

  test('the exporter\'s account came to the replica through replication, with the monitoring grants only', async () => {
    const r = await rt.exec(`${REPL}-1`, 'server', ['mariadb', '--defaults-extra-file=/run/mysqld/root.cnf', '--batch', '--skip-column-names'],
      { stdin: "SHOW GRANTS FOR 'exporter'@'localhost'" });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^GRANT PROCESS, SLAVE MONITOR ON \*\.\* TO `exporter`@`localhost` IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}' WITH MAX_USER_CONNECTIONS 3$/m);
    expect(r.stdout).toMatch(/^GRANT SELECT ON `performance_schema`\.\* TO `exporter`@`localhost`$/m);
  });

  test('the ServiceMonitor and the PrometheusRule are applied, labelled for the Prometheus selectors', () => {
    expect(rt.recorded('ServiceMonitor').map((m) => [m.metadata?.name, m.metadata?.labels?.release])).toEqual([[`${REPL}-metrics`, 'monitoring']]);
    expect(rt.recorded('PrometheusRule').map((m) => m.metadata?.name).sort()).toEqual([`${GALERA}-alerts`, `${REPL}-alerts`]);
  });
});

describe('Galera cluster with metrics', () => {
  test.each([0, 1, 2])('node %i\'s exporter reports a Synced node of a 3-node Primary Component', async (ordinal) => {
    const m = await scrapeUntil(`${GALERA}-${ordinal}`, 'wsrep metrics', (s) => value(s, 'mysql_up')?.[0] === '1' && value(s, 'mysql_global_status_wsrep_cluster_size')?.[0] === '3');
    expect(value(m, 'mysql_exporter_last_scrape_error')).toEqual(['0']);
    expect(value(m, 'mysql_global_status_wsrep_local_state')).toEqual(['4']);
    expect(value(m, 'mysql_global_status_wsrep_ready')).toEqual(['1']);
    expect(value(m, 'mysql_global_status_wsrep_cluster_status')).toEqual(['1']);
    expect(value(m, 'mysql_global_variables_wsrep_desync')).toEqual(['0']);
  });
});

test('the exporter\'s password appears in no manifest, environment, command line or log', () => {
  const yaml = JSON.stringify(manifests.filter((m) => m.kind !== 'Secret'));
  expect(yaml).not.toContain('#1; ');
  for (const pod of [`${REPL}-0`, `${REPL}-1`, `${GALERA}-0`, `${GALERA}-1`, `${GALERA}-2`]) {
    const containers = pod.startsWith(GALERA) ? ['mariadb', 'metrics'] : ['server', 'agent', 'donor', 'metrics'];
    for (const container of [...containers, 'metrics-init']) {
      expect({ pod, container, leaked: rt.logs(pod, container).includes('#1; ') }).toEqual({ pod, container, leaked: false });
    }
  }
});
