/**
 * The synthesized NetworkPolicies admit every connection the clusters really make. The pod runner
 * does not enforce NetworkPolicies, so it records every new TCP connection on its network while
 * a MariaDB replication cluster forms (a replica seeded with a physical copy on 3307, replication
 * on 3306), a physical backup Job runs, and a Galera cluster forms (SST) and takes a node back
 * after kill -9 (IST). Each recorded connection is then evaluated against the policies with the
 * Kubernetes semantics (test/network-policy-evaluator.ts); pods outside the allowed set are
 * checked to be denied on every port.
 */
import { Chart, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner, RecordedConnection } from './runner';
import { BackupTarget, EngineVersion, GaleraCluster, MySqlReplicationCluster } from '../../src';
import { Cluster, Destination, evaluate, NetworkPolicy, selects, Source } from '../network-policy-evaluator';
import { Manifest, ofKind } from '../util';

jest.setTimeout(300_000);

const NAMESPACE = 'default';
let rt: PodRunner;

function chart(): Chart {
  const c = Testing.chart();
  new kplus.Secret(c, 'DbCredentials', { metadata: { name: 'db-credentials' }, stringData: { 'root-password': 'r00t "pw"', 'replication-password': 'repl pw' } });
  new kplus.Secret(c, 'GaleraCredentials', { metadata: { name: 'gal-credentials' }, stringData: { 'root-password': 'r00t "pw"', 'sst-password': 'sst pw' } });
  new k8s.KubePersistentVolumeClaim(c, 'Backups', {
    metadata: { name: 'backups' },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: k8s.Quantity.fromString('1Gi') } } },
  });
  const db = new MySqlReplicationCluster(c, 'Db', {
    name: 'db',
    version: EngineVersion.MARIADB_11_4,
    replicas: 2,
    storage: Size.gibibytes(1),
    credentials: kplus.Secret.fromSecretName(c, 'DbSecret', 'db-credentials'),
  });
  db.addBackupSchedule('Nightly', { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'backups')) });
  new GaleraCluster(c, 'Gal', {
    name: 'gal',
    version: EngineVersion.MARIADB_11_4,
    credentials: kplus.Secret.fromSecretName(c, 'GalSecret', 'gal-credentials'),
    primaryComponentTimeout: Duration.seconds(30),
    serverOptions: { innodb_buffer_pool_size: '64M', innodb_log_file_size: '16M', wsrep_provider_options: 'gcache.size=32M' },
  });
  return c;
}

const manifests = Testing.synth(chart()) as Manifest[];
const policies: Cluster = { policies: ofKind(manifests, 'NetworkPolicy') as unknown as NetworkPolicy[], defaultNamespace: NAMESPACE };

/** Only the kinds the runner must run now: the replication cluster and its backup first, Galera later. */
function only(names: string[]): Manifest[] {
  return manifests.filter((m) => !['StatefulSet', 'CronJob'].includes(m.kind) || names.includes(m.metadata.name));
}

