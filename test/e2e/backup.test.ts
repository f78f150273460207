/**
 * BackupSchedule end to end on the pod runner: a loaded MariaDB replication cluster (mariadb:11.4,
 * Debian's 10.11 standing in, every mysql* name hidden) is backed up by its synthesized CronJobs
 * to a PersistentVolumeClaim target; the restore drill passes; a NEW cluster (another name, other
 * passwords) starts from the backup with restoreFrom and its tables equal the original's; the
 * restore Job of a logical schedule puts deleted rows back into the running original cluster.
 * Every assertion is on data, on the files of the target or on the Jobs' outcome.
 */
import { existsSync, readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { Chart, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner, RUNNER_BASE_DIR } from './runner';
import { SqlClient } from './sql-client';
import { BackupMethod, BackupTarget, EngineVersion, MySqlReplicationCluster } from '../../src';

jest.setTimeout(600_000);

const RUNNER = 'backup-e2e';
const ROOT_PASSWORD = 'r00t "pw" #1 \'q\' $HOME';
const NEW_ROOT_PASSWORD = 'n3w "root" #2';
const ROWS = 200_000;

let rt: PodRunner;
let client: SqlClient;
const started = Date.now();
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const timings: string[] = [];

/** SQL as root from the client namespace; `login` names the option file. */
const sql = (host: string, statements: string, login?: string) => client.sql(host, statements, login);
/** "table rows checksum" of every table of the e2e schema, or of the given ones. */
const tables = (host: string, login?: string, only?: string[]) => client.tables(host, login, only);

/** The target directory of the cluster `db` on the claim `backups`. */
function targetDir(): string {
  return join(RUNNER_BASE_DIR, RUNNER, 'claims', 'default', 'backups', 'db');
}

function backups(method: string): string[] {
  return readdirSync(targetDir()).filter((n) => n.endsWith(`-${method}`) && existsSync(join(targetDir(), n, 'manifest.json'))).sort();
}

function chart(): Chart {
  const c = Testing.chart();
  new kplus.Secret(c, 'Credentials', { metadata: { name: 'db-credentials' }, stringData: { 'root-password': ROOT_PASSWORD, 'replication-password': 'repl "pw"' } });
  new k8s.KubePersistentVolumeClaim(c, 'Backups', {
    metadata: { name: 'backups' },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: k8s.Quantity.fromString('5Gi') } } },
  });
  const db = new MySqlReplicationCluster(c, 'Cluster', {
    name: 'db',
    version: EngineVersion.MARIADB_11_4,
    replicas: 2,
    storage: Size.gibibytes(2),
    credentials: kplus.Secret.fromSecretName(c, 'Existing', 'db-credentials'),
  });
  const target = BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'backups'));
  db.addBackupSchedule('Nightly', { target, times: '01:01,13:01', keepLast: 3, restoreDrill: {} });
  db.addBackupSchedule('Logical', { target, method: BackupMethod.LOGICAL, times: '02:30' });
  return c;
}

/** A new cluster `db2` with its own passwords, started from the latest backup in the `db` directory. */
function restoredChart(): Chart {
  const c = Testing.chart();
  new kplus.Secret(c, 'Credentials', { metadata: { name: 'db2-credentials' }, stringData: { 'root-password': NEW_ROOT_PASSWORD, 'replication-password': 'other repl pw' } });
  new MySqlReplicationCluster(c, 'Cluster', {
    name: 'db2',
    version: EngineVersion.MARIADB_11_4,
    replicas: 2,
    storage: Size.gibibytes(2),
    credentials: kplus.Secret.fromSecretName(c, 'Existing', 'db2-credentials'),
    restoreFrom: { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'backups'), { path: 'db' }), backup: 'latest' },
  });
  return c;
}

