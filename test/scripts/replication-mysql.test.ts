/**
 * The MySQL-only paths of the replication scripts (initialization with mysqld --initialize, the
 * CLONE plugin, CHANGE REPLICATION SOURCE, super_read_only), whose control flow is the library's
 * own: run for real with bash, against stand-ins for mysqld, mysql and mysqladmin that record
 * every statement and answer like MySQL 8.4 does. No MySQL server exists on this machine, so
 * these tests pin the statements and their order, not MySQL's acceptance of them.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { EngineVersion, MySqlReplicationCluster } from '../../src';
import { one, synth } from '../util';

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');
const ROOT_PASSWORD = 'r00t\'s "pw"';
const REPLICATION_PASSWORD = 'repl\\pw';

/** A bash script from a template literal: `\${` stands for a literal `${`. */
function script(strings: TemplateStringsArray): string {
  return String.raw(strings).replace(/\\\$\{/g, '${');
}

/** Stand-ins for the MySQL programs; their state lives in $FAKE_STATE. */
const FAKE_MYSQL = script`#!/bin/bash
# stand-in for the mysql client: records the statement, answers like a MySQL 8.4 replica
state=$FAKE_STATE
host=local
for a in "$@"; do case $a in --host=*) host=\${a#--host=} ;; esac; done
sql=$(cat)
printf '%s\t%s\n' "$host" "$(printf '%s' "$sql" | tr '\n' ' ')" >>"$state/statements"
if [[ $host == local && -e $state/down ]]; then
  echo "ERROR 2002 (HY000): Can't connect to local MySQL server through socket" >&2
  exit 1
fi
case $sql in
  'SHOW REPLICA STATUS;')
    if [[ $host != local ]]; then
      if [[ -f $state/remote-$host ]]; then cat "$state/remote-$host"; fi
    elif [[ -f $state/source ]]; then
      printf 'Source_Host\tReplica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\tAuto_Position\n'
      printf '%s\t%s\t%s\t0\t1\n' "$(<"$state/source")" "$(cat "$state/running" 2>/dev/null || echo No)" "$(cat "$state/running" 2>/dev/null || echo No)"
    fi
    ;;
  'SELECT @@global.read_only AND @@global.super_read_only;') echo 1 ;;
  *'FROM performance_schema.clone_status'*) if [[ -f $state/cloned ]]; then echo 1; else echo 0; fi ;;
  *'CLONE INSTANCE FROM'*)
    if [[ -e $state/clone-fails ]]; then
      echo "ERROR 3862 (HY000) at line 2: Clone Donor Error: 1045 : Access denied for user 'repl'@'10.0.0.7' (using password: YES)." >&2
      exit 1
    fi
    # the clone replaces the data, then the server stops itself; Kubernetes restarts it
    touch "$state/down"
    (sleep 1 && touch "$state/cloned" && rm -f "$state/down") >/dev/null 2>&1 &
    echo 'ERROR 3707 (HY000) at line 2: Restart server failed (mysqld is not managed by supervisor process).' >&2
    exit 1
    ;;
  "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '"*)
    h=\${sql#"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '"}
    printf '%s' "\${h%%"'"*}" >"$state/source"
    ;;
  'START REPLICA;') echo Yes >"$state/running" ;;
  'SELECT @@global.super_read_only;') cat "$state/super_read_only" 2>/dev/null || echo 0 ;;
  'SET GLOBAL super_read_only = ON;') echo 1 >"$state/super_read_only" ;;
  *) echo "ERROR 1064 (42000): unexpected statement" >&2; exit 1 ;;
esac
`;

const FAKE_MYSQLADMIN = script`#!/bin/bash
# stand-in for mysqladmin ping: the local server answers unless it is down; peers answer when listed
host=local
for a in "$@"; do case $a in --host=*) host=\${a#--host=} ;; esac; done
if [[ $host == local ]]; then [[ ! -e $FAKE_STATE/down ]]; else [[ -e $FAKE_STATE/alive-$host ]]; fi
`;

const FAKE_MYSQLD = script`#!/bin/bash
# stand-in for mysqld --initialize-insecure: records its arguments and the init file, makes a datadir
printf '%s\n' "$*" >>"$FAKE_STATE/mysqld"
for a in "$@"; do
  case $a in
    --datadir=*) datadir=\${a#--datadir=} ;;
    --init-file=*) cp "\${a#--init-file=}" "$FAKE_STATE/init.sql" ;;
  esac
done
mkdir -p "$datadir/mysql"
`;

describe('the MySQL paths of the replication scripts, against stand-ins for the MySQL programs', () => {
  let root: string;
  let state: string;
  let baseEnv: Record<string, string>;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-fake-'));
    state = path.join(root, 'state');
    const bin = path.join(root, 'bin');
    for (const d of [state, bin, 'volume', 'run', 'tmp', 'conf', 'config', 'credentials'].map((name) => path.resolve(root, name))) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(bin, 'mysql'), FAKE_MYSQL, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'mysqladmin'), FAKE_MYSQLADMIN, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'mysqld'), FAKE_MYSQLD, { mode: 0o755 });
    fs.writeFileSync(path.join(root, 'credentials', 'root-password'), ROOT_PASSWORD);
    fs.writeFileSync(path.join(root, 'credentials', 'replication-password'), REPLICATION_PASSWORD);

    const chart = Testing.chart();
    new MySqlReplicationCluster(chart, 'db', { name: 'rt', version: EngineVersion.MYSQL_8_4 });
    const manifests = synth(chart);
    for (const [file, text] of Object.entries<string>(one(manifests, 'ConfigMap', 'rt-config').data)) fs.writeFileSync(path.join(root, 'config', file), text);
    const init = one(manifests, 'StatefulSet').spec.template.spec.initContainers[0];
    baseEnv = {
      ...Object.fromEntries(init.env.map((e: { name: string; value: string }) => [e.name, e.value])),
      DB_SOCKET: path.join(root, 'run', 'mysqld.sock'),
      DB_CNF: path.join(root, 'conf', 'my.cnf'),
      CONFIG_DIR: path.join(root, 'config'),
      SECRETS_DIR: path.join(root, 'credentials'),
      RUN_DIR: path.join(root, 'run'),
      DATA_ROOT: path.join(root, 'volume'),
      TMPDIR: path.join(root, 'tmp'),
      FAKE_STATE: state,
      PATH: `${bin}:${process.env.PATH}`,
    };
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  function run(scriptName: string, hostname: string, snippet = '') {
    const args = snippet ? ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/replication-lib.sh\n${snippet}`] : [path.join(SCRIPTS, scriptName)];
    const r = spawnSync('bash', args, { encoding: 'utf8', env: { ...baseEnv, HOSTNAME: hostname } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** The statements the stand-in client received since the last call, as "host<TAB>statement". */
  function statements(): string[] {
    const file = path.join(state, 'statements');
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
    fs.rmSync(file, { force: true });
    return lines;
  }

  test('the primary\'s datadir is initialized with mysqld --initialize-insecure and an init file of accounts', () => {
    const r = run('replication-init.sh', 'rt-0');
    expect(r.stderr).toMatch(/initializing a new datadir/);
    expect(r.status).toBe(0);
    const stage = path.join(root, 'volume', 'init.tmp');
    expect(fs.readFileSync(path.join(state, 'mysqld'), 'utf8')).toEqual(
      `--defaults-file=${root}/conf/my.cnf --datadir=${stage} --initialize-insecure --init-file=${fs.readFileSync(path.join(state, 'mysqld'), 'utf8').match(/--init-file=(\S+)/)![1]}\n`,
    );
    expect(fs.readFileSync(path.join(state, 'init.sql'), 'utf8')).toEqual([
      "ALTER USER 'root'@'localhost' IDENTIFIED BY 'r00t''s \"pw\"';",
      "CREATE USER 'root'@'%' IDENTIFIED BY 'r00t''s \"pw\"';",
      "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
      // without tls the replication account explicitly requires no TLS (the agent keeps it so)
      "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl\\\\pw' REQUIRE NONE;",
      "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO 'repl'@'%';",
      '',
    ].join('\n'));
    // the init file with the passwords is gone; the datadir is in place and marked
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    expect(fs.existsSync(path.join(root, 'volume', 'data', 'mysql'))).toBe(true);
    expect(fs.existsSync(stage)).toBe(false);
    expect(fs.readFileSync(path.join(root, 'volume', 'initialized'), 'utf8')).toMatch(/^initialized_at=/);
    // super_read_only is never in the option file: it would block the initialization
    expect(fs.readFileSync(path.join(root, 'conf', 'my.cnf'), 'utf8')).not.toMatch(/super_read_only/);
    // a second start keeps the datadir
    fs.rmSync(path.join(state, 'mysqld'));
    expect(run('replication-init.sh', 'rt-0').status).toBe(0);
    expect(fs.existsSync(path.join(state, 'mysqld'))).toBe(false);
  });

  test('a replica gets an empty instance to clone into, until it is seeded', () => {
    fs.writeFileSync(path.join(root, 'volume', 'replication-configured'), 'source=old\n');
    const r = run('replication-init.sh', 'rt-1');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/an empty instance is ready; the agent clones a donor into it once the server runs/);
    expect(fs.readFileSync(path.join(root, 'conf', 'my.cnf'), 'utf8')).toMatch(/read_only = ON\n[\s\S]*server_id = 101\n/);
    expect(fs.existsSync(path.join(root, 'volume', 'replication-configured'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'volume', 'seeded'))).toBe(false);
    fs.writeFileSync(path.join(root, 'volume', 'seeded'), 'cloned_at=x\n');
    fs.rmSync(path.join(state, 'mysqld'));
    expect(run('replication-init.sh', 'rt-1').stderr).toMatch(/the volume is seeded already/);
    expect(fs.existsSync(path.join(state, 'mysqld'))).toBe(false);
  });

  test('the agent clones the primary when no replica is ready, takes ERROR 3707 as success, then replicates with auto-position', () => {
    expect(run('', 'rt-1', 'write_client_files').status).toBe(0);
    // pass 1: no healthy replica (rt-2 is not configured): clone the primary; the server stops
    const first = run('', 'rt-1', 'reconcile_replica 1');
    expect(first.stderr).toMatch(/rt-2\.rt is not a donor: replication is not configured/);
    expect(first.stderr).toMatch(/the clone of rt-0\.rt is complete; the server stops \(ERROR 3707\) and Kubernetes restarts it on the cloned data/);
    expect(first.status).toBe(0);
    expect(statements()).toEqual([
      "local\tSELECT COUNT(*) FROM performance_schema.clone_status WHERE STATE = 'Completed' AND ERROR_NO = 0;",
      'rt-2.rt\tSHOW REPLICA STATUS;',
      "local\tSET GLOBAL clone_valid_donor_list = 'rt-0.rt:3306'; CLONE INSTANCE FROM 'repl'@'rt-0.rt':3306 IDENTIFIED BY 'repl\\\\pw';",
    ]);
    expect(fs.existsSync(path.join(root, 'volume', 'seeded'))).toBe(false);

    // the agent's next pass comes once the restarted server answers again
    for (let i = 0; i < 50 && fs.existsSync(path.join(state, 'down')); i++) spawnSync('sleep', ['0.1']);
    expect(fs.existsSync(path.join(state, 'down'))).toBe(false);

    // pass 2, on the restarted server: the clone completed: seeded; replication configured once
    const second = run('', 'rt-1', 'reconcile_replica 1');
    expect(second.status).toBe(0);
    expect(second.stderr).toMatch(/the server runs on a completed clone: the volume is seeded/);
    expect(fs.readFileSync(path.join(root, 'volume', 'seeded'), 'utf8')).toMatch(/^cloned_at=/);
    expect(statements()).toEqual([
      "local\tSELECT COUNT(*) FROM performance_schema.clone_status WHERE STATE = 'Completed' AND ERROR_NO = 0;",
      'local\tSHOW REPLICA STATUS;',
      "local\tCHANGE REPLICATION SOURCE TO SOURCE_HOST = 'rt-0.rt', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'repl\\\\pw', " +
        'SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_CONNECT_RETRY = 10;',
      'local\tSTART REPLICA;',
      'local\tSELECT @@global.super_read_only;',
      'local\tSET GLOBAL super_read_only = ON;',
    ]);
    expect(fs.readFileSync(path.join(root, 'volume', 'replication-configured'), 'utf8')).toEqual('source=rt-0.rt\n');

    // pass 3: nothing left to do
    expect(run('', 'rt-1', 'reconcile_replica 1').status).toBe(0);
    expect(statements()).toEqual(['local\tSHOW REPLICA STATUS;', 'local\tSELECT @@global.super_read_only;']);

    // after a server restart: threads stopped and super_read_only off again; no new CHANGE
    fs.writeFileSync(path.join(state, 'running'), 'No\n');
    fs.writeFileSync(path.join(state, 'super_read_only'), '0\n');
    expect(run('', 'rt-1', 'reconcile_replica 1').status).toBe(0);
    expect(statements()).toEqual([
      'local\tSHOW REPLICA STATUS;', 'local\tSTART REPLICA;', 'local\tSELECT @@global.super_read_only;', 'local\tSET GLOBAL super_read_only = ON;',
    ]);
  });

  test('the agent clones a ready replica rather than the primary', () => {
    expect(run('', 'rt-2', 'write_client_files').status).toBe(0);
    fs.writeFileSync(path.join(state, 'remote-rt-1.rt'),
      'Source_Host\tReplica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\nrt-0.rt\tYes\tYes\t0\n');
    const r = run('', 'rt-2', 'reconcile_replica 2');
    expect(r.status).toBe(0);
    expect(statements()).toContain("local\tSET GLOBAL clone_valid_donor_list = 'rt-1.rt:3306'; CLONE INSTANCE FROM 'repl'@'rt-1.rt':3306 IDENTIFIED BY 'repl\\\\pw';");
  });

  test('a failed clone (not ERROR 3707) tries the next donor, then fails the pass without marking anything', () => {
    expect(run('', 'rt-2', 'write_client_files').status).toBe(0);
    fs.writeFileSync(path.join(state, 'remote-rt-1.rt'),
      'Source_Host\tReplica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\nrt-0.rt\tYes\tYes\t0\n');
    fs.writeFileSync(path.join(state, 'clone-fails'), '');
    const r = run('', 'rt-2', 'reconcile_replica 2');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cloning rt-1\.rt failed: ERROR 3862[^\n]*\n.*cloning rt-0\.rt:3306\n.*cloning rt-0\.rt failed: ERROR 3862/);
    expect(r.stderr).not.toContain(REPLICATION_PASSWORD);
    expect(fs.existsSync(path.join(root, 'volume', 'seeded'))).toBe(false);
    expect(fs.existsSync(path.join(state, 'down'))).toBe(false);
  });

  test('a replica whose peers lag more than maxLag is not a donor', () => {
    expect(run('', 'rt-2', 'write_client_files').status).toBe(0);
    fs.writeFileSync(path.join(state, 'remote-rt-1.rt'),
      'Source_Host\tReplica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\nrt-0.rt\tYes\tYes\t31\n');
    const r = run('', 'rt-2', 'donor_order 2');
    expect(r.stdout).toEqual('0\n');
    expect(r.stderr).toMatch(/rt-1\.rt is not a donor: it is 31s behind the primary \(at most 30s allowed\)/);
  });

  test('the primary refuses to initialize an empty volume while a replica answers', () => {
    fs.writeFileSync(path.join(state, 'alive-rt-2.rt'), '');
    const r = run('replication-init.sh', 'rt-0');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the primary's volume is empty but replica rt-2\.rt is running: refusing to start an empty primary/);
    expect(fs.existsSync(path.join(state, 'mysqld'))).toBe(false);
  });
});
