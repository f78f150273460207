/**
 * BackupSchedule of a GaleraCluster end to end on the pod runner (Debian's MariaDB 10.11, Galera 4
 * and mariadb-backup standing in for mariadb:11.4): a loaded 3-node cluster is backed up by its
 * synthesized physical CronJob to a PersistentVolumeClaim target while every node takes writes;
 * the source node is desynchronized only during the backup and stays ready; a NEW cluster
 * (another name, other passwords) starts from the backup with restoreFrom, every node Synced,
 * its tables equal to the backup's manifest and to the source's tables at backup time. A logical
 * schedule backs the cluster up too, and the restore Jobs of both schedules put lost rows back into
 * the running source cluster (every node equal to the manifest). Every assertion is on data, on the
 * servers' own status, on the files of the target or on the Jobs' outcome.
 */
import { existsSync, readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner, RUNNER_BASE_DIR } from './runner';
import { SqlClient } from './sql-client';
import { BackupMethod, BackupTarget, EngineVersion, GaleraCluster, GaleraClusterProps } from '../../src';

jest.setTimeout(600_000);

const RUNNER = 'galera-backup-e2e';
const ROOT_PASSWORD = 'g4lera "root" #1';
const NEW_ROOT_PASSWORD = 'n3w "root" #2';
/** Rows of the three static tables. */
const ROWS = { big: 40_000, mid: 15_000, small: 5_000 };

let rt: PodRunner;
let client: SqlClient;
const started = Date.now();
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const timings: string[] = [];

/** SQL as root from the client namespace (reads are causal: wsrep_sync_wait); `login` names the option file. */
const sql = (host: string, statements: string, login?: string) => client.sql(host, statements, login);
/** "table rows checksum" of every table of the e2e schema, or of the given ones. */
const tables = (host: string, login?: string, only?: string[]) => client.tables(host, login, only);

/** wsrep_desync, the local state, the cluster size and whether the backup lock is free, on one node. */
async function galeraState(host: string, login?: string): Promise<string> {
  return sql(host, `SELECT CONCAT_WS(' ', IF(@@wsrep_desync, 1, 0),
    (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'),
    (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'),
    IS_FREE_LOCK('cdk8s_mysql_backup'))`, login);
}

/** Accounts whose host is not localhost or '%' (e.g. root@<pod name>, left by mariadb-install-db). */
async function hostNamedAccounts(host: string, login?: string): Promise<string> {
  return sql(host, "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE Host NOT IN ('localhost', '%') ORDER BY 1", login);
}

function targetDir(): string {
  return join(RUNNER_BASE_DIR, RUNNER, 'claims', 'default', 'backups', 'gb');
}

function backups(method: string): string[] {
  return readdirSync(targetDir()).filter((n) => n.endsWith(`-${method}`) && existsSync(join(targetDir(), n, 'manifest.json'))).sort();
}

function galeraProps(name: string): GaleraClusterProps {
  return {
    name,
    version: EngineVersion.MARIADB_11_4,
    storage: Size.gibibytes(2),
    primaryComponentTimeout: Duration.seconds(30),
    serverOptions: { innodb_buffer_pool_size: '64M', innodb_log_file_size: '32M', wsrep_provider_options: 'gcache.size=64M' },
  };
}

function chart(): Chart {
  const c = Testing.chart();
  new kplus.Secret(c, 'Credentials', { metadata: { name: 'gb-credentials' }, stringData: { 'root-password': ROOT_PASSWORD, 'sst-password': 'sst "pw" 1' } });
  new k8s.KubePersistentVolumeClaim(c, 'Backups', {
    metadata: { name: 'backups' },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: k8s.Quantity.fromString('5Gi') } } },
  });
  const db = new GaleraCluster(c, 'Galera', galeraProps('gb'));
  const target = BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'backups'));
  db.addBackupSchedule('Nightly', { target, times: '01:01' });
  db.addBackupSchedule('Dump', { target, method: BackupMethod.LOGICAL, times: '02:30' });
  return c;
}