beforeAll(async () => {
  client = new SqlClient(() => rt, { logins: { 'root.cnf': ROOT_PASSWORD, 'new-root.cnf': NEW_ROOT_PASSWORD } });
  rt = await PodRunner.start({ name: RUNNER, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

afterAll(async () => {
  await rt?.stop();
  client?.remove();
  console.log(`backup e2e: ${seconds(started)} in all\n${timings.join('\n')}`);
});

test('a loaded replication cluster is backed up by its CronJob, the drill passes, a new cluster starts from the backup with equal tables, and the restore Job puts lost rows back', async () => {
  let t = Date.now();
  await rt.apply(chart());
  await rt.waitForStatefulSetReady('db', 2, 240_000);
  timings.push(`cluster of 2 ready: ${seconds(t)}`);

  t = Date.now();
  await sql('db-0.db', `CREATE DATABASE e2e; USE e2e;
    CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64), pad CHAR(200)) ENGINE=InnoDB;
    CREATE TABLE m (id INT PRIMARY KEY, v VARCHAR(16)) ENGINE=MyISAM;
    INSERT INTO t SELECT seq, CONCAT('row ', seq), REPEAT('p', 200) FROM seq_1_to_${ROWS};
    INSERT INTO m SELECT seq, CONCAT('m', seq) FROM seq_1_to_500;`);
  const position = await sql('db-0.db', 'SELECT @@gtid_binlog_pos');
  expect(await sql('db-1.db', `SELECT MASTER_GTID_WAIT('${position}', 120)`)).toBe('0');
  const original = await tables('db-0.db');
  expect(await tables('db-1.db')).toEqual(original);
  timings.push(`loaded ${ROWS} rows: ${seconds(t)}`);

  // the backup CronJob, run once as if its schedule fired
  t = Date.now();
  const backup = await rt.runJob('db-nightly');
  expect(backup.logs.backup).toMatch(/receiving a physical copy from db-1\.db/);
  expect(backup.succeeded).toBe(true);
  timings.push(`physical backup Job: ${seconds(t)}`);
  const [name] = backups('physical');
  expect(readdirSync(join(targetDir(), name)).sort()).toEqual(['backup.xbstream.zst', 'backup.xbstream.zst.sha256', 'manifest.json']);
  const manifest = JSON.parse(readFileSync(join(targetDir(), name, 'manifest.json'), 'utf8'));
  expect(manifest).toMatchObject({ name, engine: 'mariadb', method: 'physical', source: 'db-1.db', gtid: position });
  expect(manifest.tables.map((x: any) => `${x.table} ${x.rows} ${x.checksum}`).join('\n')).toEqual(original);
  expect(readdirSync(join(targetDir(), '.incomplete'))).toEqual([]);

  t = Date.now();
  const drill = await rt.runJob('db-nightly-drill');
  expect(drill.logs.drill).toMatch(new RegExp(`restore drill passed: ${name} restores, and its 2 tables match`));
  expect(drill.succeeded).toBe(true);
  timings.push(`restore drill Job: ${seconds(t)}`);

  // a new cluster from the backup: another name, other passwords
  t = Date.now();
  await rt.apply(restoredChart());
  await rt.waitForStatefulSetReady('db2', 2, 240_000);
  timings.push(`new cluster of 2 from the backup ready: ${seconds(t)}`);
  expect(rt.logs('db2-0', 'restore')).toMatch(new RegExp(`backup ${name} is ready to restore \\(physical\\)`));
  expect(rt.logs('db2-0', 'init')).toMatch(new RegExp(`restored ${name}: 2 tables match its manifest`));
  expect(await tables('db2-0.db2', 'new-root.cnf')).toEqual(original);
  await sql('db2-0.db2', 'INSERT INTO e2e.t VALUES (-1, "new", "")', 'new-root.cnf');
  const position2 = await sql('db2-0.db2', 'SELECT @@gtid_binlog_pos', 'new-root.cnf');
  expect(position2).toEqual(position.replace(/-(\d+)$/, (_, n) => `-${Number(n) + 1}`));
  expect(await sql('db2-1.db2', `SELECT MASTER_GTID_WAIT('${position2}', 120)`, 'new-root.cnf')).toBe('0');
  expect(await tables('db2-1.db2', 'new-root.cnf')).toEqual(await tables('db2-0.db2', 'new-root.cnf'));
  await rt.scale('db2', 0);

  // the restore Job of the logical schedule: lost rows come back, the replica follows
  t = Date.now();
  const logical = await rt.runJob('db-logical');
  expect(logical.logs.backup).toMatch(/paused the SQL thread of replica db-1\.db/);
  expect(logical.succeeded).toBe(true);
  await sql('db-0.db', 'DELETE FROM e2e.t WHERE id <= 1000; DROP TABLE e2e.m;');
  const restore = await rt.runJob('db-logical-restore');
  expect(restore.logs.restore).toMatch(/restored \d{8}T\d{6}Z-logical into db-write: 2 tables match the manifest/);
  expect(restore.succeeded).toBe(true);
  expect(await tables('db-0.db')).toEqual(original);
  const position3 = await sql('db-0.db', 'SELECT @@gtid_binlog_pos');
  expect(await sql('db-1.db', `SELECT MASTER_GTID_WAIT('${position3}', 120)`)).toBe('0');
  expect(await tables('db-1.db')).toEqual(original);
  timings.push(`logical backup and restore Jobs: ${seconds(t)}`);
});
