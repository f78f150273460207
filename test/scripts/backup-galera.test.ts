/**
 * Backups of a Galera node, against a real single-node Galera cluster (Debian's MariaDB 10.11
 * and galera-4): backup-galera-donor.sh (socat serving backup-galera-send.sh) run as a Galera
 * construct's sidecar would run it, the backup Jobs of BackupSchedules of a stand-in cluster with
 * TOPOLOGY galera (what GaleraCluster must implement: see IDatabaseCluster), and the guarantee
 * that the node is always resynchronized: after a complete copy, a broken connection, a killed
 * sender, and at the sidecar's start.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import {
  BackupMethod, BackupSchedule, BackupScheduleOptions, BackupTarget, ClusterTopology, EngineVersion, IDatabaseCluster, PhysicalBackupStream,
} from '../../src';
import { one, synth } from '../util';
import { freePort, Host, kill, listening, SCRIPTS, waitFor } from './backup-harness';
import { Job, jobContainers } from './backup-job';

jest.setTimeout(180_000);

/** What GaleraCluster must provide to be backed up: a stand-in with the same contract. */
class StandInGalera extends Construct implements IDatabaseCluster {
  public readonly name = 'g';
  public readonly version = EngineVersion.MARIADB_10_11;
  public readonly image = 'mariadb:10.11';
  public readonly port = 3306;
  public readonly credentials: kplus.ISecret;
  public readonly writeHost = 'g-client';
  public readonly topology = ClusterTopology.GALERA;
  public readonly backupMembers = ['g-2.g', 'g-1.g', 'g-0.g'];

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.credentials = kplus.Secret.fromSecretName(this, 'Credentials', 'g-credentials');
  }

  public physicalBackupStream(): PhysicalBackupStream {
    return { port: 3307, toolsImage: this.image };
  }

  public addBackupSchedule(id: string, options: BackupScheduleOptions): BackupSchedule {
    return new BackupSchedule(this, id, { ...options, cluster: this });
  }
}

