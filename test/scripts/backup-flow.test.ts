/**
 * The backup, restore and drill scripts, unmodified, run for real against a MariaDB 10.11
 * replication cluster run by its own scripts (see backup-harness.ts), with the environment the
 * constructs synthesize: physical and logical backups taken from a replica while the primary is
 * written to, checksums and manifests exact for the backup's position, interrupted and truncated
 * backups, retention with aged backups seeded, the restore drill on good and corrupt backups, a
 * restore into the running cluster, and new clusters started from a physical and a logical
 * backup (restoreFrom).
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

jest.setTimeout(240_000);

/** Passwords with quotes, a backslash, '#', ';' and '$', to prove they are quoted everywhere. */
const ROOT_PASSWORD = 'r00t "pa\'ss" #1 \\ $HOME';
const REPLICATION_PASSWORD = 'repl;pa\'ss"2`id`';

interface Manifest {
  readonly name: string;
  readonly engine: string;
  readonly serverVersion: string;
  readonly method: string;
  readonly source: string;
  readonly gtid: string;
  readonly artifact: string;
  readonly compression: string;
  readonly size: number;
  readonly sha256: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly tables: { schema: string; table: string; rows: number; checksum: number }[];
}

describe('backups of a MariaDB replication cluster, run by the scripts', () => {
  const host = new Host('backup-flow');
  const target = path.join(host.root, 'target');
  const pods: ClusterPod[] = [];
  let cluster: ClusterSpec;
  let physical: Job;
  let logical: Job;
  let drill: Job;
  let logicalDrill: Job;
  let restore: Job;
  let restoredCluster: (name: string, backup: string) => { restore: Record<string, string>; init: Record<string, string>; spec: ClusterSpec };
  let writer: ChildProcess | undefined;

  function primary(): ClusterPod {
    return pods[0];
  }

  function manifest(name: string): Manifest {
    return JSON.parse(fs.readFileSync(path.join(target, 'rt', name, 'manifest.json'), 'utf8'));
  }

  /** Names of the complete backups in the target directory, oldest first. */
  function complete(): string[] {
    return fs.readdirSync(path.join(target, 'rt')).filter((n) => /^\d{8}T\d{6}Z-/.test(n) && fs.existsSync(path.join(target, 'rt', n, 'manifest.json'))).sort();
  }

  function entries(): string[] {
    const dir = path.join(target, 'rt');
    const top = fs.readdirSync(dir).filter((n) => n !== '.incomplete');
    const incomplete = fs.existsSync(path.join(dir, '.incomplete')) ? fs.readdirSync(path.join(dir, '.incomplete')).map((n) => `.incomplete/${n}`) : [];
    return [...top, ...incomplete].sort();
  }

  function newest(method: string): string {
    return complete().filter((n) => n.endsWith(`-${method}`)).pop()!;
  }

  /** GTID sequence number of a single-domain position 0-100-N. */
  function seq(gtid: string): number {
    const m = /^0-100-(\d+)$/.exec(gtid);
    if (!m) throw new Error(`unexpected GTID position '${gtid}'`);
    return Number(m[1]);
  }

  /** Inserts one row per transaction into app.w until stopped; returns the position and rows before it started. */
  function startWriter(): { gtid: number; rows: number } {
    const before = { gtid: seq(primary().sql('SELECT @@gtid_binlog_pos')), rows: Number(primary().sql('SELECT COUNT(*) FROM app.w')) };
    writer = spawn('bash', ['-c', `while :; do mariadb --defaults-extra-file=${primary().run}/root.cnf -e 'INSERT INTO app.w (v) VALUES (1)' || exit 1; sleep 0.01; done`], { detached: true, stdio: 'ignore' });
    return before;
  }

  async function stopWriter(): Promise<void> {
    if (!writer) return;
    const exited = new Promise((r) => writer!.once('exit', r));
    kill(writer, 'SIGTERM');
    await exited;
    writer = undefined;
  }

  /** Waits until a replica has applied everything the primary has. */
  function caughtUp(replica: ClusterPod, source: ClusterPod = primary()): void {
    const position = source.sql('SELECT @@gtid_binlog_pos');
    expect(replica.sql(`SELECT MASTER_GTID_WAIT('${position}', 60)`)).toEqual('0');
  }

  /** The manifest is exact: the rows of app.w are those written up to its GTID position. */
  function expectExact(m: Manifest, before: { gtid: number; rows: number }): void {
    const w = m.tables.find((t) => t.schema === 'app' && t.table === 'w')!;
    expect(seq(m.gtid)).toBeGreaterThan(before.gtid);
    expect(w.rows).toEqual(before.rows + seq(m.gtid) - before.gtid);
  }

  beforeAll(async () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'rt', version: EngineVersion.MARIADB_10_11, replicas: 3 });
    const claim = kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups');
    db.addBackupSchedule('Physical', { target: BackupTarget.persistentVolumeClaim(claim), keepLast: 20, restoreDrill: {} });
    db.addBackupSchedule('Logical', { target: BackupTarget.persistentVolumeClaim(claim), method: BackupMethod.LOGICAL, keepLast: 20, restoreDrill: {} });
    // new clusters from the old one's backups: another name, so the target names the old directory
    const restoredChart = Testing.chart();
    const manifests = synth(chart);
    const initContainer = one(manifests, 'StatefulSet').spec.template.spec.initContainers[0];
    const secrets = path.join(host.root, 'credentials');
    fs.mkdirSync(secrets);
    fs.writeFileSync(path.join(secrets, 'root-password'), ROOT_PASSWORD);
    fs.writeFileSync(path.join(secrets, 'replication-password'), REPLICATION_PASSWORD);
    cluster = {
      name: 'rt',
      env: Object.fromEntries(initContainer.env.map((e: { name: string; value: string }) => [e.name, e.value])),
      config: one(manifests, 'ConfigMap', 'rt-config').data,
      secrets,
      dbPort: await freePort(),
      seedPort: await freePort(),
    };
    const overrides = { TARGET_DIR: path.join(target, 'rt') };
    physical = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 'rt-physical')), overrides);
    logical = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 'rt-logical')), overrides);
    drill = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 'rt-physical-drill')), overrides);
    logicalDrill = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 'rt-logical-drill')), overrides);
    restore = new Job(host, cluster, jobContainers(one(manifests, 'CronJob', 'rt-logical-restore')), { ...overrides, WRITE_HOST: 'rt-0.rt' });
    fs.mkdirSync(path.join(target, 'rt'), { recursive: true });

    restoredCluster = (name, backup) => {
      const claim2 = kplus.PersistentVolumeClaim.fromClaimName(restoredChart, `Claim-${name}`, 'backups');
      new MySqlReplicationCluster(restoredChart, name, {
        name,
        version: EngineVersion.MARIADB_10_11,
        replicas: 2,
        restoreFrom: { target: BackupTarget.persistentVolumeClaim(claim2, { path: 'rt' }), backup },
      });
      const all = synth(restoredChart);
      const sts = one(all, 'StatefulSet', name).spec.template.spec;
      const envOf = (c: any) => Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
      const [restoreContainer, init] = sts.initContainers;
      expect([restoreContainer.name, init.name]).toEqual(['restore', 'init']);
      return {
        restore: { ...envOf(restoreContainer), TARGET_DIR: path.join(target, 'rt') },
        init: envOf(init),
        spec: { ...cluster, name, env: envOf(init), config: one(all, 'ConfigMap', `${name}-config`).data },
      };
    };

    // the cluster: a primary, a replica seeded from it, data of every kind
    const p0 = new ClusterPod(host, cluster, 0);
    pods.push(p0);
    await p0.boot();
    p0.start('replication-donor.sh');
    await waitFor('the primary\'s donor listens', () => listening(cluster.seedPort));
    p0.sql(`CREATE DATABASE app;
      CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64), d DATETIME, b BLOB) ENGINE=InnoDB;
      CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB;
      CREATE TABLE app.m (id INT PRIMARY KEY, v VARCHAR(16)) ENGINE=MyISAM;
      CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, t_id INT) ENGINE=InnoDB;
      CREATE TRIGGER app.t_audit AFTER INSERT ON app.t FOR EACH ROW INSERT INTO app.audit (t_id) VALUES (NEW.id);
      CREATE PROCEDURE app.add_rows(n INT) INSERT INTO app.m SELECT seq, CONCAT('m', seq) FROM seq_1_to_100 WHERE seq <= n;
      CREATE EVENT app.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM app.audit WHERE id < 0;
      CREATE DATABASE \`other db\`; CREATE TABLE \`other db\`.\`we\`\`ird\` (id INT) ENGINE=InnoDB; INSERT INTO \`other db\`.\`we\`\`ird\` VALUES (1), (2);
      CREATE USER 'app'@'%' IDENTIFIED BY 'app-password'; GRANT SELECT, INSERT ON app.* TO 'app'@'%';
      USE app; INSERT INTO app.t SELECT seq, CONCAT('row ', seq), '2025-01-01 00:00:00', REPEAT('x', seq % 50) FROM seq_1_to_20000;
      CALL app.add_rows(50); INSERT INTO app.w (v) SELECT seq FROM seq_1_to_100;`);
    const p1 = new ClusterPod(host, cluster, 1);
    pods.push(p1);
    await p1.boot();
    caughtUp(p1);
    await p0.stop('replication-donor.sh');
    await waitFor('the donor port is free', () => !listening(cluster.seedPort));
    p1.start('replication-donor.sh');
    await waitFor('the replica\'s donor listens', () => listening(cluster.seedPort));
  });

  afterAll(async () => {
    await stopWriter();
    for (const p of pods) await p.stopAll();
    host.remove();
  }, 120_000);

  test('a physical backup comes from a ready replica while the primary is written to; artifact, checksum and an exact manifest appear only when complete', async () => {
    const before = startWriter();
    const started = Date.now();
    const run = await physical.run();
    const seconds = (Date.now() - started) / 1000;
    await stopWriter();
    expect(run.log).toMatch(/receiving a physical copy from rt-2\.rt[\s\S]*no usable copy from rt-2\.rt/);
    expect(run.log).toMatch(/receiving a physical copy from rt-1\.rt/);
    expect(run.succeeded).toBe(true);
    const name = newest('physical');
    expect(entries()).toEqual([name]);
    expect(fs.readdirSync(path.join(target, 'rt', '.incomplete'))).toEqual([]);
    expect(fs.readdirSync(path.join(target, 'rt', name)).sort()).toEqual(['backup.xbstream.zst', 'backup.xbstream.zst.sha256', 'manifest.json']);
    const m = manifest(name);
    const artifact = path.join(target, 'rt', name, 'backup.xbstream.zst');
    const sha = execFileSync('sha256sum', [artifact], { encoding: 'utf8' }).split(' ')[0];
    expect(fs.readFileSync(`${artifact}.sha256`, 'utf8')).toEqual(`${sha}  backup.xbstream.zst\n`);
    expect(m).toMatchObject({
      name,
      engine: 'mariadb',
      method: 'physical',
      source: 'rt-1.rt',
      artifact: 'backup.xbstream.zst',
      compression: 'zstd',
      size: fs.statSync(artifact).size,
      sha256: sha,
    });
    expect(m.serverVersion).toMatch(/^10\.11\./);
    expect(Date.parse(m.finishedAt)).toBeGreaterThanOrEqual(Date.parse(m.startedAt));
    expect(m.tables.map((t) => `${t.schema}.${t.table}`)).toEqual(['app.audit', 'app.m', 'app.t', 'app.w', 'other db.we`ird']);
    expect(m.tables.find((t) => t.table === 't')!.rows).toEqual(20000);
    expectExact(m, before);
    console.log(`physical backup ${name} at ${m.gtid}: ${m.size} bytes in ${seconds.toFixed(1)} s`);
  });

  test('while a backup holds the lock, the replica\'s agent leaves a paused SQL thread stopped; it restarts it once the lock is gone', async () => {
    const p1 = pods[1];
    const session = spawn('mariadb', [`--defaults-extra-file=${p1.run}/root.cnf`, '--batch'], { stdio: ['pipe', 'ignore', 'ignore'] });
    session.stdin!.write("SELECT GET_LOCK('cdk8s_mysql_backup', 0); STOP REPLICA SQL_THREAD;\n");
    await waitFor('the SQL thread stops', () => p1.status().Slave_SQL_Running === 'No');
    await new Promise((r) => setTimeout(r, 7000)); // more than one pass of the agent
    expect(p1.status()).toMatchObject({ Slave_SQL_Running: 'No', Slave_IO_Running: 'Yes' });
    session.stdin!.end();
    await waitFor('the agent restarts the SQL thread', () => p1.status().Slave_SQL_Running === 'Yes', 20_000);
    // the lock name the agent checks is the backup's
    const agentLock = /readonly BACKUP_LOCK_NAME=(\S+)/.exec(fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'scripts', 'replication-lib.sh'), 'utf8'))![1];
    const backupLock = /readonly BACKUP_LOCK=(\S+)/.exec(fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'scripts', 'backup-lib.sh'), 'utf8'))![1];
    expect(agentLock).toEqual(backupLock);
  });

  test('a logical backup pauses the replica\'s SQL thread, so its checksums and dump are of one position, while the primary keeps taking writes', async () => {
    const p1 = pods[1];
    const before = startWriter();
    const run = await logical.run();
    const primaryPosition = seq(primary().sql('SELECT @@gtid_binlog_pos'));
    await stopWriter();
    expect(run.log).toMatch(/paused the SQL thread of replica rt-1\.rt/);
    expect(run.succeeded).toBe(true);
    const name = newest('logical');
    const m = manifest(name);
    expect(m).toMatchObject({ method: 'logical', source: 'rt-1.rt', artifact: 'backup.sql.zst' });
    expectExact(m, before);
    // the primary was not held back
    expect(primaryPosition).toBeGreaterThan(before.gtid);
    // the replica runs again and catches up
    await waitFor('the SQL thread runs', () => p1.status().Slave_SQL_Running === 'Yes', 20_000);
    caughtUp(p1);
    const dump = execFileSync('zstd', ['-dc', path.join(target, 'rt', name, 'backup.sql.zst')], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    expect(dump).toMatch(/CREATE\*\/ .*TRIGGER app\.t_audit AFTER INSERT ON app\.t/);
    expect(dump).toMatch(/CREATE .*PROCEDURE `add_rows`/);
    expect(dump).toMatch(/CREATE\*\/ .*EVENT `nightly`/);
    const accounts = dump.slice(dump.indexOf('-- cdk8s-mysql: user accounts'));
    expect(accounts).toMatch(/CREATE USER IF NOT EXISTS `app`@`%`/);
    expect(accounts).toMatch(/GRANT SELECT, INSERT ON `app`\.\* TO `app`@`%`/);
    // the cluster's own accounts are never in a backup: a restore keeps the Secret's
    expect(accounts).not.toMatch(/`root`@|`repl`@/);
    expect(dump.trimEnd().split('\n').pop()).toEqual('-- cdk8s-mysql: end of backup');
  });

  test('the restore drill restores the latest physical and logical backups into a throwaway server and passes', async () => {
    for (const [job, method] of [[drill, 'physical'], [logicalDrill, 'logical']] as const) {
      const run = await job.run();
      expect(run.log).toMatch(new RegExp(`restore drill passed: ${newest(method)} restores, and its 5 tables match`));
      expect(run.succeeded).toBe(true);
    }
    // no throwaway server is left running
    expect(execFileSync('bash', ['-c', `pgrep -af '[m]ariadbd.*${host.root}/jobs' || true`], { encoding: 'utf8' }).trim()).toEqual('');
  });

  describe('the restore drill fails loudly', () => {
    /** A copy of the newest backup of a method under a newer name, changed by `edit`. */
    function corruptCopy(method: string, edit: (dir: string) => void): string {
      const source = newest(method);
      const name = `29991231T235959Z-${method}`;
      const dir = path.join(target, 'rt', name);
      fs.cpSync(path.join(target, 'rt', source), dir, { recursive: true });
      const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'manifest.json'), fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8').replace(`"name": "${m.name}"`, `"name": "${name}"`));
      edit(dir);
      return dir;
    }

    /** Rewrites the checksum file and the manifest's sha256 and size after a change of the artifact. */
    function reseal(dir: string, artifact: string): void {
      const file = path.join(dir, artifact);
      const sha = execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];
      fs.writeFileSync(`${file}.sha256`, `${sha}  ${artifact}\n`);
      const text = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')
        .replace(/"sha256": "[0-9a-f]+"/, `"sha256": "${sha}"`).replace(/"size": \d+/, `"size": ${fs.statSync(file).size}`);
      fs.writeFileSync(path.join(dir, 'manifest.json'), text);
    }

    afterEach(() => {
      for (const n of fs.readdirSync(path.join(target, 'rt')).filter((x) => x.startsWith('2999'))) fs.rmSync(path.join(target, 'rt', n), { recursive: true });
    });

    test('on an artifact that does not match its checksum', async () => {
      corruptCopy('physical', (dir) => {
        const file = path.join(dir, 'backup.xbstream.zst');
        const bytes = fs.readFileSync(file);
        const middle = Math.floor(bytes.length / 2);
        bytes[middle] = 255 - bytes[middle];
        fs.writeFileSync(file, bytes);
      });
      const run = await drill.run();
      expect(run.succeeded).toBe(false);
      expect(run.failed).toEqual('fetch');
      expect(run.log).toMatch(/FATAL: BACKUP 29991231T235959Z-physical IS CORRUPT: the SHA-256 of backup.xbstream.zst is [0-9a-f]{64}, its checksum file says [0-9a-f]{64} and its manifest [0-9a-f]{64}/);
    });

    test('on a truncated copy whose checksums were rewritten', async () => {
      corruptCopy('physical', (dir) => {
        const file = path.join(dir, 'backup.xbstream.zst');
        const plain = execFileSync('zstd', ['-dc', file], { maxBuffer: 512 * 1024 * 1024 });
        fs.writeFileSync(file, execFileSync('zstd', ['-q', '-c'], { input: plain.subarray(0, Math.floor(plain.length * 0.7)), maxBuffer: 512 * 1024 * 1024 }));
        reseal(dir, 'backup.xbstream.zst');
      });
      const run = await drill.run();
      expect(run.succeeded).toBe(false);
      expect(run.log).toMatch(/FATAL: BACKUP 29991231T235959Z-physical CANNOT BE RESTORED: its copy does not extract or prepare/);
    });

    test('on a truncated dump whose checksums were rewritten', async () => {
      corruptCopy('logical', (dir) => {
        const file = path.join(dir, 'backup.sql.zst');
        const plain = execFileSync('zstd', ['-dc', file], { maxBuffer: 512 * 1024 * 1024 });
        fs.writeFileSync(file, execFileSync('zstd', ['-q', '-c'], { input: plain.subarray(0, Math.floor(plain.length * 0.5)), maxBuffer: 512 * 1024 * 1024 }));
        reseal(dir, 'backup.sql.zst');
      });
      const run = await logicalDrill.run();
      expect(run.succeeded).toBe(false);
      expect(run.log).toMatch(/FATAL: BACKUP 29991231T235959Z-logical IS TRUNCATED/);
    });

    test('on restored tables that differ from the manifest, with the differences', async () => {
      corruptCopy('logical', (dir) => {
        const file = path.join(dir, 'manifest.json');
        fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/("table": "t", "rows": )20000/, '$119999'));
      });
      const run = await logicalDrill.run();
      expect(run.succeeded).toBe(false);
      expect(run.failed).toEqual('drill');
      expect(run.log).toMatch(/< \{"schema": "app", "table": "t", "rows": 19999, "checksum": \d+\}\n---\n> \{"schema": "app", "table": "t", "rows": 20000/);
      expect(run.log).toMatch(/RESTORE DRILL FAILED: the restored tables of 29991231T235959Z-logical differ from its manifest/);
    });
  });

  describe('an interrupted backup leaves nothing that looks complete', () => {
    test('killed while it receives the copy: only a staged directory under .incomplete/ remains, and the next success removes it once stale', async () => {
      const before = complete();
      const dir = physical.podDir();
      const take = physical.start('backup', dir);
      const incomplete = path.join(target, 'rt', '.incomplete');
      const staged = await waitFor('the artifact grows', () => {
        const names = fs.existsSync(incomplete) ? fs.readdirSync(incomplete) : [];
        const f = names.length === 1 ? path.join(incomplete, names[0], 'backup.xbstream.zst') : '';
        return f && fs.existsSync(f) && fs.statSync(f).size > 0 ? names[0] : undefined;
      }, 30_000);
      kill(take, 'SIGKILL');
      await new Promise((r) => take.once('exit', r));
      expect(complete()).toEqual(before);
      expect(fs.readdirSync(incomplete)).toEqual([staged]);
      expect(fs.existsSync(path.join(incomplete, staged, 'manifest.json'))).toBe(false);
      // the restore of "latest" ignores it
      const fetched = await drill.run();
      expect(fetched.log).toMatch(new RegExp(`fetching backup ${before.filter((n) => n.endsWith('-physical')).pop()}`));
      // a later successful backup removes leftovers older than STALE_SECONDS
      await new Promise((r) => setTimeout(r, 1100));
      const run = await logical.run({ STALE_SECONDS: '0' });
      expect(run.succeeded).toBe(true);
      expect(run.log).toMatch(new RegExp(`removing the leftovers of ${staged} \\(incomplete`));
      expect(fs.readdirSync(incomplete)).toEqual([]);
    });

    test('a stream that breaks off without the end mark fails the backup, and nothing is kept', async () => {
      const before = complete();
      const p1 = pods[1];
      await p1.stop('replication-donor.sh');
      await waitFor('the donor port is free', () => !listening(cluster.seedPort));
      // a donor whose copy stops after 2 MB
      const copy = path.join(host.root, 'full-copy.xbstream');
      execFileSync('bash', ['-c', `mariadb-backup --defaults-file=${p1.run}/backup.cnf --backup --stream=xbstream --target-dir=${host.root}/tmp-copy > ${copy} 2>/dev/null`]);
      const fake = spawn('socat', ['-U', `TCP-LISTEN:${cluster.seedPort},reuseaddr,fork`, `SYSTEM:head -c 2000000 ${copy}`], { detached: true, stdio: 'ignore' });
      try {
        await waitFor('the fake donor listens', () => listening(cluster.seedPort));
        const run = await physical.run();
        expect(run.succeeded).toBe(false);
        expect(run.failed).toEqual('backup');
        expect(run.log).toMatch(/the copy is incomplete: it ends without the member's end mark|the artifact does not decompress or extract/);
        expect(run.log).toMatch(/FATAL: no member sent a complete copy \(tried: rt-2\.rt rt-1\.rt\)/);
        expect(run.log).toMatch(/the backup failed; nothing was kept/);
        expect(complete()).toEqual(before);
        expect(fs.readdirSync(path.join(target, 'rt', '.incomplete'))).toEqual([]);
      } finally {
        kill(fake, 'SIGTERM');
        await waitFor('the fake donor is gone', () => !listening(cluster.seedPort));
        p1.start('replication-donor.sh');
        await waitFor('the replica\'s donor listens', () => listening(cluster.seedPort));
      }
    });
  });

  describe('retention', () => {
    const day = 24 * 3600 * 1000;
    /** A backup directory name for a time `ms` ago. */
    const ago = (ms: number, method: string) => `${new Date(Date.now() - ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${method}`;

    function seed(name: string, completeBackup = true): void {
      const dir = path.join(target, 'rt', name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'backup.sql.zst'), 'aged');
      if (completeBackup) fs.writeFileSync(path.join(dir, 'manifest.json'), '{}\n');
    }

    beforeAll(() => {
      // start from an empty directory of logical backups: keep the physical ones
      for (const n of complete().filter((x) => x.endsWith('-logical'))) fs.rmSync(path.join(target, 'rt', n), { recursive: true });
    });

    test('by count: keeps the newest N of the schedule\'s method; other methods, foreign files and fresh leftovers stay', async () => {
      const aged = [40, 30, 20, 10, 5].map((d) => ago(d * day, 'logical'));
      aged.forEach((n) => seed(n));
      const fresh = ago(3600 * 1000, 'logical');
      const stale = ago(2 * day, 'logical');
      seed(`.incomplete/${fresh}`, false);
      seed(`.incomplete/${stale}`, false);
      fs.writeFileSync(path.join(target, 'rt', 'README'), 'not a backup');
      const physicalBefore = complete().filter((n) => n.endsWith('-physical'));
      const run = await logical.run({ KEEP_LAST: '3' });
      expect(run.succeeded).toBe(true);
      const newest3 = [aged[3], aged[4], newest('logical')];
      expect(complete().filter((n) => n.endsWith('-logical'))).toEqual(newest3);
      expect(complete().filter((n) => n.endsWith('-physical'))).toEqual(physicalBefore);
      expect(fs.existsSync(path.join(target, 'rt', 'README'))).toBe(true);
      // a leftover younger than STALE_SECONDS (6 h by default) may belong to a running backup: it stays
      expect(fs.readdirSync(path.join(target, 'rt', '.incomplete'))).toEqual([fresh]);
      expect(run.log).toMatch(new RegExp(`removing the leftovers of ${stale} \\(incomplete, age \\d+s\\)`));
      for (const n of aged.slice(0, 3)) expect(run.log).toMatch(new RegExp(`pruning ${n}`));
    });

    test('by age: keeps everything younger than KEEP_SECONDS; with both rules a backup is kept if either keeps it', async () => {
      seed(ago(12 * day, 'logical'));
      seed(ago(3 * day, 'logical'));
      const run = await logical.run({ KEEP_SECONDS: `${7 * 24 * 3600}`, KEEP_LAST: '' });
      expect(run.succeeded).toBe(true);
      const left = complete().filter((n) => n.endsWith('-logical'));
      expect(left.every((n) => Date.now() - Date.parse(`${n.slice(0, 4)}-${n.slice(4, 6)}-${n.slice(6, 8)}T${n.slice(9, 11)}:${n.slice(11, 13)}:${n.slice(13, 15)}Z`) < 7 * day)).toBe(true);
      expect(left).toHaveLength(4); // 5 days, 3 days and the two backups of today
      const both = await logical.run({ KEEP_SECONDS: `${4 * 24 * 3600}`, KEEP_LAST: '4' });
      expect(both.succeeded).toBe(true);
      expect(complete().filter((n) => n.endsWith('-logical'))).toHaveLength(4);
    });

    test('never deletes the newest complete backup, and prunes only after a successful backup', async () => {
      seed(ago(1 * day, 'logical'));
      const before = complete();
      const failed = await logical.run({ MEMBERS: 'rt-9.rt', KEEP_SECONDS: '1', KEEP_LAST: '' });
      expect(failed.succeeded).toBe(false);
      expect(failed.log).toMatch(/no member can be backed up now \(tried: rt-9\.rt\)/);
      expect(complete()).toEqual(before);
      await new Promise((r) => setTimeout(r, 1500));
      const run = await logical.run({ KEEP_SECONDS: '1', KEEP_LAST: '' });
      expect(run.succeeded).toBe(true);
      const left = complete().filter((n) => n.endsWith('-logical'));
      expect(left).toEqual([newest('logical')]);
      expect(manifest(left[0]).method).toEqual('logical');
    });
  });

  test('the restore Job loads the latest logical backup into the running cluster through the primary; the replica follows', async () => {
    const p1 = pods[1];
    const expected = manifest(newest('logical')).tables.map((t) => JSON.stringify(t).replace(/":/g, '": ').replace(/,"/g, ', "'));
    primary().sql('DELETE FROM app.t WHERE id <= 5000; DROP TABLE app.m; CREATE DATABASE scratch; CREATE TABLE scratch.x (id INT);');
    const run = await restore.run();
    expect(run.log).toMatch(/replacing the databases app other db scratch/);
    expect(run.log).toMatch(/restored \d{8}T\d{6}Z-logical into rt-0\.rt: 5 tables match the manifest/);
    expect(run.succeeded).toBe(true);
    expect(tableLines(primary())).toEqual(expected);
    expect(primary().sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'scratch'")).toEqual('0');
    caughtUp(p1);
    expect(tableLines(p1)).toEqual(expected);
    expect(p1.status()).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes' });
  });

  describe('a new cluster from a backup (restoreFrom)', () => {
    /** The restore init container of a pod of a restoring cluster. */
    function fetchOn(pod: ClusterPod, restoreEnv: Record<string, string>) {
      return host.run(['/bin/bash', path.join(__dirname, '..', '..', 'src', 'scripts', 'restore-fetch.sh')], { ...restoreEnv, ...pod.env() });
    }

    async function startFrom(name: string, backup: string, method: string): Promise<ClusterPod[]> {
      const restored = restoredCluster(name, backup);
      const spec = { ...restored.spec, dbPort: cluster.dbPort, seedPort: await freePort() };
      const r0 = new ClusterPod(host, spec, 0);
      pods.push(r0);
      const fetch = await fetchOn(r0, restored.restore);
      expect(fetch.stderr).toMatch(new RegExp(`backup \\d{8}T\\d{6}Z-${method} is ready to restore \\(${method}\\)`));
      expect(fetch.code).toBe(0);
      const init = await r0.boot();
      expect(init.stderr).toMatch(new RegExp(`restored \\d{8}T\\d{6}Z-${method}: 5 tables match its manifest`));
      expect(fs.readFileSync(path.join(r0.volume, 'initialized'), 'utf8')).toMatch(/^restored_from=\d{8}T\d{6}Z-/);
      expect(fs.existsSync(path.join(r0.volume, 'restore.tmp'))).toBe(false);
      // a replica seeds from the restored primary as usual
      r0.start('replication-donor.sh');
      await waitFor(`the donor of ${name}-0 listens`, () => listening(spec.seedPort));
      const r1 = new ClusterPod(host, spec, 1);
      pods.push(r1);
      const fetch1 = await fetchOn(r1, restored.restore);
      expect(fetch1.stderr).toMatch(/is not the first pod/);
      await r1.boot();
      await r0.stop('replication-donor.sh');
      // fetching again on the primary's volume does nothing: it holds data
      const again = await fetchOn(r0, restored.restore);
      expect(again.stderr).toMatch(/the volume holds data already: nothing to restore/);
      return [r0, r1];
    }

    test.each([['physical', 'rp'], ['logical', 'rl']])('from the latest %s backup: the tables equal the manifest, the accounts are the new Secret\'s, GTIDs continue, a replica seeds and replicates', async (method, name) => {
      const m = manifest(newest(method));
      const expected = m.tables.map((t) => JSON.stringify(t).replace(/":/g, '": ').replace(/,"/g, ', "'));
      // 'latest' is the newest backup of any method: the logical backups are the newest now
      const [r0, r1] = await startFrom(name, method === 'logical' ? 'latest' : newest('physical'), method);
      expect(tableLines(r0)).toEqual(expected);
      // root logs in over the network with the Secret's password
      expect(execFileSync('mariadb', ['--no-defaults', `--host=${r0.ip}`, `--port=${cluster.dbPort}`, '--user=root', `--password=${ROOT_PASSWORD}`, '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_USER()'], { encoding: 'utf8' }).trim()).toEqual('root@%');
      // the backup's application account came along
      expect(r0.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app'")).toEqual('1');
      // the primary continues the backup's GTID history
      expect(r0.sql('SELECT @@read_only')).toEqual('0');
      r0.sql('INSERT INTO app.w (v) VALUES (-42)');
      expect(seq(r0.sql('SELECT @@gtid_binlog_pos'))).toEqual(seq(m.gtid) + 1);
      caughtUp(r1, r0);
      expect(r1.sql('SELECT COUNT(*) FROM app.w WHERE v = -42')).toEqual('1');
      expect(r1.status()).toMatchObject({ Master_Host: `${name}-0.${name}`, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes' });
      expect(tableLines(r1)).toEqual(tableLines(r0));
      await r1.stopAll();
      await r0.stopAll();
    });

    test('without a fetched backup the primary refuses to start empty', async () => {
      const restored = restoredCluster('rx', 'latest');
      const spec = { ...restored.spec, dbPort: cluster.dbPort, seedPort: await freePort() };
      const r0 = new ClusterPod(host, spec, 0);
      const init = await r0.script('replication-init.sh');
      expect(init.code).not.toBe(0);
      expect(init.stderr).toMatch(/FATAL: restoreFrom is set but no checked backup is in .*restore\.tmp: the restore init container fetches it/);
      expect(fs.existsSync(path.join(r0.volume, 'data'))).toBe(false);
      expect(fs.existsSync(path.join(r0.volume, 'initialized'))).toBe(false);
    });
  });
});