/** A new cluster `gr` with its own passwords, started from one backup in the `gb` directory. */
function restoredChart(backup: string): Chart {
  const c = Testing.chart();
  new kplus.Secret(c, 'Credentials', { metadata: { name: 'gr-credentials' }, stringData: { 'root-password': NEW_ROOT_PASSWORD, 'sst-password': 'other sst pw' } });
  new GaleraCluster(c, 'Galera', {
    ...galeraProps('gr'),
    restoreFrom: { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'backups'), { path: 'gb' }), backup },
  });
  return c;
}

/**
 * Writes rows into e2e.w from inside a pod, one autocommit INSERT at a time, until /tmp/stop-writes
 * exists; resolves with the acknowledged and the failed keys.
 */
async function writeUntilStopped(pod: string): Promise<{ ok: string[]; failed: string[] }> {
  const script = `rm -f /tmp/stop-writes; i=0
    while [[ ! -e /tmp/stop-writes ]]; do
      i=$((i + 1))
      if mariadb --defaults-extra-file=/run/mysqld/client.cnf --connect-timeout=5 -e "INSERT INTO e2e.w (k) VALUES ('${pod}-$i')" 2>/dev/null; then
        echo "ok ${pod}-$i"
      else
        echo "failed ${pod}-$i"
      fi
      sleep 0.05
    done`;
  const r = await rt.exec(pod, 'mariadb', ['bash', '-c', script], { timeoutMs: 400_000 });
  const lines = r.stdout.split('\n').filter((l) => l);
  return {
    ok: lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3)),
    failed: lines.filter((l) => l.startsWith('failed ')).map((l) => l.slice(7)),
  };
}

