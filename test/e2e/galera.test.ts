/**
 * GaleraCluster end to end on the pod runner: the synthesized manifests run as pods with Debian's
 * MariaDB 10.11 and Galera 4 standing in for the mariadb image. Every assertion is on data or on
 * the servers' own status. One cluster goes through the scenarios in order.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner } from './runner';
import { EngineVersion, GaleraCluster, GaleraClusterProps, SstMethod } from '../../src';

const NAME = 'galera';
const CONTAINER = 'mariadb';
const PODS = [0, 1, 2].map((i) => `${NAME}-${i}`);
/** Passwords with quotes, a colon and a '#' on purpose: they travel through SQL, my.cnf and wsrep_sst_auth. */
const ROOT_PASSWORD = 'r00t "pw" #1';
const SST_PASSWORD = "s'st:pw#2";

jest.setTimeout(600_000);

function chart(props: GaleraClusterProps = {}): Chart {
  const c = Testing.chart();
  new k8s.KubeSecret(c, 'Credentials', {
    metadata: { name: `${NAME}-credentials` },
    stringData: { 'root-password': ROOT_PASSWORD, 'sst-password': SST_PASSWORD },
  });
  new GaleraCluster(c, 'Galera', {
    name: NAME,
    // the image the construct defaults to; the runner stands in Debian's 10.11 for it
    version: EngineVersion.MARIADB_11_4,
    sstMethod: SstMethod.MARIABACKUP,
    primaryComponentTimeout: Duration.seconds(30),
    // small data, small caches: this is a test of the logic, not of throughput
    serverOptions: { innodb_buffer_pool_size: '64M', innodb_log_file_size: '16M', wsrep_provider_options: 'gcache.size=32M' },
    ...props,
  });
  return c;
}

let rt: PodRunner;

/** Runs SQL on a pod's server as root (the option file the start script wrote from the Secret). */
async function sql(pod: string, statements: string): Promise<string> {
  const r = await rt.exec(pod, CONTAINER, ['mariadb', '--defaults-extra-file=/run/mysqld/client.cnf', '--batch', '--skip-column-names'], { stdin: statements, timeoutMs: 60_000 });
  if (r.code !== 0) {
    throw new Error(`${pod}: SQL failed (${r.code}): ${r.stderr}\n${statements}`);
  }
  return r.stdout.trim();
}

/** Every key of the test table on a pod's server. */
async function keys(pod: string): Promise<Set<string>> {
  return new Set((await sql(pod, 'SELECT k FROM e2e.t')).split('\n').filter((k) => k));
}

/**
 * Writes rows `<prefix>-1`, `<prefix>-2`, … from inside a pod for `seconds`, one autocommit
 * INSERT at a time; resolves with the keys whose INSERT succeeded (acknowledged writes).
 */
async function writeFor(pod: string, prefix: string, seconds: number): Promise<string[]> {
  const script = `end=$((SECONDS + ${seconds})); i=0
    while ((SECONDS < end)); do
      i=$((i + 1))
      if mariadb --defaults-extra-file=/run/mysqld/client.cnf --connect-timeout=2 -e "INSERT INTO e2e.t (k) VALUES ('${prefix}-$i')" 2>/dev/null; then
        echo "${prefix}-$i"
      fi
      sleep 0.05
    done`;
  const r = await rt.exec(pod, CONTAINER, ['bash', '-c', script], { timeoutMs: (seconds + 60) * 1000 });
  return r.stdout.split('\n').filter((k) => k);
}

/** Checks that every acknowledged key is on every given pod. */
async function expectOnAll(pods: readonly string[], acknowledged: readonly string[]): Promise<void> {
  for (const pod of pods) {
    const found = await keys(pod);
    expect(acknowledged.filter((k) => !found.has(k))).toEqual([]);
  }
}

