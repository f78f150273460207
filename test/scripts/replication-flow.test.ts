/**
 * The replication scripts, unmodified, run for real against Debian's MariaDB 10.11: a primary,
 * replicas seeded from donors, crashes at every statement of the replication setup, broken and
 * interrupted copies, and the probes.
 *
 * Every "pod" is a set of processes on this host with its own loopback address, directories
 * and hostname. The environment and the configuration are the ones the construct synthesizes;
 * only paths, ports and a few options needed to run as root on a shared host are overridden.
 * Peer names (`rt-1.rt`) resolve through a private /etc/hosts, bind-mounted in a mount namespace
 * of each process (the host's own /etc/hosts is never touched). A donor sidecar listens on every
 * address of the shared host, so at most one runs at a time; which donor a copy came from is
 * shown by its content (a copy of a replica has a slave info file). The scripts run with a PATH
 * without any `mysql*` program and without netcat, as in the mariadb:11.4 image.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { ClusterPod, ClusterSpec, freePort, Host, kill, listening, Result, SCRIPTS, waitFor } from './backup-harness';
import { EngineVersion, MySqlReplicationCluster } from '../../src';
import { one, synth } from '../util';

jest.setTimeout(180_000);

const NAME = 'rt';
/** Passwords with quotes, a backslash, '#', ';' and '$', to prove they are quoted everywhere. */
const ROOT_PASSWORD = 'r00t "pa\'ss" #1 \\ $HOME';
const REPLICATION_PASSWORD = 'repl;pa\'ss"2`id`';

type Pod = ClusterPod;