async function sql(pod: string, container: string, statements: string): Promise<string> {
  const cnf = container === 'server' ? '/run/mysqld/root.cnf' : '/run/mysqld/client.cnf';
  const r = await rt.exec(pod, container, ['mariadb', `--defaults-extra-file=${cnf}`, '--batch', '--skip-column-names'], { stdin: statements, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${pod}: SQL failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

beforeAll(async () => {
  rt = await PodRunner.start({ name: 'netpol-e2e', recordConnections: true, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

afterAll(async () => {
  await rt?.stop();
});

test('a replication cluster seeds a replica, replicates, and is backed up by a physical backup Job', async () => {
  await rt.apply(only(['db', 'db-nightly']));
  await rt.waitForStatefulSetReady('db', 2, 180_000);
  await sql('db-0', 'server', 'CREATE DATABASE e2e; USE e2e; CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t SELECT seq FROM seq_1_to_1000');
  const position = await sql('db-0', 'server', 'SELECT @@gtid_binlog_pos');
  expect(await sql('db-1', 'server', `SELECT MASTER_GTID_WAIT('${position}', 60)`)).toBe('0');
  const backup = await rt.runJob('db-nightly');
  expect(backup.logs.backup).toMatch(/receiving a physical copy from db-1\.db/);
  expect(backup.succeeded).toBe(true);
  // free the machine for Galera
  await rt.scale('db', 0);
  await rt.waitForPodGone('db-0', 120_000);
});

test('a Galera cluster forms (the joiners receive SST) and takes a node back after kill -9 (IST)', async () => {
  await rt.apply(only(['gal']));
  await rt.waitForStatefulSetReady('gal', 3, 240_000);
  await sql('gal-0', 'mariadb', 'CREATE DATABASE e2e; USE e2e; CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t SELECT seq FROM seq_1_to_100');
  await rt.killContainer('gal-1', 'mariadb');
  await sql('gal-0', 'mariadb', 'USE e2e; INSERT INTO t SELECT seq FROM seq_101_to_200');
  await rt.waitFor('gal-1 to restart and be ready', () => rt.restartCount('gal-1', 'mariadb') >= 1 && rt.isReady('gal-1'), 120_000, ['gal-1']);
  expect(rt.logs('gal-1', 'mariadb')).toMatch(/IST received/);
  // wsrep_sync_wait: read only once every write set the node received is applied
  expect(await sql('gal-1', 'mariadb', 'SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM e2e.t')).toBe('200');
});

/** A recorded pod as a policy source or destination. */
function asPod(identity: RecordedConnection['source']): Source & Destination {
  if (identity.kind !== 'pod') throw new Error(`not a pod: ${identity.kind}`);
  return { namespace: identity.namespace, labels: identity.labels, ports: identity.ports };
}

/** The pod templates a Service sends to, with the port its `port` forwards to. */
function serviceTargets(service: Manifest, port: number): Array<{ destination: Destination; port: number }> {
  const servicePort = service.spec.ports.find((p: any) => p.port === port);
  return ofKind(manifests, 'StatefulSet').filter((sts) => selects({ matchLabels: service.spec.selector }, sts.spec.template.metadata.labels)).map((sts) => {
    const ports = sts.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
    const target = servicePort.targetPort ?? port;
    const number = typeof target === 'number' ? target : ports.find((p: any) => p.name === target).containerPort;
    return { destination: { namespace: NAMESPACE, labels: sts.spec.template.metadata.labels, ports }, port: number };
  });
}

function describeConnection(c: RecordedConnection): string {
  const name = (id: RecordedConnection['source']) => ('name' in id ? id.name : id.kind);
  return `${name(c.source)} -> ${name(c.destination)}:${c.port}`;
}

test('every connection they made is admitted by the synthesized NetworkPolicies, and includes each kind of traffic', async () => {
  const connections = await rt.connections();
  const checked: string[] = [];
  const denied: string[] = [];
  for (const c of connections) {
    // the node's connections are the Service forwarder's second leg (accounted for as the
    // client's connection to the Service) and the kubelet's, which NetworkPolicies do not govern
    if (c.source.kind === 'node') continue;
    expect([describeConnection(c), c.source.kind]).toEqual([describeConnection(c), 'pod']);
    const source = asPod(c.source);
    const targets = c.destination.kind === 'service'
      ? serviceTargets(c.destination.manifest as unknown as Manifest, c.port)
      : [{ destination: asPod(c.destination), port: c.port }];
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) {
      const verdict = evaluate(policies, source, target.destination, target.port);
      checked.push(describeConnection(c));
      if (!verdict.allowed) denied.push(`${describeConnection(c)}: ${verdict.reason}`);
    }
  }
  console.log(`connections checked against the NetworkPolicies:\n${[...new Set(checked)].sort().join('\n')}`);
  expect(denied).toEqual([]);

  const kinds = new Set(connections.filter((c) => c.source.kind === 'pod' && c.destination.kind === 'pod').map((c) => {
    const from = asPod(c.source).labels;
    const to = asPod(c.destination).labels;
    return `${from['app.kubernetes.io/instance']}/${from['app.kubernetes.io/component']} -> ${to['app.kubernetes.io/instance']}/${to['app.kubernetes.io/component']}:${c.port}`;
  }));
  expect([...kinds].sort()).toEqual(expect.arrayContaining([
    'db/database -> db/database:3306', // replication and the agent's checks
    'db/database -> db/database:3307', // seeding a replica
    'db/backup -> db/database:3307', // the physical backup Job
    'gal/database -> gal/database:4444', // SST
    'gal/database -> gal/database:4567', // group communication
    'gal/database -> gal/database:4568', // IST
    'gal/database -> gal/database:4569', // the start logic's status exchange
  ]));
  // the seeding really went from db-1 to db-0's stream, and the backup to db-1's
  const pairs = connections.map(describeConnection);
  expect(pairs).toContain('db-1 -> db-0:3307');
  const backup = connections.find((c) => /^db-nightly-\d+-[0-9a-f]{5} -> db-1:3307$/.test(describeConnection(c)));
  expect(backup).toBeDefined();
  // the check bites: without the backup Jobs among the stream port's peers, that connection is denied
  const withoutJobs: Cluster = {
    ...policies,
    policies: policies.policies.map((p) => ({
      ...p,
      spec: { ...p.spec, ingress: p.spec.ingress!.map((r) => ({ ...r, from: r.from?.filter((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/component'] !== 'backup') })) },
    })),
  };
  expect(evaluate(withoutJobs, asPod(backup!.source), asPod(backup!.destination), 3307).allowed).toBe(false);
  expect(evaluate(policies, asPod(backup!.source), asPod(backup!.destination), 3307).allowed).toBe(true);
});

test('a pod of another namespace, or an unlabelled pod of the same namespace, is denied every port but, for the latter, 3306', () => {
  for (const sts of ofKind(manifests, 'StatefulSet')) {
    const labels = sts.spec.template.metadata.labels;
    const ports = sts.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
    const destination: Destination = { namespace: NAMESPACE, labels, ports };
    expect(ports.length).toBeGreaterThan(1);
    for (const { containerPort } of ports) {
      const result = (source: Source) => `${sts.metadata.name}:${containerPort} ${evaluate(policies, source, destination, containerPort).allowed}`;
      // even with the cluster's own labels, a pod of another namespace is not a member
      expect(result({ namespace: 'other', labels })).toEqual(`${sts.metadata.name}:${containerPort} false`);
      expect(result({ namespace: 'other', labels: {} })).toEqual(`${sts.metadata.name}:${containerPort} false`);
      expect(result({ namespace: NAMESPACE, labels: {} })).toEqual(`${sts.metadata.name}:${containerPort} ${containerPort === 3306}`);
      expect(result({ namespace: NAMESPACE, labels })).toEqual(`${sts.metadata.name}:${containerPort} true`);
    }
  }
});