/** Waits until every given pod's server reports a Primary Component of `size` and Synced. */
async function expectCluster(pods: readonly string[], size: number): Promise<string> {
  const uuids = new Set<string>();
  for (const pod of pods) {
    const s = await status(pod);
    expect(s).toMatchObject({ wsrep_cluster_size: `${size}`, wsrep_cluster_status: 'Primary', wsrep_local_state_comment: 'Synced', wsrep_ready: 'ON' });
    uuids.add(s.wsrep_cluster_state_uuid);
  }
  expect(uuids.size).toBe(1);
  return [...uuids][0];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function status(pod: string): Promise<Record<string, string>> {
  const out = await sql(pod, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_state_uuid')");
  return Object.fromEntries(out.split('\n').map((line) => line.split('\t')));
}

beforeAll(async () => {
  rt = await PodRunner.start({ name: 'galera-e2e', restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

/** The pods' logs after each test (current and previous containers), kept for post-mortems. */
const LOG_DIR = path.join(os.tmpdir(), 'galera-e2e-logs');
let testNumber = 0;
afterEach(() => {
  testNumber++;
  fs.mkdirSync(LOG_DIR, { recursive: true });
  for (const pod of rt.podNames()) {
    fs.writeFileSync(path.join(LOG_DIR, `${testNumber}-${pod}.log`), rt.logs(pod, CONTAINER));
    try {
      fs.writeFileSync(path.join(LOG_DIR, `${testNumber}-${pod}.previous.log`), rt.logs(pod, CONTAINER, { previous: true }));
    } catch {
      // no previous container
    }
  }
});

afterAll(async () => {
  await rt?.stop();
});

test('3 nodes form one cluster: exactly one bootstraps, all Synced in a Primary Component of 3', async () => {
  const started = Date.now();
  await rt.apply(chart());
  await rt.waitForStatefulSetReady(NAME, 3, 300_000);
  console.log(`formed in ${(Date.now() - started) / 1000} s`);
  for (const pod of PODS) {
    expect(await status(pod)).toMatchObject({ wsrep_cluster_size: '3', wsrep_cluster_status: 'Primary', wsrep_local_state_comment: 'Synced', wsrep_ready: 'ON' });
  }
  const bootstrapped = PODS.filter((pod) => rt.logs(pod, CONTAINER).includes('--wsrep-new-cluster'));
  expect(bootstrapped).toEqual(['galera-0']);
});

/** Every acknowledged write of the whole test, checked again after each disruption. */
const acknowledged: string[] = [];
let clusterUuid = '';

test('a write on each node is read on the others', async () => {
  await sql('galera-0', 'CREATE DATABASE e2e; CREATE TABLE e2e.t (k VARCHAR(64) PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))');
  for (const pod of PODS) {
    await sql(pod, `INSERT INTO e2e.t (k) VALUES ('written-on-${pod}')`);
    acknowledged.push(`written-on-${pod}`);
  }
  await expectOnAll(PODS, acknowledged);
  clusterUuid = await expectCluster(PODS, 3);
});

test('kill -9 of one node under a write load: the others keep writing, and it rejoins by IST, not SST', async () => {
  const load = Promise.all([writeFor('galera-0', 'load-a', 20), writeFor('galera-2', 'load-b', 20)]);
  await sleep(3_000);
  const killedAt = Date.now();
  await rt.killContainer('galera-1', CONTAINER);
  await rt.waitFor('galera-1 to restart and be ready', () => rt.restartCount('galera-1', CONTAINER) >= 1 && rt.isReady('galera-1'), 120_000, ['galera-1']);
  console.log(`galera-1 ready again ${(Date.now() - killedAt) / 1000} s after kill -9`);
  const written = (await load).flat();
  acknowledged.push(...written);
  // writes went on while galera-1 was down (they stall only until it is evicted, ~6 s)
  expect(written.length).toBeGreaterThan(50);

  const log = rt.logs('galera-1', CONTAINER);
  expect(log).toMatch(/galera-start\.sh: starting mariadbd --wsrep-start-position=[0-9a-f-]{36}:\d+/);
  expect(log).toMatch(/mariabackup IST completed on joiner/);
  expect(log).toMatch(/IST received/);
  expect(log).not.toMatch(/SST completed on joiner|Proceeding with SST/);
  await sleep(2_000);
  await expectOnAll(PODS, acknowledged);
  expect(await expectCluster(PODS, 3)).toEqual(clusterUuid);
});

function previousLog(pod: string): string {
  try {
    return rt.logs(pod, CONTAINER, { previous: true });
  } catch {
    return '';
  }
}

/** The galera-start.sh lines of a pod's current container, for failure messages and timings. */
function startLog(pod: string): string {
  return rt.logs(pod, CONTAINER).split('\n').filter((l) => l.includes('galera-start.sh')).join('\n');
}

/**
 * Waits for the 3 nodes, then checks: the same cluster (not a new one), full state transfers only
 * to the pods named, and every acknowledged write on every node.
 */
async function expectRecovered(what: string, since: number, sstTo: readonly string[] = []): Promise<void> {
  await rt.waitForStatefulSetReady(NAME, 3, 300_000);
  console.log(`${what}: all 3 ready ${(Date.now() - since) / 1000} s later\n${PODS.map((p) => `--- ${p}\n${startLog(p)}`).join('\n')}`);
  expect(await expectCluster(PODS, 3)).toEqual(clusterUuid);
  // a full SST went to the pods named only (in their current container, or in the previous one
  // when Galera asked for a restart after it: "IST didn't contain all write sets")
  const sst = (log: string) => /SST completed on joiner/.test(log);
  expect(PODS.filter((pod) => sst(rt.logs(pod, CONTAINER)) || (sstTo.includes(pod) && sst(previousLog(pod))))).toEqual(sstTo);
  await expectOnAll(PODS, acknowledged);
}

/** Deletes a node's data while its server runs: the next container starts on an empty volume, as on a new PVC. */
async function loseVolume(pod: string): Promise<void> {
  const r = await rt.exec(pod, CONTAINER, ['bash', '-c', 'rm -rf /var/lib/mysql/* /var/lib/mysql/.[!.]* && ls -A /var/lib/mysql | wc -l']);
  expect(r.code).toBe(0);
}

test('kill -9 of all three nodes: the cluster re-forms by itself with every acknowledged write', async () => {
  const load = writeFor('galera-0', 'before-crash', 4);
  await sleep(3_000);
  const killedAt = Date.now();
  await Promise.all(PODS.map((pod) => rt.killContainer(pod, CONTAINER)));
  acknowledged.push(...await load);
  await expectRecovered('kill -9 of all', killedAt);
  // nobody bootstrapped a new cluster over the crashed one
  expect(PODS.filter((pod) => rt.logs(pod, CONTAINER).includes('--wsrep-new-cluster')).length).toBeLessThanOrEqual(1);
});

test('all pods deleted gracefully: they agree on one node, it bootstraps, the others join by IST', async () => {
  acknowledged.push(...await writeFor('galera-1', 'before-delete', 2));
  const deletedAt = Date.now();
  await Promise.all(PODS.map((pod) => rt.deletePod(pod)));
  await expectRecovered('graceful delete of all pods', deletedAt);
  const bootstrapped = PODS.filter((pod) => rt.logs(pod, CONTAINER).includes('--wsrep-new-cluster'));
  expect(bootstrapped).toHaveLength(1);
  for (const pod of PODS.filter((p) => !bootstrapped.includes(p))) {
    expect(startLog(pod)).toMatch(/runs in a Primary Component: joining it/);
  }
});

test('a node cut off from the others stops being ready; the other two keep writing; it catches up when healed', async () => {
  await rt.partition('galera-2');
  const cutAt = Date.now();
  const load = writeFor('galera-0', 'during-partition', 20);
  await rt.waitFor('galera-2 to stop being ready', () => !rt.isReady('galera-2'), 60_000, ['galera-2']);
  console.log(`galera-2 not ready ${(Date.now() - cutAt) / 1000} s after the cut`);
  expect((await status('galera-2')).wsrep_cluster_status).toEqual('non-Primary');
  expect(rt.isReady('galera-0') && rt.isReady('galera-1')).toBe(true);
  const written = await load;
  expect(written.length).toBeGreaterThan(50);
  acknowledged.push(...written);
  expect((await keys('galera-1')).has(written[written.length - 1])).toBe(true);

  const healedAt = Date.now();
  await rt.heal('galera-2');
  await rt.waitForReady('galera-2', 120_000);
  console.log(`galera-2 ready ${(Date.now() - healedAt) / 1000} s after the heal`);
  // it stayed up and rejoined by itself: no restart
  expect(rt.restartCount('galera-2', CONTAINER)).toBe(0);
  await expectOnAll(PODS, acknowledged);
  expect(await expectCluster(PODS, 3)).toEqual(clusterUuid);
});

test('every node crashes and one of them lost its volume: the others still agree and re-form, it gets a full SST', async () => {
  acknowledged.push(...await writeFor('galera-1', 'before-volume-loss', 2));
  await loseVolume('galera-2');
  const killedAt = Date.now();
  await Promise.all(PODS.map((pod) => rt.killContainer(pod, CONTAINER)));
  await expectRecovered('kill -9 of all, galera-2 without its volume', killedAt, ['galera-2']);
  expect(startLog('galera-2')).toMatch(/this node has no data of a cluster yet/);
});

test('two nodes crash with their volumes lost: the survivor, alone outside a Primary Component, makes itself Primary', async () => {
  acknowledged.push(...await writeFor('galera-0', 'before-double-loss', 2));
  const survivorRestarts = rt.restartCount('galera-0', CONTAINER);
  await Promise.all(['galera-1', 'galera-2'].map((pod) => loseVolume(pod)));
  const killedAt = Date.now();
  await Promise.all(['galera-1', 'galera-2'].map((pod) => rt.killContainer(pod, CONTAINER)));
  await expectRecovered('kill -9 of two nodes without their volumes', killedAt, ['galera-1', 'galera-2']);
  // the survivor kept running: it was not restarted, it made its component Primary
  expect(rt.restartCount('galera-0', CONTAINER)).toBe(survivorRestarts);
  expect(startLog('galera-0')).toMatch(/making its component Primary \(pc\.bootstrap\)/);
});

test('a server that left the cluster for good (its Galera provider closed) is restarted and rejoins', async () => {
  const restarts = rt.restartCount('galera-2', CONTAINER);
  await sql('galera-2', "SET GLOBAL wsrep_cluster_address = ''");
  expect((await status('galera-2')).wsrep_cluster_status).toEqual('Disconnected');
  acknowledged.push(...await writeFor('galera-0', 'while-disconnected', 3));
  const leftAt = Date.now();
  await rt.waitFor('galera-2 to be restarted and ready', () => rt.restartCount('galera-2', CONTAINER) > restarts && rt.isReady('galera-2'), 180_000, ['galera-2']);
  console.log(`galera-2 ready ${(Date.now() - leftAt) / 1000} s after it left`);
  expect(rt.logs('galera-2', CONTAINER, { previous: true })).toMatch(/disconnected from the cluster \(wsrep_connected OFF\) and cannot rejoin by itself: restarting it/);
  await expectOnAll(PODS, acknowledged);
  expect(await expectCluster(PODS, 3)).toEqual(clusterUuid);
});

test('scale from 3 to 5 nodes (replicas: 5 re-applied): the new nodes join by SST, every node sees 5', async () => {
  const scaledAt = Date.now();
  await rt.apply(chart({ replicas: 5 }));
  await rt.waitForStatefulSetReady(NAME, 5, 300_000);
  console.log(`5 nodes ready ${(Date.now() - scaledAt) / 1000} s after the apply`);
  const all = [...PODS, 'galera-3', 'galera-4'];
  expect(await expectCluster(all, 5)).toEqual(clusterUuid);
  await expectOnAll(all, acknowledged);
});