describe('backups of a Galera node (single-node cluster)', () => {
  const host = new Host('backup-galera');
  const dir = path.join(host.root, 'g-0');
  const target = path.join(host.root, 'target');
  const secrets = path.join(host.root, 'credentials');
  let ip: string;
  let dbPort: number;
  let streamPort: number;
  let server: ChildProcess;
  let sidecar: ChildProcess | undefined;
  let physical: Job;
  let logical: Job;
  let drill: Job;

  const socket = path.join(dir, 'mysqld.sock');
  const cnf = path.join(dir, 'my.cnf');
  const rootCnf = path.join(dir, 'root.cnf');

  function sql(statements: string): string {
    return execFileSync('mariadb', [`--defaults-extra-file=${rootCnf}`, '--batch', '--skip-column-names'], { input: statements, encoding: 'utf8', stdio: 'pipe' }).trim();
  }

  /** wsrep_desync (1 or 0), wsrep_local_state and whether the backup lock is free. */
  function state(): string {
    return sql("SELECT CONCAT_WS(' ', IF(@@wsrep_desync, 1, 0), (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'), IS_FREE_LOCK('cdk8s_mysql_backup'))");
  }

  function sidecarEnv(): NodeJS.ProcessEnv {
    return { DB_ENGINE: 'mariadb', DB_SOCKET: socket, DB_CNF: cnf, SECRETS_DIR: secrets, TMPDIR: path.join(dir, 'tmp'), PATH: host.bin };
  }

  /** The sidecar as the Galera construct would run it: backup-galera-donor.sh. */
  async function startSidecar(): Promise<void> {
    sql('SET GLOBAL wsrep_desync = ON'); // left behind by a sender killed with its container
    const log = fs.openSync(path.join(dir, 'sidecar.log'), 'a');
    sidecar = host.spawn(['/bin/bash', path.join(SCRIPTS, 'backup-galera-donor.sh')], { ...sidecarEnv(), STREAM_PORT: `${streamPort}` }, ['ignore', log, log]);
    fs.closeSync(log);
    await waitFor('the sidecar listens', () => listening(streamPort));
    expect(fs.readFileSync(path.join(dir, 'sidecar.log'), 'utf8')).toMatch(/resynchronized the node: it was desynchronized without a backup holding the lock/);
    expect(state()).toEqual('0 4 1');
  }

  /** Records every state seen while `during` runs. */
  async function watch<T>(during: () => Promise<T>): Promise<{ result: T; seen: Set<string> }> {
    const seen = new Set<string>();
    let on = true;
    const poller = (async () => {
      while (on) {
        try {
          seen.add(state());
        } catch {
          // the server is busy
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await during();
    on = false;
    await poller;
    return { result, seen };
  }

  const clients: ChildProcess[] = [];
  /** A client that reads the stream slowly (a full pipe keeps the sender in mid-copy). */
  function slowClient(): ChildProcess {
    const client = host.spawn(['bash', '-c', `socat -u TCP:${ip}:${streamPort} STDOUT | { sleep 600; cat >/dev/null; }`], { PATH: host.bin }, 'ignore');
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    fs.mkdirSync(secrets);
    fs.writeFileSync(path.join(secrets, 'root-password'), 'galera "root" pw');
    ip = host.address('g-0.g');
    dbPort = await freePort();
    streamPort = await freePort();
    const gcommPort = await freePort();
    fs.writeFileSync(cnf, [
      '[mysqld]', 'user = root', `datadir = ${dir}/data`, `socket = ${socket}`, `pid_file = ${dir}/mysqld.pid`, `bind_address = ${ip}`, `port = ${dbPort}`,
      `log_error = ${dir}/error.log`, 'innodb_buffer_pool_size = 32M', 'binlog_format = ROW', 'default_storage_engine = InnoDB', 'innodb_autoinc_lock_mode = 2',
      'skip_name_resolve = ON', 'wsrep_on = ON', 'wsrep_provider = /usr/lib/galera/libgalera_smm.so', 'wsrep_cluster_name = g', 'wsrep_cluster_address = gcomm://',
      `wsrep_node_address = ${ip}:${gcommPort}`, `wsrep_provider_options = "gmcast.listen_addr=tcp://${ip}:${gcommPort}"`, '',
    ].join('\n'));
    execFileSync('mariadb-install-db', [`--defaults-file=${cnf}`, '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
    server = spawn('mariadbd', [`--defaults-file=${cnf}`, '--wsrep-new-cluster'], { detached: true, stdio: 'ignore' });
    fs.writeFileSync(rootCnf, `[client]\nuser=root\nsocket=${socket}\n`);
    await waitFor('the node is synced', () => {
      try {
        return state().split(' ')[1] === '4';
      } catch {
        return false;
      }
    }, 60_000);
    // mariadb-install-db's root@<hostname>, 127.0.0.1 and ::1 (a construct's bootstrap drops them)
    const password = '\'galera "root" pw\'';
    sql([
      "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';",
      "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS ''root''@''', @@hostname, '''');",
      `ALTER USER 'root'@'localhost' IDENTIFIED BY ${password};`,
      `CREATE USER 'root'@'%' IDENTIFIED BY ${password};`,
      "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;",
    ].join('\n'));
    fs.writeFileSync(rootCnf, `[client]\nuser=root\npassword="galera \\"root\\" pw"\nsocket=${socket}\n`);
    sql(`CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); USE app;
      INSERT INTO app.t SELECT seq, CONCAT('row ', seq) FROM seq_1_to_3000;`);

    const chart = Testing.chart();
    const galera = new StandInGalera(chart, 'g');
    const claim = kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups');
    galera.addBackupSchedule('Physical', { target: BackupTarget.persistentVolumeClaim(claim), restoreDrill: {} });
    galera.addBackupSchedule('Logical', { target: BackupTarget.persistentVolumeClaim(claim), method: BackupMethod.LOGICAL });
    const manifests = synth(chart);
    const spec = { name: 'g', env: {}, config: {}, secrets, dbPort, seedPort: streamPort };
    const overrides = { TARGET_DIR: path.join(target, 'g') };
    physical = new Job(host, spec, jobContainers(one(manifests, 'CronJob', 'g-physical')), overrides);
    logical = new Job(host, spec, jobContainers(one(manifests, 'CronJob', 'g-logical')), overrides);
    drill = new Job(host, spec, jobContainers(one(manifests, 'CronJob', 'g-physical-drill')), overrides);
    expect(physical.containers[0].env).toMatchObject({ TOPOLOGY: 'galera', MEMBERS: 'g-2.g g-1.g g-0.g', STREAM_PORT: '3307' });
    await startSidecar();
  });

  afterAll(async () => {
    clients.forEach((c) => kill(c, 'SIGKILL'));
    if (sidecar) kill(sidecar, 'SIGKILL');
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      kill(server, 'SIGTERM');
      const timer = setTimeout(() => kill(server, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    host.remove();
  }, 60_000);

  test('a physical backup: the node is desynchronized while it streams and synced again after; the copy is complete and checked', async () => {
    const { result: run, seen } = await watch(() => physical.run());
    expect(run.log).toMatch(/receiving a physical copy from g-0\.g/);
    expect(run.succeeded).toBe(true);
    expect(seen).toContain('1 2 0'); // desynchronized (state 2: Donor/Desynced), lock held
    expect(state()).toEqual('0 4 1');
    const name = fs.readdirSync(path.join(target, 'g')).find((n) => n.endsWith('-physical'))!;
    const m = JSON.parse(fs.readFileSync(path.join(target, 'g', name, 'manifest.json'), 'utf8'));
    // without a binary log, the position is the cluster's uuid:seqno
    expect(m.gtid).toMatch(/^[0-9a-f-]{36}:\d+$/);
    expect(m.tables).toEqual([{ schema: 'app', table: 't', rows: 3000, checksum: Number(sql('CHECKSUM TABLE app.t EXTENDED').split('\t')[1]) }]);
    expect(fs.readFileSync(path.join(dir, 'sidecar.log'), 'utf8')).toMatch(/desynchronized the node; sending a physical copy[\s\S]*sent a complete copy[\s\S]*resynchronized the node/);
    const drilled = await drill.run();
    expect(drilled.log).toMatch(/restore drill passed/);
  });

  test('restoreFrom: ordinal 0 builds its datadir from the backup with a grastate.dat at the copy\'s position, and finishes after a crash mid-move', async () => {
    const name = fs.readdirSync(path.join(target, 'g')).find((n) => n.endsWith('-physical'))!;
    const m = JSON.parse(fs.readFileSync(path.join(target, 'g', name, 'manifest.json'), 'utf8'));
    const node = path.join(host.root, 'r-0');
    const datadir = path.join(node, 'data');
    const restoreDir = path.join(datadir, '.cdk8s-mysql-restore');
    const newSecrets = path.join(node, 'credentials');
    for (const d of [datadir, path.join(node, 'run'), path.join(node, 'tmp'), newSecrets]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(newSecrets, 'root-password'), 'new root pw');
    fs.writeFileSync(path.join(newSecrets, 'sst-password'), 'new sst pw');
    // the environment the construct gives the restore init containers (paths of this host)
    const env = {
      DB_ENGINE: 'mariadb',
      DATADIR: datadir,
      DATA_ROOT: datadir,
      STATE_DIR: path.join(node, 'run'),
      RUN_DIR: path.join(node, 'run'),
      TMPDIR: path.join(node, 'tmp'),
      POD_NAME: 'r-0',
      HOSTNAME: 'r-0',
      PEERS: 'r-0.r',
      STATUS_PORT: '4569',
      SECRETS_DIR: newSecrets,
      SST_USER: 'sst',
      RESTORE_DIR: restoreDir,
      BACKUP: 'latest',
      TARGET_KIND: 'pvc',
      TARGET_DIR: path.join(target, 'g'),
      PATH: host.bin,
    };
    const fetch = await host.run(['/bin/bash', path.join(SCRIPTS, 'restore-fetch.sh')], env);
    expect(fetch.stderr).toMatch(new RegExp(`backup ${name} is ready to restore \\(physical\\)`));
    expect(fetch.code).toBe(0);
    // a crash in the middle of moving the copy into place: the 6th mv kills the script
    const crashBin = path.join(node, 'crash-bin');
    fs.mkdirSync(crashBin);
    fs.writeFileSync(path.join(crashBin, 'mv'), `#!/bin/bash\nn=$(( $(cat ${node}/mv-count 2>/dev/null || echo 0) + 1 ))\necho $n >${node}/mv-count\n` +
      'if ((n == 6)); then kill -KILL $PPID; exit 1; fi\nexec /usr/bin/mv "$@"\n', { mode: 0o755 });
    const crashed = await host.run(['/bin/bash', path.join(SCRIPTS, 'galera-restore.sh')], { ...env, PATH: `${crashBin}:${host.bin}` });
    expect(crashed.signal).toEqual('SIGKILL');
    expect(crashed.stderr).toMatch(new RegExp(`1 tables match the manifest of ${name}`));
    expect(fs.existsSync(path.join(restoreDir, 'installing'))).toBe(true);
    expect(fs.existsSync(path.join(datadir, 'cdk8s-mysql-restored'))).toBe(false);
    expect(fs.existsSync(path.join(datadir, 'mysql'))).toBe(false);
    // the restart: the fetch sees the checked backup, the restore finishes the move
    const refetch = await host.run(['/bin/bash', path.join(SCRIPTS, 'restore-fetch.sh')], env);
    expect(refetch.stderr).toMatch(/the backup was fetched already/);
    const resumed = await host.run(['/bin/bash', path.join(SCRIPTS, 'galera-restore.sh')], env);
    expect(resumed.stderr).toMatch(/finishing the move of a complete restored copy into the data directory/);
    expect(resumed.stderr).toMatch(new RegExp(`restored ${name}: this node bootstraps the cluster at the backup's position ${m.gtid}`));
    expect(resumed.code).toBe(0);
    const [uuid, seqno] = m.gtid.split(':');
    expect(fs.readFileSync(path.join(datadir, 'grastate.dat'), 'utf8')).toEqual(`# GALERA saved state\nversion: 2.1\nuuid:    ${uuid}\nseqno:   ${seqno}\nsafe_to_bootstrap: 1\n`);
    expect(fs.existsSync(path.join(datadir, 'mysql'))).toBe(true);
    expect(fs.existsSync(path.join(datadir, 'app', 't.ibd'))).toBe(true);
    expect(fs.existsSync(restoreDir)).toBe(false);
    // every later start leaves the data alone
    const again = await host.run(['/bin/bash', path.join(SCRIPTS, 'restore-fetch.sh')], env);
    expect(again.stderr).toMatch(/the volume holds data already: nothing to restore/);
    const later = await host.run(['/bin/bash', path.join(SCRIPTS, 'galera-restore.sh')], env);
    expect(later.stderr).toMatch(new RegExp(`the data directory was restored already \\(restored_from=${name} position=${m.gtid}`));
    expect(later.code).toBe(0);
    // other ordinals never restore
    const other = await host.run(['/bin/bash', path.join(SCRIPTS, 'galera-restore.sh')], { ...env, POD_NAME: 'r-1', DATADIR: path.join(node, 'none') });
    expect(other.stderr).toMatch(/r-1 is not the first node: it receives its data from the cluster \(SST\)/);
    expect(fs.existsSync(path.join(node, 'none'))).toBe(false);
  });

  test('a broken connection: the sender stops and the node is synced again', async () => {
    const client = slowClient();
    await waitFor('the node is desynchronized', () => state() === '1 2 0', 30_000);
    kill(client, 'SIGKILL');
    await waitFor('the node is synced again and the lock free', () => state() === '0 4 1', 60_000);
    expect(execFileSync('bash', ['-c', `pgrep -af '[m]ariadb-backup.*${dir}' || true`], { encoding: 'utf8' }).trim()).toEqual('');
  });

  test('while one copy streams, a second connection gets nothing; a sender killed outright is cleaned up by its watcher', async () => {
    const client = slowClient();
    await waitFor('the node is desynchronized', () => state() === '1 2 0', 30_000);
    const second = execFileSync('bash', ['-c', `socat -u TCP:${ip}:${streamPort} STDOUT | wc -c`], { encoding: 'utf8', env: { PATH: host.bin } }).trim();
    expect(second).toEqual('0');
    expect(fs.readFileSync(path.join(dir, 'sidecar.log'), 'utf8')).toMatch(/refusing to send a copy: another backup is streaming from this node/);
    expect(state()).toEqual('1 2 0');
    // SIGKILL the sender itself (no trap runs); its copy dies with the connection
    const sender = execFileSync('bash', ['-c', `pgrep -f '^bash ${path.join(SCRIPTS, 'backup-galera-send.sh')}$' | head -n 1`], { encoding: 'utf8' }).trim();
    expect(sender).toMatch(/^\d+$/);
    process.kill(Number(sender), 'SIGKILL');
    kill(client, 'SIGKILL');
    await waitFor('the watcher resynchronizes the node', () => state() === '0 4 1', 60_000);
  });

  test('the sidecar\'s start undoes a desync that no backup holds, and leaves one that a backup holds', async () => {
    sql('SET GLOBAL wsrep_desync = ON');
    const resync = await host.run(['/bin/bash', path.join(SCRIPTS, 'backup-galera-send.sh'), '--resync-if-idle'], sidecarEnv());
    expect(resync.stderr).toMatch(/resynchronized the node: it was desynchronized without a backup holding the lock/);
    expect(state()).toEqual('0 4 1');
    const session = spawn('mariadb', [`--defaults-extra-file=${rootCnf}`, '--batch'], { stdio: ['pipe', 'ignore', 'ignore'] });
    session.stdin!.write("SELECT GET_LOCK('cdk8s_mysql_backup', 0); SET GLOBAL wsrep_desync = ON;\n");
    await waitFor('desynchronized by the session', () => state().startsWith('1 2'), 10_000);
    const held = await host.run(['/bin/bash', path.join(SCRIPTS, 'backup-galera-send.sh'), '--resync-if-idle'], sidecarEnv());
    expect(held.code).toBe(0);
    expect(state()).toEqual('1 2 0');
    session.stdin!.end('SET GLOBAL wsrep_desync = OFF;\n');
    await waitFor('synced', () => state() === '0 4 1', 10_000);
  });

  test('the readiness probe: a node that a backup desynchronized stays ready while it keeps up (it still takes writes)', async () => {
    const stateDir = path.join(dir, 'probe-state');
    fs.mkdirSync(stateDir, { recursive: true });
    fs.copyFileSync(rootCnf, path.join(stateDir, 'client.cnf'));
    const probe = () => host.run(['/bin/bash', path.join(SCRIPTS, 'galera-probe.sh'), 'readiness'],
      { DB_ENGINE: 'mariadb', STATE_DIR: stateDir, READY_WHEN_DONOR: 'false', PATH: host.bin });
    expect(state()).toEqual('0 4 1');
    expect((await probe()).code).toBe(0);
    sql('SET GLOBAL wsrep_desync = ON');
    try {
      expect(state()).toEqual('1 2 1');
      // a single node never lags behind itself: it stays in the client Service
      const desynced = await probe();
      expect(desynced.stderr).toEqual('');
      expect(desynced.code).toBe(0);
      sql('INSERT INTO app.t VALUES (-2, "while desynced"); DELETE FROM app.t WHERE id = -2');
    } finally {
      sql('SET GLOBAL wsrep_desync = OFF');
    }
    const noServer = await host.run(['/bin/bash', path.join(SCRIPTS, 'galera-probe.sh'), 'readiness'],
      { DB_ENGINE: 'mariadb', STATE_DIR: path.join(dir, 'no-such-state'), PATH: host.bin });
    expect(noServer.code).not.toBe(0);
    expect(noServer.stderr).toMatch(/no server yet/);
  });

  test('a logical backup desynchronizes and read-locks the node for its duration, resyncs a stale desync first, and resumes it', async () => {
    sql('SET GLOBAL wsrep_desync = ON'); // left behind by a backup that died
    const { result: run, seen } = await watch(() => logical.run());
    expect(run.log).toMatch(/g-2\.g does not answer/);
    expect(run.log).toMatch(/g-0\.g is still desynchronized by a backup that ended: resynchronizing it/);
    expect(run.log).toMatch(/desynchronized and read-locked g-0\.g/);
    expect(run.succeeded).toBe(true);
    expect(seen).toContain('1 2 0');
    expect(state()).toEqual('0 4 1');
    const name = fs.readdirSync(path.join(target, 'g')).find((n) => n.endsWith('-logical'))!;
    const m = JSON.parse(fs.readFileSync(path.join(target, 'g', name, 'manifest.json'), 'utf8'));
    expect(m.gtid).toMatch(/^[0-9a-f-]{36}:\d+$/);
    expect(m.tables[0]).toMatchObject({ schema: 'app', table: 't', rows: 3000 });
    sql('INSERT INTO app.t VALUES (-1, "after")'); // writes go on
  });
});