describe('a MariaDB replication cluster run by its own scripts', () => {
  let host: Host;
  let cluster: ClusterSpec;
  const pods: Pod[] = [];
  let rows = 0;
  /** Fake donors started by the test itself. */
  const fakes: ChildProcess[] = [];

  function pod(ordinal: number, instance = ''): Pod {
    const p = new ClusterPod(host, cluster, ordinal, {}, instance);
    pods.push(p);
    return p;
  }

  function primary(): Pod {
    return pods[0];
  }

  /** Adds N rows on the primary. */
  function write(n: number): void {
    primary().sql(`INSERT INTO app.t SELECT seq, CONCAT('row ', seq) FROM app.seq_${rows + 1}_to_${rows + n};`);
    rows += n;
  }

  /** Waits until a replica has applied everything the primary has, then compares the data. */
  async function expectInSync(replica: Pod): Promise<void> {
    const position = primary().sql('SELECT @@gtid_binlog_pos');
    expect(replica.sql(`SELECT MASTER_GTID_WAIT('${position}', 60)`)).toEqual('0');
    expect(replica.sql('CHECKSUM TABLE app.t')).toEqual(primary().sql('CHECKSUM TABLE app.t'));
    expect(replica.sql('SELECT COUNT(*) FROM app.t')).toEqual(`${rows}`);
  }

  async function ready(p: Pod, extraEnv: Record<string, string> = {}): Promise<Result> {
    return p.script('replication-ready.sh', extraEnv);
  }

  async function startFakeDonor(address: string): Promise<void> {
    const fake = spawn('socat', ['-U', `TCP-LISTEN:${cluster.seedPort},reuseaddr,fork`, address], { detached: true, stdio: 'ignore' });
    fakes.push(fake);
    await waitFor('the fake donor listens', () => listening(cluster.seedPort));
  }

  async function stopFakeDonors(): Promise<void> {
    for (const fake of fakes.splice(0)) {
      const exited = new Promise((r) => fake.once('exit', r));
      kill(fake, 'SIGTERM');
      await exited;
    }
    await waitFor('the fake donor is gone', () => !listening(cluster.seedPort));
  }

  async function startDonor(p: Pod): Promise<void> {
    p.start('replication-donor.sh');
    await waitFor(`the donor of ${p.hostname} listens`, () => listening(cluster.seedPort));
  }

  async function stopDonor(p: Pod): Promise<void> {
    await p.stop('replication-donor.sh');
    await waitFor('the donor port is free', () => !listening(cluster.seedPort));
  }

  /** Init (seed), server and agent of a new replica, until its readiness probe passes. */
  async function startReplica(p: Pod, agent = true): Promise<Result> {
    const init = await p.script('replication-init.sh');
    expect(init.stderr).toMatch(/done/);
    expect(init.code).toBe(0);
    p.start('replication-server.sh');
    await waitFor(`${p.hostname} answers`, () => p.alive());
    if (agent) {
      p.start('replication-agent.sh');
      await waitFor(`${p.hostname} is ready`, async () => (await ready(p)).code === 0);
    }
    return init;
  }

  beforeAll(async () => {
    const chart = Testing.chart();
    new MySqlReplicationCluster(chart, 'db', { name: NAME, version: EngineVersion.MARIADB_10_11, replicas: 3 });
    const manifests = synth(chart);
    const initContainer = one(manifests, 'StatefulSet').spec.template.spec.initContainers[0];
    host = new Host('flow');
    // every name a pod of the test may look up exists from the start, as on the pod network
    Array.from({ length: 10 }, (_, i) => host.address(`${NAME}-${i}.${NAME}`));
    const secrets = path.join(host.root, 'credentials');
    fs.mkdirSync(secrets);
    fs.writeFileSync(path.join(secrets, 'root-password'), ROOT_PASSWORD);
    fs.writeFileSync(path.join(secrets, 'replication-password'), REPLICATION_PASSWORD);
    cluster = {
      name: NAME,
      env: Object.fromEntries(initContainer.env.map((e: { name: string; value: string }) => [e.name, e.value])),
      config: one(manifests, 'ConfigMap', `${NAME}-config`).data,
      secrets,
      dbPort: await freePort(),
      seedPort: await freePort(),
    };
  });

  afterAll(async () => {
    await stopFakeDonors().catch(() => undefined);
    for (const p of pods) await p.stopAll();
    host.remove();
  }, 120_000);

  test('the scripts run without any mysql* program or netcat, as in the mariadb:11.4 image', () => {
    expect(fs.readdirSync(host.bin).filter((n) => /^mysql|^nc$|^ncat$/.test(n))).toEqual([]);
    expect(fs.readdirSync(host.bin)).toEqual(expect.arrayContaining(['mariadb', 'mariadbd', 'mariadb-backup', 'mbstream', 'socat']));
  });

  test('the primary initializes its volume with the cluster accounts, and accepts writes', async () => {
    const p0 = pod(0);
    const init = await p0.script('replication-init.sh');
    expect(init.stderr).toMatch(/initializing a new datadir/);
    expect(init.code).toBe(0);
    expect(p0.file('initialized')).toMatch(/^initialized_at=/);
    expect(fs.existsSync(path.join(p0.volume, 'data', 'mysql'))).toBe(true);
    expect(fs.existsSync(path.join(p0.volume, 'init.tmp'))).toBe(false);
    const cnf = fs.readFileSync(path.join(p0.dir, 'conf', 'my.cnf'), 'utf8');
    expect(cnf).toMatch(/read_only = OFF/);
    expect(cnf).toMatch(/server_id = 100\nreport_host = rt-0\.rt\n$/);

    p0.start('replication-server.sh');
    await waitFor('the primary answers', () => p0.alive());
    expect(p0.sql('SELECT @@server_id, @@read_only, @@log_bin, @@gtid_strict_mode')).toEqual('100\t0\t1\t1');
    expect((await ready(p0)).stdout).toEqual('ready\n');
    expect((await p0.script('replication-alive.sh')).code).toBe(0);

    // root logs in over the network with the Secret's password; no other root account is left
    expect(execFileSync('mariadb', ['--no-defaults', `--host=${p0.ip}`, `--port=${cluster.dbPort}`, '--user=root', `--password=${ROOT_PASSWORD}`, '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_USER()'], { encoding: 'utf8' }).trim()).toEqual('root@%');
    expect(p0.sql("SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN ('root', '') ORDER BY 1").split('\n')).toEqual(['root@%', 'root@localhost']);
    // the replication account may replicate and read replication status, nothing else
    expect(p0.sql("SHOW GRANTS FOR 'repl'@'%'")).toMatch(/^GRANT REPLICATION SLAVE, SLAVE MONITOR ON \*\.\* TO `repl`@`%` IDENTIFIED BY PASSWORD '\*[0-9A-F]+'$/);
  });

  test('the first replica seeds from the primary (no replica is ready yet), before any transaction', async () => {
    const p0 = primary();
    await startDonor(p0);
    const p1 = pod(1);
    const init = await startReplica(p1);
    expect(init.stderr).toMatch(/receiving a physical copy from rt-0\.rt/);
    expect(p1.file('seeded')).toMatch(/^donor=rt-0\.rt\ngtid=\nseeded_at=/);
    expect(p1.file('replication-configured')).toEqual('source=rt-0.rt\n');
    expect(fs.existsSync(path.join(p1.volume, 'seed.tmp'))).toBe(false);
    expect(p1.sql('SELECT @@server_id, @@read_only')).toEqual('101\t1');
    const status = p1.status();
    expect(status).toMatchObject({ Master_Host: 'rt-0.rt', Using_Gtid: 'Slave_Pos', Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes' });

    p0.sql('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64));');
    p0.sql("CREATE USER 'app'@'%' IDENTIFIED BY 'app-password'; GRANT SELECT, INSERT ON app.* TO 'app'@'%';");
    write(1000);
    await expectInSync(p1);
    // an application account cannot write to a replica
    expect(() => execFileSync('mariadb', ['--no-defaults', `--host=${p1.ip}`, `--port=${cluster.dbPort}`, '--user=app', '--password=app-password', '-e', 'INSERT INTO app.t VALUES (-1, "x")'], { encoding: 'utf8', stdio: 'pipe' }))
      .toThrow(/ERROR 1290 .*read-only/);
  });

  test('the next replica seeds from a ready replica rather than from the primary', async () => {
    await stopDonor(primary());
    const p1 = pods[1];
    await startDonor(p1);
    write(500);
    const p2 = pod(2);
    const init = await startReplica(p2);
    expect(init.stderr).toMatch(/receiving a physical copy from rt-1\.rt/);
    expect(p2.file('seeded')).toMatch(/^donor=rt-1\.rt\ngtid=0-100-\d+\n/);
    // a copy of a replica carries its gtid_slave_pos in xtrabackup_slave_info
    expect(p2.file('data/xtrabackup_slave_info')).toMatch(/^SET GLOBAL gtid_slave_pos = '0-100-\d+';/);
    expect(p2.sql('SELECT @@server_id')).toEqual('102');
    // the donor removed the copy's work directory from its temporary space
    expect(fs.readdirSync(path.join(p1.dir, 'tmp')).filter((f) => f.startsWith('cdk8s-mysql-send'))).toEqual([]);
    write(500);
    await expectInSync(p2);
    await expectInSync(p1);
  });

  test('a donor that is not a healthy member sends nothing', async () => {
    const p1 = pods[1];
    await p1.stop('replication-agent.sh');
    p1.sql('STOP REPLICA');
    const send = await p1.script('replication-send.sh');
    expect(send.code).toBe(1);
    expect(send.stdout).toEqual('');
    expect(send.stderr).toMatch(/refusing to send a copy: this server is not healthy \(the IO thread is not running \(No\)/);
    await stopDonor(p1);
  });

  test('replicas that are not ready are passed over: the primary is the donor of last resort', async () => {
    const [p0, p1, p2] = pods;
    await p2.stop('replication-agent.sh');
    p2.sql('STOP REPLICA SQL_THREAD');
    await startDonor(p0);
    const p3 = pod(3);
    const init = await startReplica(p3);
    expect(init.stderr).toMatch(/rt-2\.rt is not a donor: the SQL thread is not running \(No\)/);
    expect(init.stderr).toMatch(/rt-1\.rt is not a donor: the IO thread is not running \(No\)/);
    expect(p3.file('seeded')).toMatch(/^donor=rt-0\.rt\n/);
    write(100);
    await expectInSync(p3);
    // the agents bring the stopped replicas back
    p1.start('replication-agent.sh');
    p2.start('replication-agent.sh');
    await waitFor('rt-1 and rt-2 are ready again', async () => (await ready(p1)).code === 0 && (await ready(p2)).code === 0);
    await expectInSync(p1);
    await expectInSync(p2);
  });

  test('an empty copy is an error: no seeded marker, no datadir', async () => {
    await stopDonor(primary());
    await startFakeDonor('EXEC:true');
    const p4 = pod(4);
    const init = await p4.script('replication-init.sh');
    expect(init.code).toBe(1);
    expect(init.stderr).toMatch(/the copy from rt-0\.rt:\d+ is empty: the donor refused or failed before sending anything/);
    expect(init.stderr).toMatch(/FATAL: no donor sent a complete copy/);
    expect(p4.file('seeded')).toBeUndefined();
    expect(fs.existsSync(path.join(p4.volume, 'data'))).toBe(false);
    expect(fs.existsSync(path.join(p4.volume, 'seed.tmp'))).toBe(false);
    await stopFakeDonors();
  });

  describe('a copy that ends early', () => {
    let full: Buffer;
    let withoutEndMark: Buffer;

    beforeAll(async () => {
      // a real copy, as the donor sends it
      const send = await primary().bash(`exec bash ${SCRIPTS}/replication-send.sh > ${host.root}/copy.xb`);
      expect(send.stderr).toMatch(/sent a complete copy/);
      full = fs.readFileSync(path.join(host.root, 'copy.xb'));
      // the same copy without its end mark: mbstream alone cannot tell that it is incomplete
      const mark = path.join(host.root, 'mark');
      fs.mkdirSync(mark);
      fs.writeFileSync(path.join(mark, 'cdk8s-mysql-seed-complete'), 'complete\n');
      const markStream = execFileSync('mbstream', ['-c', 'cdk8s-mysql-seed-complete'], { cwd: mark });
      expect(full.subarray(full.length - markStream.length).equals(markStream)).toBe(true);
      withoutEndMark = full.subarray(0, full.length - markStream.length);
      fs.writeFileSync(path.join(host.root, 'no-mark.xb'), withoutEndMark);
      fs.writeFileSync(path.join(host.root, 'half.xb'), full.subarray(0, Math.floor(full.length / 2)));
      const check = path.join(host.root, 'check');
      fs.mkdirSync(check);
      execFileSync('mbstream', ['-x', '-C', check], { input: withoutEndMark });
    }, 120_000);

    test.each([
      ['cut in the middle of a file', 'half.xb', /the copy from rt-\d\.rt:\d+ (failed: the connection or the extraction broke|is incomplete)/],
      ['complete but for the end mark', 'no-mark.xb', /the copy from rt-\d\.rt:\d+ is incomplete: it ended without the donor's end mark/],
    ])('a copy %s is refused and leaves no seeded marker', async (_, file, message) => {
      await startFakeDonor(`EXEC:cat ${path.join(host.root, file)}`);
      const p = pod(4, `-${file}`);
      const init = await p.script('replication-init.sh');
      await stopFakeDonors();
      expect(init.code).toBe(1);
      expect(init.stderr).toMatch(message);
      expect(init.stderr).not.toMatch(/preparing the copy/);
      expect(p.file('seeded')).toBeUndefined();
      expect(fs.existsSync(path.join(p.volume, 'data'))).toBe(false);
    });

    test('a seed killed mid-stream leaves no seeded marker, and the next attempt starts over', async () => {
      await startFakeDonor(`SYSTEM:cat ${path.join(host.root, 'half.xb')}; sleep 600`);
      const p4 = pod(4, '-killed');
      const running = p4.script('replication-init.sh', {}, 60_000);
      const stage = path.join(p4.volume, 'seed.tmp');
      await waitFor('the copy is arriving', () => fs.existsSync(stage) && fs.readdirSync(stage).length > 0);
      for (const pid of p4.pids()) process.kill(-pid, 'SIGKILL');
      const killed = await running;
      expect(killed.signal).toEqual('SIGKILL');
      await stopFakeDonors();
      expect(p4.file('seeded')).toBeUndefined();
      expect(fs.existsSync(path.join(p4.volume, 'data'))).toBe(false);
      expect(fs.existsSync(path.join(p4.volume, 'seed.tmp'))).toBe(true);

      await startDonor(primary());
      write(100);
      await startReplica(p4);
      // a ready replica first (on this shared host, the primary's donor answers on every address)
      expect(p4.file('seeded')).toMatch(/^donor=rt-3\.rt\ngtid=0-100-\d+\n/);
      expect(fs.existsSync(path.join(p4.volume, 'seed.tmp'))).toBe(false);
      await expectInSync(p4);
      await p4.stopAll();
    });
  });

  describe('the replication setup, crashed after each of its statements', () => {
    // SET GLOBAL gtid_slave_pos, CHANGE MASTER TO, START REPLICA
    const crashAfter = [1, 2, 3];

    /** configure_replication, killed (SIGKILL) right after its Nth statement ran. */
    function crashingSetup(n: number): string {
      return `eval "$(declare -f run_sql | sed '1s/^run_sql/real_run_sql/')"
statements=0
run_sql() { real_run_sql "$@"; statements=$((statements + 1)); if ((statements == ${n})); then kill -9 $$; fi; }
configure_replication`;
    }

    test.each(crashAfter)('a crash after statement %i, then a normal run, leaves a correct replica', async (n) => {
      const p = pod(5 + n);
      await startReplica(p, false);
      const crashed = await p.bash(crashingSetup(n));
      expect(crashed.signal).toEqual('SIGKILL');
      write(200);
      if (n === 3) {
        // replication ran before the crash: the replica applied rows past the copy's position
        await expectInSync(p);
        write(200);
      }
      const rerun = await p.bash('configure_replication');
      expect(rerun.code).toBe(0);
      await waitFor(`${p.hostname} is ready`, async () => (await ready(p)).code === 0);
      await expectInSync(p);
      expect(p.status()).toMatchObject({ Last_SQL_Errno: '0', Last_IO_Errno: '0', Using_Gtid: 'Slave_Pos' });
      expect(p.file('replication-configured')).toEqual('source=rt-0.rt\n');
      // and again: nothing changes
      const again = await p.bash('configure_replication');
      expect(again.stderr).toEqual('');
      await expectInSync(p);
    });

    test('a replica that lost its replication settings resumes from its own position, not from the copy', async () => {
      const p = pods.find((x) => x.hostname === 'rt-8')!;
      p.sql('STOP REPLICA; RESET REPLICA ALL;');
      write(200);
      const rerun = await p.bash('configure_replication');
      expect(rerun.stderr).not.toMatch(/starting from the copy's GTID position/);
      await expectInSync(p);
      expect(p.status()).toMatchObject({ Last_SQL_Errno: '0' });
    });

    test('control: applying the copy\'s position a second time would break the replica, so the tests above can fail', async () => {
      const p = pods.find((x) => x.hostname === 'rt-7')!;
      const seeded = p.file('seeded')!.match(/^gtid=(.*)$/m)![1];
      p.sql(`STOP REPLICA; SET GLOBAL gtid_slave_pos = '${seeded}'; START REPLICA;`);
      // gtid_strict_mode refuses the replayed GTIDs (1950); without it the rows would be duplicates (1062)
      await waitFor('the SQL thread stops on a replayed transaction', () => ['1950', '1062'].includes(p.status().Last_SQL_Errno));
      expect((await ready(p)).stdout).toMatch(/^not ready: the SQL thread is not running \(No\): /);
      await p.stopAll();
    });
  });

  describe('the probes', () => {
    test('the primary is not ready while it is read-only', async () => {
      const p0 = primary();
      p0.sql('SET GLOBAL read_only = ON');
      const r = await ready(p0);
      p0.sql('SET GLOBAL read_only = OFF');
      expect(r.code).toBe(1);
      expect(r.stdout).toEqual('not ready: it is read-only\n');
      expect((await ready(p0)).code).toBe(0);
    });

    test('a replica is not ready while it lags more than MAX_LAG_SECONDS, and ready within it', async () => {
      const p = pods.find((x) => x.hostname === 'rt-6')!;
      p.sql('STOP REPLICA; CHANGE MASTER TO MASTER_DELAY = 60; START REPLICA;');
      write(1);
      await waitFor('the replica lags', () => Number(p.status().Seconds_Behind_Master) >= 3);
      const lagging = await ready(p, { MAX_LAG_SECONDS: '2' });
      expect(lagging.code).toBe(1);
      expect(lagging.stdout).toMatch(/^not ready: it is \d+s behind the primary \(at most 2s allowed\)\n$/);
      expect((await ready(p, { MAX_LAG_SECONDS: '3600' })).code).toBe(0);
      p.sql('STOP REPLICA; CHANGE MASTER TO MASTER_DELAY = 0; START REPLICA;');
      await expectInSync(p);
    });

    test('a replica whose IO thread reconnects to the primary stays ready until the data it applied is MAX_LAG_SECONDS old', async () => {
      const p = pods.find((x) => x.hostname === 'rt-6')!;
      await expectInSync(p);
      // both threads run: the probe notes how fresh the data is
      expect((await ready(p)).stdout).toEqual('ready\n');
      const mark = path.join(p.run, 'replica-fresh-as-of');
      expect(Math.abs(Number(fs.readFileSync(mark, 'utf8')) - Date.now() / 1000)).toBeLessThan(10);
      // the primary goes out of reach (as while its pod restarts): the IO thread reconnects, every received transaction is applied
      p.sql(`STOP REPLICA; CHANGE MASTER TO MASTER_PORT = ${await freePort()}; START REPLICA;`);
      await waitFor('the IO thread reconnects', () => p.status().Slave_IO_Running === 'Connecting');
      const within = await ready(p);
      expect(within.code).toBe(0);
      expect(within.stdout).toMatch(/^ready: the IO thread reconnects to the primary; every transaction received is applied, the data is \d+s old\n$/);
      // until the data is older than MAX_LAG_SECONDS
      fs.writeFileSync(mark, `${Math.floor(Date.now() / 1000) - 100}`);
      const stale = await ready(p, { MAX_LAG_SECONDS: '30' });
      expect(stale.code).toBe(1);
      expect(stale.stdout).toMatch(/^not ready: the IO thread reconnects to the primary \(.*\) and the data is 1\d\ds old \(at most 30s allowed\)\n$/);
      // without a mark (a new pod that never saw the IO thread run) the data's age is unknown
      fs.rmSync(mark);
      expect((await ready(p)).stdout).toMatch(/^not ready: the IO thread is not running \(Connecting\): /);
      // a donor's check of itself has no such allowance
      fs.writeFileSync(mark, `${Math.floor(Date.now() / 1000)}`);
      expect((await p.bash('local_healthy')).code).toBe(1);
      p.sql(`STOP REPLICA; CHANGE MASTER TO MASTER_PORT = ${cluster.dbPort}; START REPLICA;`);
      await expectInSync(p);
      expect((await ready(p)).stdout).toEqual('ready\n');
    });

    test('a replica without replication is not ready, and the liveness probe fails once the server is gone', async () => {
      const p = pods.find((x) => x.hostname === 'rt-6')!;
      p.sql('STOP REPLICA; RESET REPLICA ALL;');
      expect((await ready(p)).stdout).toEqual('not ready: replication is not configured\n');
      expect((await p.script('replication-alive.sh')).code).toBe(0);
      await p.stopAll();
      const alive = await p.script('replication-alive.sh');
      expect(alive.code).not.toBe(0);
    });
  });

  test('an empty primary volume is not initialized while a replica still runs', async () => {
    const fresh = pod(0, '-lost-volume');
    const init = await fresh.script('replication-init.sh');
    expect(init.code).toBe(1);
    expect(init.stderr).toMatch(/the primary's volume is empty but replica rt-1\.rt is running: refusing to start an empty primary/);
    expect(fs.existsSync(path.join(fresh.volume, 'data'))).toBe(false);
    expect(fresh.file('initialized')).toBeUndefined();
  });

  test('no password appears in a log, an option file other than the client ones, a command line or an environment', async () => {
    const secrets = [ROOT_PASSWORD, REPLICATION_PASSWORD];
    const texts: string[] = [];
    for (const p of pods) {
      for (const f of fs.readdirSync(p.dir).filter((n) => n.endsWith('.log'))) texts.push(fs.readFileSync(path.join(p.dir, f), 'utf8'));
      if (fs.existsSync(path.join(p.dir, 'conf', 'my.cnf'))) texts.push(fs.readFileSync(path.join(p.dir, 'conf', 'my.cnf'), 'utf8'));
      for (const pid of p.pids()) {
        for (const proc of [`/proc/${pid}`, ...childPids(pid).map((c) => `/proc/${c}`)]) {
          for (const f of ['cmdline', 'environ']) {
            try {
              texts.push(fs.readFileSync(`${proc}/${f}`, 'utf8'));
            } catch {
              // exited meanwhile
            }
          }
        }
      }
    }
    expect(texts.length).toBeGreaterThan(20);
    for (const text of texts) {
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
    // the client option files hold them, readable by their owner only
    for (const f of ['root.cnf', 'replication.cnf', 'backup.cnf']) {
      expect(fs.statSync(path.join(primary().run, f)).mode.toString(8)).toMatch(/600$/);
    }
  });
});

function childPids(pid: number): number[] {
  try {
    const direct = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return direct.flatMap((c) => [c, ...childPids(c)]);
  } catch {
    return [];
  }
}
