/**
 * The MySQL-only paths of the backup scripts, run for real with bash against stand-ins for
 * mysql, mysqldump, xtrabackup and xbstream that record their arguments and answer like MySQL
 * 8.4 and Percona XtraBackup do. No MySQL server or XtraBackup exists on this machine, so these
 * tests pin the commands, options and statements, not MySQL's acceptance of them.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupMethod, BackupTarget, EngineVersion, MySqlReplicationCluster } from '../../src';
import { one, synth } from '../util';

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');
const ROOT_PASSWORD = 'r00t\'s "pw" \\';

/** A bash script from a template literal: `\${` stands for a literal `${`. */
function script(strings: TemplateStringsArray): string {
  return String.raw(strings).replace(/\\\$\{/g, '${');
}

const FAKE_MYSQL = script`#!/bin/bash
# stand-in for the mysql client of MySQL 8.4: records the statements, answers a few queries
sql=$(cat)
printf '%s\n' "$(printf '%s' "$sql" | tr '\n' ' ')" >>"$FAKE_STATE/statements"
q=$(printf '\x60')
case $sql in
  *'FROM information_schema.SCHEMATA'*) printf 'app\nother db\n' ;;
  *'FROM mysql.user'*) printf "'app'@'%%'\n'report'@'10.%%'\n" ;;
  *"SHOW CREATE USER 'app'@'%'"*)
    printf "CREATE USER \${q}app\${q}@\${q}%%\${q} IDENTIFIED WITH 'caching_sha2_password' AS 0x244124303035 REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK\n"
    printf "GRANT USAGE ON *.* TO \${q}app\${q}@\${q}%%\${q}\nGRANT SELECT, INSERT ON \${q}app\${q}.* TO \${q}app\${q}@\${q}%%\${q}\n" ;;
  *"SHOW CREATE USER 'report'@'10.%'"*)
    printf "CREATE USER \${q}report\${q}@\${q}10.%%\${q} IDENTIFIED WITH 'caching_sha2_password' AS 0x2441 REQUIRE NONE\n"
    printf "GRANT SELECT ON *.* TO \${q}report\${q}@\${q}10.%%\${q}\n" ;;
  'SHOW REPLICA STATUS;')
    if [[ -f $FAKE_STATE/replica ]]; then
      printf 'Replica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\nYes\tYes\t0\n'
    fi ;;
  *'@@global.read_only AND @@global.super_read_only'*) echo 1 ;;
  *'@@global.read_only'*) if [[ -f $FAKE_STATE/replica ]]; then echo 1; else echo 0; fi ;;
  *) echo "ERROR 1064 (42000): unexpected statement: $sql" >&2; exit 1 ;;
esac
`;

const FAKE_MYSQLDUMP = script`#!/bin/bash
# stand-in for mysqldump: records its arguments, writes a dump
printf '%s\n' "$*" >>"$FAKE_STATE/mysqldump"
echo '-- MySQL dump 10.13'
echo 'CREATE DATABASE app;'
`;

const FAKE_XTRABACKUP = script`#!/bin/bash
# stand-in for xtrabackup --backup --stream=xbstream: records its arguments and option file
printf '%s\n' "$*" >>"$FAKE_STATE/xtrabackup"
for a in "$@"; do case $a in --defaults-file=*) cp "\${a#--defaults-file=}" "$FAKE_STATE/xtrabackup.cnf" ;; esac; done
printf 'XBSTREAM-DATA'
`;

const FAKE_XBSTREAM = script`#!/bin/bash
# stand-in for xbstream -c FILE: writes the file's name and content
printf '%s\n' "$*" >>"$FAKE_STATE/xbstream"
printf '[%s:' "\${@: -1}"; cat "\${@: -1}"; printf ']'
`;

describe('the MySQL paths of the backup scripts, against stand-ins', () => {
  let dir: string;
  let state: string;
  let bin: string;
  let env: Record<string, string>;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-backup-mysql-'));
    state = path.join(dir, 'state');
    bin = path.join(dir, 'bin');
    for (const d of [state, bin, path.join(dir, 'run'), path.join(dir, 'tmp'), path.join(dir, 'secrets'), path.join(dir, 'conf')]) fs.mkdirSync(d);
    const fakes = { mysql: FAKE_MYSQL, mysqldump: FAKE_MYSQLDUMP, xtrabackup: FAKE_XTRABACKUP, xbstream: FAKE_XBSTREAM };
    for (const [name, text] of Object.entries(fakes)) {
      fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    }
    for (const tool of ['bash', 'cat', 'tr', 'sed', 'awk', 'grep', 'mktemp', 'rm', 'mkdir', 'mv', 'cp', 'date', 'basename', 'dirname', 'printf', 'sync', 'head', 'tail', 'od']) {
      const found = ['/usr/bin', '/bin'].map((d) => path.join(d, tool)).find((p) => fs.existsSync(p));
      if (found) fs.symlinkSync(found, path.join(bin, tool));
    }
    fs.writeFileSync(path.join(dir, 'secrets', 'root-password'), ROOT_PASSWORD);
    fs.writeFileSync(path.join(dir, 'secrets', 'replication-password'), 'repl');
    fs.writeFileSync(path.join(dir, 'conf', 'my.cnf'), '[mysqld]\ndatadir = /var/lib/mysql/data\n');
    // the environment the construct gives the xtrabackup sidecar of a MySQL cluster
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MYSQL_8_4 });
    db.addBackupSchedule('Nightly', { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'C', 'backups')), method: BackupMethod.PHYSICAL });
    const sidecar = one(synth(chart), 'StatefulSet').spec.template.spec.containers.find((c: any) => c.name === 'backup');
    env = {
      ...Object.fromEntries(sidecar.env.map((e: any) => [e.name, e.value])),
      PATH: bin,
      FAKE_STATE: state,
      SECRETS_DIR: path.join(dir, 'secrets'),
      RUN_DIR: path.join(dir, 'run'),
      TMPDIR: path.join(dir, 'tmp'),
      DB_CNF: path.join(dir, 'conf', 'my.cnf'),
      DB_SOCKET: '/var/run/mysqld/mysqld.sock',
    };
    fs.writeFileSync(path.join(dir, 'run', 'root.cnf'), '[client]\nuser=root\n');
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function bash(snippet: string, extra: Record<string, string> = {}) {
    return spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/backup-lib.sh\n${snippet}`], { env: { ...env, ...extra }, encoding: 'utf8' });
  }

  function recorded(file: string): string {
    const f = path.join(state, file);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }

  test('a logical dump: mysqldump of every user database in one snapshot without GTID_PURGED, then the accounts as CREATE USER IF NOT EXISTS', () => {
    const r = bash('printf \'[client]\\nuser=root\\n\' >"$RUN_DIR/x.cnf"; dump_sql "$RUN_DIR/x.cnf" --host=db-2.db');
    expect(r.stderr).toEqual('');
    expect(r.status).toBe(0);
    expect(recorded('mysqldump').trim()).toEqual(
      `--defaults-extra-file=${dir}/run/x.cnf --host=db-2.db --single-transaction --routines --events --triggers --hex-blob --skip-add-locks --default-character-set=utf8mb4 --set-gtid-purged=OFF --databases app other db`,
    );
    expect(r.stdout.split('\n')).toEqual([
      '-- cdk8s-mysql logical backup of db (mysql)',
      '-- MySQL dump 10.13',
      'CREATE DATABASE app;',
      '-- cdk8s-mysql: user accounts',
      "CREATE USER IF NOT EXISTS `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS 0x244124303035 REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK;",
      'GRANT USAGE ON *.* TO `app`@`%`;',
      'GRANT SELECT, INSERT ON `app`.* TO `app`@`%`;',
      "CREATE USER IF NOT EXISTS `report`@`10.%` IDENTIFIED WITH 'caching_sha2_password' AS 0x2441 REQUIRE NONE;",
      'GRANT SELECT ON *.* TO `report`@`10.%`;',
      '-- cdk8s-mysql: end of backup',
      '',
    ]);
    // root, repl and MySQL's own accounts are never dumped; hashes are printed as hex
    expect(recorded('statements')).toMatch(/WHERE User NOT IN \('root', 'repl', ''\) AND User NOT LIKE 'mysql\.%'/);
    expect(recorded('statements')).toMatch(/SET SESSION print_identified_with_as_hex = ON; SHOW CREATE USER 'app'@'%'; SHOW GRANTS FOR 'app'@'%';/);
  });

  test('a failing mysqldump fails the dump (no partial dump passes for a good one)', () => {
    fs.writeFileSync(path.join(bin, 'mysqldump'), '#!/bin/bash\necho "mysqldump: Got error: 2013" >&2\nexit 2\n', { mode: 0o755 });
    const r = bash('printf \'[client]\\n\' >"$RUN_DIR/x.cnf"; if dump_sql "$RUN_DIR/x.cnf" >/dev/null; then echo passed; else echo failed; fi');
    expect(r.stdout.trim()).toEqual('failed');
  });

  test('the GTID set of a copy is xtrabackup_binlog_info\'s, over several lines', () => {
    const copy = path.join(dir, 'copy');
    fs.mkdirSync(copy);
    fs.writeFileSync(path.join(copy, 'xtrabackup_binlog_info'), 'mysql-bin.000003\t1337\t3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\nb9b4712a-df64-11e3-b391-60672090eb04:1-7\n');
    const r = bash(`copy_gtid "${copy}"`);
    expect(r.stdout.trim()).toEqual('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,b9b4712a-df64-11e3-b391-60672090eb04:1-7');
    fs.writeFileSync(path.join(copy, 'xtrabackup_info'), 'uuid = x\nserver_version = 8.4.3\n');
    expect(bash(`copy_server_version "${copy}"`).stdout.trim()).toEqual('8.4.3');
  });

  test('a restored primary forgets its source and continues the backup\'s GTID set: RESET MASTER on 8.0, RESET BINARY LOGS AND GTIDS on 8.4', () => {
    const run = (version: string) => spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/replication-lib.sh\nrestored_position_sql "uuid:1-9" "${version}"`], { env: { ...env, RESTORE_BACKUP: 'latest' }, encoding: 'utf8' });
    expect(run('8.4.3').stdout.split('\n')).toEqual(['STOP REPLICA;', 'RESET REPLICA ALL;', 'RESET BINARY LOGS AND GTIDS;', "SET GLOBAL gtid_purged = 'uuid:1-9';", '']);
    expect(run('8.0.40').stdout.split('\n')).toEqual(['STOP REPLICA;', 'RESET REPLICA ALL;', 'RESET MASTER;', "SET GLOBAL gtid_purged = 'uuid:1-9';", '']);
  });

  test.each([[0, 'primary', []], [1, 'replica', ['--slave-info']]])('the xtrabackup sidecar of pod %d (%s) streams a copy with its login in an option file, then the end mark', (ordinal, role, extra) => {
    if (role === 'replica') fs.writeFileSync(path.join(state, 'replica'), '');
    const r = spawnSync('/bin/bash', [path.join(SCRIPTS, 'backup-mysql-send.sh')], { env: { ...env, HOSTNAME: `db-${ordinal}` }, encoding: 'utf8' });
    expect(r.stderr).toMatch(/sent a complete copy/);
    expect(r.stderr).not.toMatch(/FATAL/);
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('XBSTREAM-DATA[cdk8s-mysql-seed-complete:complete\n]');
    const args = recorded('xtrabackup').trim().split(' ');
    expect(args.slice(1)).toEqual(['--backup', '--stream=xbstream', expect.stringMatching(/^--target-dir=.*\/backup$/), ...extra]);
    expect(args[0]).toMatch(/^--defaults-file=.*\/xtrabackup\.cnf$/);
    // the server's options, then the login: the password never reaches a command line
    expect(recorded('xtrabackup.cnf')).toEqual('[mysqld]\ndatadir = /var/lib/mysql/data\n\n[xtrabackup]\nuser=root\npassword="r00t\'s \\"pw\\" \\\\"\nsocket=/var/run/mysqld/mysqld.sock\n');
    expect(recorded('xtrabackup')).not.toContain('r00t');
    // its work directory is gone
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
  });

  test('an unhealthy member sends nothing', () => {
    fs.writeFileSync(path.join(bin, 'mysql'), '#!/bin/bash\necho "ERROR 2002 (HY000): Can\'t connect" >&2\nexit 1\n', { mode: 0o755 });
    const r = spawnSync('/bin/bash', [path.join(SCRIPTS, 'backup-mysql-send.sh')], { env: { ...env, HOSTNAME: 'db-0' }, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toEqual('');
    expect(r.stderr).toMatch(/refusing to send a copy: this server is not healthy/);
    expect(recorded('xtrabackup')).toEqual('');
  });
});
