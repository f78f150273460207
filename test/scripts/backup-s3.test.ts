/**
 * Backups to S3-compatible object storage: the backup, restore and drill scripts with Debian's
 * rclone (1.60, standing in for the rclone/rclone image's binary) against a local S3 server
 * (s3rver) on loopback, backing up a one-pod MariaDB 10.11 cluster run by its own scripts (its
 * primary is then the only member, so a logical backup read-locks it). See backup-harness.ts.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupMethod, BackupTarget, EngineVersion, MySqlReplicationCluster } from '../../src';
import { one, synth } from '../util';
import { ClusterPod, ClusterSpec, freePort, Host, kill, listening, tableLines, waitFor } from './backup-harness';
import { Job, jobContainers } from './backup-job';

/**
 * Starts s3rver in a process of its own (the test's synchronous rclone calls would block a server
 * in the test's own event loop) and resolves with its port.
 */
async function startS3(directory: string, bucket: string): Promise<{ child: ChildProcess; port: number }> {
  const code = `const S3rver = require(${JSON.stringify(require.resolve('s3rver'))});
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(directory)}, configureBuckets: [{ name: ${JSON.stringify(bucket)} }] })
      .run().then(({ port }) => console.log('port ' + port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      const m = /port (\d+)/.exec(b.toString());
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code2) => reject(new Error(`s3rver exited (${code2})`)));
  });
  return { child, port };
}

jest.setTimeout(180_000);

const BUCKET = 'db-backups';

describe('backups to S3-compatible storage (rclone against a local S3 server)', () => {
  const host = new Host('backup-s3');
  let s3: ChildProcess | undefined;
  let endpoint: string;
  let rcloneConf: string;
  let cluster: ClusterSpec;
  let pod: ClusterPod;
  let physical: Job;
  let logical: Job;
  let drill: Job;
  let logicalDrill: Job;
  let restore: Job;

  /** rclone as the test sees the bucket (a configuration of its own). */
  function rclone(...args: string[]): string {
    return execFileSync('rclone', ['--config', rcloneConf, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: host.root } });
  }

  /** Every object under the cluster's prefix, sorted. */
  function objects(): string[] {
    return rclone('lsf', '-R', '--files-only', `t:${BUCKET}/s3`).split('\n').filter((l) => l).sort();
  }

  function completeNames(method: string): string[] {
    return objects().filter((o) => new RegExp(`^\\d{8}T\\d{6}Z-${method}/manifest\\.json$`).test(o)).map((o) => o.split('/')[0]).sort();
  }

  beforeAll(async () => {
    const server = await startS3(path.join(host.root, 's3'), BUCKET);
    s3 = server.child;
    const port = server.port;
    endpoint = `http://127.0.0.1:${port}`;
    rcloneConf = path.join(host.root, 'rclone.conf');
    fs.writeFileSync(rcloneConf, `[t]\ntype = s3\nprovider = Other\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\nendpoint = ${endpoint}\nforce_path_style = true\n`);
    const s3Secrets = path.join(host.root, 's3-credentials');
    fs.mkdirSync(s3Secrets);
    fs.writeFileSync(path.join(s3Secrets, 'access-key-id'), 'S3RVER');
    fs.writeFileSync(path.join(s3Secrets, 'secret-access-key'), 'S3RVER');

    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 's3', version: EngineVersion.MARIADB_10_11, replicas: 1 });
    const target = BackupTarget.s3({ bucket: BUCKET, endpoint: 'http://minio.storage.svc:9000', credentials: kplus.Secret.fromSecretName(chart, 'S3', 's3-credentials') });
    db.addBackupSchedule('Physical', { target, restoreDrill: {} });
    db.addBackupSchedule('Logical', { target, method: BackupMethod.LOGICAL, restoreDrill: {} });
    const manifests = synth(chart);
    const secrets = path.join(host.root, 'credentials');
    fs.mkdirSync(secrets);
    fs.writeFileSync(path.join(secrets, 'root-password'), 'root-pw');
    fs.writeFileSync(path.join(secrets, 'replication-password'), 'repl-pw');
    cluster = {
      name: 's3',
      env: Object.fromEntries(one(manifests, 'StatefulSet').spec.template.spec.initContainers[0].env.map((e: { name: string; value: string }) => [e.name, e.value])),
      config: one(manifests, 'ConfigMap', 's3-config').data,
      secrets,
      dbPort: await freePort(),
      seedPort: await freePort(),
    };
    // the rclone binary of this host instead of the copy from the image; no CA bundle for http
    const overrides = { S3_ENDPOINT: endpoint, S3_SECRETS_DIR: s3Secrets, RCLONE: '/usr/bin/rclone', RCLONE_CA_FILE: '' };
    physical = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 's3-physical')), overrides);
    logical = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 's3-logical')), overrides);
    drill = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 's3-physical-drill')), overrides);
    logicalDrill = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 's3-logical-drill')), overrides);
    restore = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 's3-logical-restore')), { ...overrides, WRITE_HOST: 's3-0.s3' });

    pod = new ClusterPod(host, cluster, 0);
    await pod.boot();
    pod.start('replication-donor.sh');
    await waitFor('the donor listens', () => listening(cluster.seedPort));
    pod.sql(`CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;
      CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB;
      USE app; INSERT INTO app.t SELECT seq, CONCAT('row ', seq) FROM seq_1_to_5000;`);
  });

  afterAll(async () => {
    await pod?.stopAll();
    if (s3 && s3.exitCode === null) {
      const exited = new Promise((r) => s3!.once('exit', r));
      s3.kill('SIGTERM');
      await exited;
    }
    host.remove();
  }, 60_000);

  test('a physical backup is uploaded under .incomplete/ and moved into place, manifest last; nothing else remains', async () => {
    const run = await physical.run();
    expect(run.log).toMatch(/receiving a physical copy from s3-0\.s3/);
    expect(run.succeeded).toBe(true);
    const [name] = completeNames('physical');
    expect(objects()).toEqual([`${name}/backup.xbstream.zst`, `${name}/backup.xbstream.zst.sha256`, `${name}/manifest.json`]);
    const m = JSON.parse(rclone('cat', `t:${BUCKET}/s3/${name}/manifest.json`));
    expect(m).toMatchObject({ name, method: 'physical', source: 's3-0.s3', engine: 'mariadb' });
    const sha = execFileSync('sha256sum', { input: execFileSync('rclone', ['--config', rcloneConf, 'cat', `t:${BUCKET}/s3/${name}/backup.xbstream.zst`], { env: { PATH: process.env.PATH!, HOME: host.root }, maxBuffer: 256 * 1024 * 1024 }), encoding: 'utf8' }).split(' ')[0];
    expect(m.sha256).toEqual(sha);
    expect(rclone('cat', `t:${BUCKET}/s3/${name}/backup.xbstream.zst.sha256`)).toEqual(`${sha}  backup.xbstream.zst\n`);
    // the credentials never reach a command line or a log
    expect(run.log).not.toMatch(/S3RVER/);
  });

  test('a logical backup of a primary without replicas read-locks it for the backup, so its checksums and dump are of one position', async () => {
    const before = { gtid: Number(pod.sql('SELECT @@gtid_binlog_pos').split('-')[2]), rows: Number(pod.sql('SELECT COUNT(*) FROM app.w')) };
    const writer = spawn('bash', ['-c', `while :; do mariadb --defaults-extra-file=${pod.run}/root.cnf -e 'INSERT INTO app.w (v) VALUES (1)' || exit 1; sleep 0.01; done`], { detached: true, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const run = await logical.run();
    kill(writer, 'SIGTERM');
    await new Promise((r) => writer.once('exit', r));
    expect(run.log).toMatch(/s3-0\.s3 is the only member: writes wait for the global read lock of this logical backup/);
    expect(run.succeeded).toBe(true);
    const [name] = completeNames('logical');
    const m = JSON.parse(rclone('cat', `t:${BUCKET}/s3/${name}/manifest.json`));
    const gtid = Number(m.gtid.split('-')[2]);
    expect(gtid).toBeGreaterThan(before.gtid);
    expect(m.tables.find((t: any) => t.table === 'w').rows).toEqual(before.rows + gtid - before.gtid);
    // the lock is gone: writes go on
    pod.sql('INSERT INTO app.w (v) VALUES (2)');
  });

  test('the restore drill fetches from S3 and passes for both methods', async () => {
    for (const job of [drill, logicalDrill]) {
      const run = await job.run();
      expect(run.log).toMatch(/restore drill passed: \d{8}T\d{6}Z-(physical|logical) restores, and its 2 tables match/);
      expect(run.succeeded).toBe(true);
    }
  });

  test('the restore Job loads the latest logical backup from S3 into the cluster', async () => {
    const [name] = completeNames('logical');
    const expected = JSON.parse(rclone('cat', `t:${BUCKET}/s3/${name}/manifest.json`)).tables.map((t: any) => JSON.stringify(t).replace(/":/g, '": ').replace(/,"/g, ', "'));
    pod.sql('TRUNCATE TABLE app.t;');
    const run = await restore.run();
    expect(run.succeeded).toBe(true);
    expect(tableLines(pod)).toEqual(expected);
  });

  test('an interrupted upload or move is never a backup: invisible to restores, removed once stale', async () => {
    const [good] = completeNames('logical');
    // a crash after the upload under .incomplete/, and one before the manifest was moved
    const staged = '20991231T000000Z-logical';
    const unfinished = '20991231T000001Z-logical';
    const local = path.join(host.root, 'fake');
    fs.mkdirSync(local);
    fs.writeFileSync(path.join(local, 'backup.sql.zst'), 'partial');
    fs.writeFileSync(path.join(local, 'manifest.json'), '{}');
    rclone('copy', local, `t:${BUCKET}/s3/.incomplete/${staged}`);
    rclone('copyto', path.join(local, 'backup.sql.zst'), `t:${BUCKET}/s3/${unfinished}/backup.sql.zst`);
    const run = await logicalDrill.run();
    expect(run.log).toMatch(new RegExp(`fetching backup ${good}`));
    expect(run.succeeded).toBe(true);
    // names from the future are not stale yet; from the past they are
    const old = ['20200101T000000Z-logical', '20200101T000001Z-logical'];
    rclone('copy', local, `t:${BUCKET}/s3/.incomplete/${old[0]}`);
    rclone('copyto', path.join(local, 'backup.sql.zst'), `t:${BUCKET}/s3/${old[1]}/backup.sql.zst`);
    const backup = await logical.run();
    expect(backup.succeeded).toBe(true);
    expect(backup.log).toMatch(new RegExp(`removing the leftovers of ${old[1]} \\(unfinished`));
    expect(backup.log).toMatch(new RegExp(`removing the leftovers of ${old[0]} \\(incomplete`));
    const left = objects();
    expect(left.filter((o) => o.includes('2020'))).toEqual([]);
    expect(left).toEqual(expect.arrayContaining([`.incomplete/${staged}/backup.sql.zst`, `${unfinished}/backup.sql.zst`]));
    rclone('purge', `t:${BUCKET}/s3/.incomplete/${staged}`);
    rclone('purge', `t:${BUCKET}/s3/${unfinished}`);
  });

  test('retention on S3: aged backups beyond the newest N are deleted, the other method\'s stay', async () => {
    const local = path.join(host.root, 'aged');
    fs.mkdirSync(local);
    fs.writeFileSync(path.join(local, 'manifest.json'), '{}');
    const aged = ['20240101T010000Z-logical', '20240201T010000Z-logical', '20240301T010000Z-logical'];
    for (const n of aged) rclone('copy', local, `t:${BUCKET}/s3/${n}`);
    const physicalBefore = completeNames('physical');
    const run = await logical.run({ KEEP_LAST: '2' });
    expect(run.succeeded).toBe(true);
    const left = completeNames('logical');
    expect(left).toHaveLength(2);
    expect(left.some((n) => aged.includes(n))).toBe(false);
    expect(completeNames('physical')).toEqual(physicalBefore);
  });

  test('wrong S3 credentials fail the backup with the storage\'s error, and nothing becomes visible', async () => {
    const bad = path.join(host.root, 'bad-credentials');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'access-key-id'), 'NOT-A-KEY');
    fs.writeFileSync(path.join(bad, 'secret-access-key'), 'wrong-secret');
    const before = objects();
    const run = await logical.run({ S3_SECRETS_DIR: bad });
    expect(run.succeeded).toBe(false);
    expect(run.log).toMatch(/InvalidAccessKeyId/);
    expect(run.log).toMatch(/FATAL: cannot list s3:\/\/db-backups\/s3/);
    expect(run.log).not.toMatch(/wrong-secret/);
    expect(objects()).toEqual(before);
  });
});