beforeAll(async () => {
  client = new SqlClient(() => rt, { logins: { 'root.cnf': ROOT_PASSWORD, 'new-root.cnf': NEW_ROOT_PASSWORD }, causalReads: true });
  rt = await PodRunner.start({ name: RUNNER, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

afterAll(async () => {
  await rt?.stop();
  client?.remove();
  console.log(`galera backup e2e: ${seconds(started)} in all\n${timings.join('\n')}`);
});

test('a loaded Galera cluster is backed up by its CronJob while every node takes writes, its restore Jobs put lost rows back into it, and a new cluster starts from the backup with equal tables', async () => {
  let t = Date.now();
  await rt.apply(chart());
  await rt.waitForStatefulSetReady('gb', 3, 240_000);
  timings.push(`cluster of 3 ready: ${seconds(t)}`);
  // the backup Jobs log in as root from other pods; no account is named after a pod
  expect(await hostNamedAccounts('gb-0.gb')).toEqual('');
  expect(await sql('gb-0.gb', "SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host = '%'")).toEqual('1');

  t = Date.now();
  await sql('gb-client', `CREATE DATABASE e2e; USE e2e;
    CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(64), pad CHAR(200)) ENGINE=InnoDB;
    CREATE TABLE mid (id INT PRIMARY KEY, v VARCHAR(64), n BIGINT) ENGINE=InnoDB;
    CREATE TABLE small (id INT PRIMARY KEY, v VARCHAR(16)) ENGINE=InnoDB;
    CREATE TABLE w (id BIGINT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(64) NOT NULL UNIQUE) ENGINE=InnoDB;
    INSERT INTO big SELECT seq, CONCAT('row ', seq), REPEAT('p', 200) FROM seq_1_to_${ROWS.big};
    INSERT INTO mid SELECT seq, MD5(seq), seq * seq FROM seq_1_to_${ROWS.mid};
    INSERT INTO small SELECT seq, CONCAT('s', seq) FROM seq_1_to_${ROWS.small};`);
  const statics = ['big', 'mid', 'small'];
  const original = await tables('gb-0.gb', undefined, statics);
  expect(await tables('gb-2.gb', undefined, statics)).toEqual(original);
  timings.push(`loaded ${ROWS.big + ROWS.mid + ROWS.small} rows: ${seconds(t)}`);

  // a pod is ready before its backup sidecar serves (it waits for the server): a backup Job that
  // came sooner would take its copy from the next member, so wait for every sidecar to serve
  for (const pod of ['gb-0', 'gb-1', 'gb-2']) {
    await rt.waitFor(`the backup sidecar of ${pod} to serve`, () => /serving physical copies on port 3307/.test(rt.logs(pod, 'backup')), 60_000, [pod]);
  }

  // the physical backup CronJob, run once as if its schedule fired, while every node takes writes
  t = Date.now();
  const writers = ['gb-0', 'gb-1', 'gb-2'].map((pod) => writeUntilStopped(pod));
  const seen = new Set<string>();
  const readiness = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        seen.add((await galeraState('gb-2.gb')).split(' ').slice(0, 2).join(' '));
        readiness.add(`${rt.isReady('gb-0')} ${rt.isReady('gb-1')} ${rt.isReady('gb-2')}`);
      } catch {
        // the node is busy: try again
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const backup = await rt.runJob('gb-nightly');
  watching = false;
  await watcher;
  await new Promise((r) => setTimeout(r, 1_000));
  await Promise.all(['gb-0', 'gb-1', 'gb-2'].map((pod) => rt.exec(pod, 'mariadb', ['touch', '/tmp/stop-writes'])));
  const written = await Promise.all(writers);
  timings.push(`physical backup Job under writes on 3 nodes: ${seconds(t)}`);
  expect(backup.logs.backup).toMatch(/receiving a physical copy from gb-2\.gb/);
  expect(backup.succeeded).toBe(true);
  // desynchronized while it streamed, as Galera itself logs it (the sampled states may miss a short
  // window on a loaded machine: they are only printed), and ready throughout (it kept up)
  // (the node logs its resync once it has caught up, which may come a little after the Job ends)
  const desyncedAndBack = /Shifting SYNCED -> DONOR\/DESYNCED[\s\S]*Shifting DONOR\/DESYNCED -> JOINED[\s\S]*Shifting JOINED -> SYNCED/;
  await rt.waitFor('gb-2 to log its desync and resync', () => desyncedAndBack.test(rt.logs('gb-2', 'mariadb')), 60_000, ['gb-2']);
  timings.push(`states of gb-2 sampled during the backup: ${[...seen].join(', ')}`);
  expect(readiness).toEqual(new Set(['true true true']));
  expect(rt.logs('gb-2', 'backup')).toMatch(/desynchronized the node; sending a physical copy[\s\S]*sent a complete copy[\s\S]*resynchronized the node/);
  // every node took writes during the backup, and none failed
  for (const w of written) {
    expect(w.failed).toEqual([]);
    expect(w.ok.length).toBeGreaterThan(10);
  }
  // no node is left desynchronized or locked
  for (const host of ['gb-0.gb', 'gb-1.gb', 'gb-2.gb']) {
    expect(await galeraState(host)).toEqual('0 Synced 3 1');
  }
  const acknowledged = written.flatMap((w) => w.ok);
  expect(Number(await sql('gb-1.gb', 'SELECT COUNT(*) FROM e2e.w'))).toEqual(acknowledged.length);

  const [name] = backups('physical');
  expect(readdirSync(join(targetDir(), name)).sort()).toEqual(['backup.xbstream.zst', 'backup.xbstream.zst.sha256', 'manifest.json']);
  expect(readdirSync(join(targetDir(), '.incomplete'))).toEqual([]);
  const manifest = JSON.parse(readFileSync(join(targetDir(), name, 'manifest.json'), 'utf8'));
  const clusterUuid = await sql('gb-0.gb', "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID'");
  expect(manifest).toMatchObject({ name, cluster: 'gb', engine: 'mariadb', method: 'physical', source: 'gb-2.gb' });
  // the position of the copy: the cluster's uuid and a seqno
  expect(manifest.gtid).toMatch(new RegExp(`^${clusterUuid}:\\d+$`));
  const manifestTables = manifest.tables.map((x: any) => `${x.table} ${x.rows} ${x.checksum}`).join('\n');
  // the static tables as they were; the written table as it was at the copy's position
  expect(manifestTables.split('\n').filter((l: string) => !l.startsWith('w ')).join('\n')).toEqual(original);
  const copiedWrites = Number(manifest.tables.find((x: any) => x.table === 'w').rows);
  expect(copiedWrites).toBeGreaterThan(0);
  expect(copiedWrites).toBeLessThanOrEqual(acknowledged.length);

  // a logical schedule of the same cluster
  t = Date.now();
  const logical = await rt.runJob('gb-dump');
  expect(logical.logs.backup).toMatch(/desynchronized and read-locked gb-2\.gb/);
  expect(logical.succeeded).toBe(true);
  expect(backups('logical')).toHaveLength(1);
  expect(await galeraState('gb-2.gb')).toEqual('0 Synced 3 1');
  timings.push(`logical backup Job: ${seconds(t)}`);

  // the restore Jobs put lost rows back into the running cluster through its client Service
  // (their sessions reach different nodes); every node then holds the backup's tables
  const [dump] = backups('logical');
  const dumpTables = JSON.parse(readFileSync(join(targetDir(), dump, 'manifest.json'), 'utf8')).tables
    .map((x: any) => `${x.table} ${x.rows} ${x.checksum}`).join('\n');
  for (const [job, backupName, expected] of [['gb-nightly-restore', name, manifestTables], ['gb-dump-restore', dump, dumpTables]]) {
    t = Date.now();
    await sql('gb-client', "DELETE FROM e2e.big WHERE id <= 1000; DROP TABLE e2e.small; INSERT INTO e2e.w (k) VALUES ('lost')");
    const restore = await rt.runJob(job);
    expect(restore.logs.restore).toMatch(new RegExp(`restored ${backupName} into gb-client: 4 tables match the manifest`));
    expect(restore.succeeded).toBe(true);
    expect(restore.attempts).toBe(1);
    for (const host of ['gb-0.gb', 'gb-1.gb', 'gb-2.gb']) {
      expect(await tables(host)).toEqual(expected);
      expect(await galeraState(host)).toEqual('0 Synced 3 1');
    }
    timings.push(`${job} into the running cluster: ${seconds(t)}`);
  }
  // every connection through the client Service reached a database node (never a Job's pod)
  expect(readFileSync(join(RUNNER_BASE_DIR, RUNNER, 'forwarder.log'), 'utf8')).not.toMatch(/cannot connect to the endpoint/);

  // a new cluster from the physical backup: another name, other passwords
  t = Date.now();
  await rt.apply(restoredChart(name));
  await rt.waitForStatefulSetReady('gr', 3, 300_000);
  timings.push(`new cluster of 3 from the backup ready: ${seconds(t)}`);
  expect(rt.logs('gr-0', 'restore')).toMatch(new RegExp(`backup ${name} is ready to restore \\(physical\\)`));
  expect(rt.logs('gr-0', 'restore-datadir')).toMatch(new RegExp(`4 tables match the manifest of ${name}[\\s\\S]*restored ${name}: this node bootstraps the cluster at the backup's position ${manifest.gtid}`));
  expect(rt.logs('gr-1', 'restore-datadir')).toMatch(/gr-1 is not the first node: it receives its data from the cluster \(SST\)/);
  for (const host of ['gr-0.gr', 'gr-1.gr', 'gr-2.gr']) {
    expect(await galeraState(host, 'new-root.cnf')).toEqual('0 Synced 3 1');
    expect(await tables(host, 'new-root.cnf')).toEqual(manifestTables);
    expect(await hostNamedAccounts(host, 'new-root.cnf')).toEqual('');
  }
  // the restored cluster continues the backup's history, and takes writes through its client Service
  const [uuid, seqno] = manifest.gtid.split(':');
  expect(await sql('gr-1.gr', "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID'", 'new-root.cnf')).toEqual(uuid);
  await sql('gr-client', "INSERT INTO e2e.w (k) VALUES ('after restore')", 'new-root.cnf');
  expect(Number(await sql('gr-2.gr', "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LAST_COMMITTED'", 'new-root.cnf'))).toBeGreaterThan(Number(seqno));
  expect(await sql('gr-2.gr', "SELECT COUNT(*) FROM e2e.w WHERE k = 'after restore'", 'new-root.cnf')).toEqual('1');

  // a restart of ordinal 0 never restores again over its data
  t = Date.now();
  await rt.deletePod('gr-0');
  await rt.waitForReady('gr-0', 180_000);
  expect(rt.logs('gr-0', 'restore')).toMatch(/the volume holds data already: nothing to restore/);
  expect(rt.logs('gr-0', 'restore-datadir')).toMatch(new RegExp(`the data directory was restored already \\(restored_from=${name}`));
  expect(await sql('gr-0.gr', "SELECT COUNT(*) FROM e2e.w WHERE k = 'after restore'", 'new-root.cnf')).toEqual('1');
  timings.push(`restart of the restored ordinal 0: ${seconds(t)}`);
});
