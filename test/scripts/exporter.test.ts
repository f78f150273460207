/**
 * The exporter's account and option file (src/scripts/exporter-lib.sh, exporter-init.sh) against
 * a real MariaDB 10.11, read by Debian's prometheus-mysqld-exporter (0.14): the account reads
 * what the exporter needs and nothing more, it is created once, and the option file logs in
 * with passwords full of quotes, '#', ';', backslashes and spaces.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { startMariaDb, ThrowawayServer } from '../mariadb-server';

jest.setTimeout(120_000);

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');
const EXPORTER = '/usr/bin/prometheus-mysqld-exporter';
/** Every character the option file must carry literally. */
const PASSWORD = 'ex "p\'w" #1;2 \\ end';

let server: ThrowawayServer;
let dir: string;
let secrets: string;
let rootCnf: string;

function env(): Record<string, string> {
  return { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', SECRETS_DIR: secrets, DB_SOCKET: server.socket, TMPDIR: dir, EXPORTER_CNF: path.join(dir, 'exporter.cnf') };
}

/** Runs a bash snippet with lib.sh and exporter-lib.sh sourced. */
function bash(snippet: string) {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/lib.sh\nsource ${SCRIPTS}/exporter-lib.sh\n${snippet}`], { encoding: 'utf8', env: env() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function setPassword(password: string): void {
  fs.writeFileSync(path.join(secrets, 'exporter-password'), password);
}

/** Runs SQL as the exporter (through a client option file the test writes itself). */
function asExporter(statement: string, password = PASSWORD) {
  const cnf = path.join(dir, 'client.cnf');
  fs.writeFileSync(cnf, `[client]\nuser=exporter\npassword="${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\nsocket=${server.socket}\n`, { mode: 0o600 });
  const r = spawnSync('mariadb', [`--defaults-extra-file=${cnf}`, '--batch', '--skip-column-names'], { input: statement, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts the exporter on its option file, scrapes it once, stops it; returns the metrics. */
async function scrape(cnf: string): Promise<string> {
  const port = await freePort();
  const exporter: ChildProcess = spawn(EXPORTER, [`--config.my-cnf=${cnf}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        return await response.text();
      } catch (e) {
        if (i > 100 || exporter.exitCode !== null) {
          throw new Error(`the exporter does not answer (exit code ${exporter.exitCode}): ${e}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    const exited = new Promise((r) => exporter.once('exit', r));
    exporter.kill('SIGTERM');
    await exited;
  }
}

function metric(metrics: string, name: string): string[] {
  return metrics.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));
}

describe('the exporter account (exporter-lib.sh)', () => {
  beforeAll(async () => {
    if (!fs.existsSync(EXPORTER)) {
      throw new Error(`${EXPORTER} is missing: install Debian's prometheus-mysqld-exporter (test/e2e/host-setup.sh does)`);
    }
    server = await startMariaDb(['--log-bin=mariadb-bin', '--server-id=1']);
    dir = fs.mkdtempSync('/tmp/cdk8s-mysql-exporter-');
    secrets = path.join(dir, 'secrets');
    fs.mkdirSync(secrets);
    rootCnf = path.join(dir, 'root.cnf');
    fs.writeFileSync(rootCnf, `[client]\nuser=root\nsocket=${server.socket}\n`, { mode: 0o600 });
    setPassword(PASSWORD);
    server.sql([
      'CREATE DATABASE app;',
      'CREATE TABLE app.orders (id INT PRIMARY KEY, secret VARCHAR(20));',
      "INSERT INTO app.orders VALUES (1, 'card');",
      // a replication source that is never started: SHOW SLAVE STATUS has a row to read
      "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 1, MASTER_USER = 'repl', MASTER_PASSWORD = 'x';",
    ].join('\n'));
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('ensure_exporter_user creates exporter@localhost with only the monitoring privileges, limited to 3 connections', () => {
    const r = bash(`ensure_exporter_user ${rootCnf}`);
    expect(r.stderr).toMatch(/the exporter's account exporter@localhost is ready/);
    expect(r.status).toBe(0);
    const grants = server.sql("SHOW GRANTS FOR 'exporter'@'localhost'").trim().split('\n');
    expect(grants).toHaveLength(2);
    expect(grants[0]).toMatch(/^GRANT PROCESS, SLAVE MONITOR ON \*\.\* TO `exporter`@`localhost` IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}' WITH MAX_USER_CONNECTIONS 3$/);
    expect(grants[1]).toEqual('GRANT SELECT ON `performance_schema`.* TO `exporter`@`localhost`');
  });

  test('the password reaches the binary log only as its hash', () => {
    const binlog = server.sql('SHOW BINLOG EVENTS').toString();
    expect(binlog).toMatch(/CREATE USER IF NOT EXISTS 'exporter'@'localhost' IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
    expect(binlog).not.toContain('#1;2');
  });

  test('a second run logs in and writes nothing', () => {
    const before = server.sql('SELECT @@gtid_binlog_pos').trim();
    const r = bash(`ensure_exporter_user ${rootCnf}`);
    expect(r.status).toBe(0);
    expect(r.stderr).toEqual('');
    expect(server.sql('SELECT @@gtid_binlog_pos').trim()).toEqual(before);
  });

  test('the exporter reads the server status, variables, replication status, performance_schema and InnoDB compression tables', () => {
    for (const statement of [
      'SHOW GLOBAL STATUS LIKE "Uptime"',
      'SHOW GLOBAL VARIABLES LIKE "max_connections"',
      'SHOW ALL SLAVES STATUS',
      'SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest',
      'SELECT COUNT(*) FROM information_schema.INNODB_CMP',
    ]) {
      const r = asExporter(statement);
      expect({ statement, stderr: r.stderr, status: r.status }).toEqual({ statement, stderr: '', status: 0 });
    }
  });

  test('the exporter cannot read or change any data, nor the accounts', () => {
    const denied: Array<[string, RegExp]> = [
      ['SELECT * FROM app.orders', /ERROR 1142 .*SELECT command denied/],
      ["INSERT INTO app.orders VALUES (2, 'x')", /ERROR 1142 .*INSERT command denied/],
      ['SELECT * FROM mysql.global_priv', /ERROR 1142 .*SELECT command denied/],
      ['CREATE DATABASE other', /ERROR 1044 .*Access denied/],
      ['UPDATE performance_schema.setup_instruments SET ENABLED = "NO"', /ERROR 1142 .*UPDATE command denied/],
      ['STOP SLAVE', /ERROR 1227 .*Access denied/],
      ["CREATE USER 'x'@'localhost'", /ERROR 1227 .*Access denied/],
    ];
    for (const [statement, error] of denied) {
      const r = asExporter(statement);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(error);
    }
    expect(server.sql('SELECT COUNT(*) FROM app.orders').trim()).toEqual('1');
  });

  test('a fourth connection of the exporter is refused (MAX_USER_CONNECTIONS 3)', async () => {
    const cnf = path.join(dir, 'client.cnf');
    asExporter('SELECT 1');
    const sleepers = [0, 1, 2].map(() => spawn('mariadb', [`--defaults-extra-file=${cnf}`, '-e', 'SELECT SLEEP(10)'], { stdio: 'ignore' }));
    try {
      for (let i = 0; server.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'exporter'").trim() !== '3'; i++) {
        if (i > 100) throw new Error('the three sessions of the exporter did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const r = asExporter('SELECT 1');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/ERROR 1226 .*max_user_connections/);
    } finally {
      for (const s of sleepers) s.kill('SIGKILL');
      server.sql("KILL USER 'exporter'");
    }
  });

  test('mysqld_exporter logs in with the option file of exporter-init.sh and scrapes every default collector without an error', async () => {
    const cnf = env().EXPORTER_CNF;
    const r = spawnSync('bash', [path.join(SCRIPTS, 'exporter-init.sh')], { encoding: 'utf8', env: env() });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('#1;2');
    expect(fs.statSync(cnf).mode.toString(8).slice(-3)).toEqual('600');
    const metrics = await scrape(cnf);
    expect(metric(metrics, 'mysql_up')).toEqual(['mysql_up 1']);
    expect(metric(metrics, 'mysql_exporter_last_scrape_error')).toEqual(['mysql_exporter_last_scrape_error 0']);
    // 0.14 counts errors per collector only once one fails
    expect(metric(metrics, 'mysql_exporter_scrape_errors_total')).toEqual([]);
    const collectors = metric(metrics, 'mysql_exporter_collector_duration_seconds').map((line) => /collector="([^"]+)"/.exec(line)?.[1]);
    expect(collectors).toEqual(expect.arrayContaining(['collect.global_status', 'collect.global_variables', 'collect.slave_status', 'collect.info_schema.innodb_cmp']));
    expect(metric(metrics, 'mysql_global_status_uptime')).toHaveLength(1);
    // the replication status of the source that was never started: both threads stopped
    expect(metric(metrics, 'mysql_slave_status_slave_io_running')).toEqual([expect.stringMatching(/ 0$/)]);
    expect(metric(metrics, 'mysql_slave_status_slave_sql_running')).toEqual([expect.stringMatching(/ 0$/)]);
  });

  test('a changed Secret changes the account\'s password; the old one stops working', async () => {
    const next = 'rotated #2; "q" \\';
    setPassword(next);
    const r = bash(`ensure_exporter_user ${rootCnf} && write_exporter_cnf "$EXPORTER_CNF"`);
    expect(r.status).toBe(0);
    expect(asExporter('SELECT CURRENT_USER()', next).stdout).toEqual('exporter@localhost');
    expect(asExporter('SELECT 1', PASSWORD).stderr).toMatch(/ERROR 1045/);
    expect(metric(await scrape(env().EXPORTER_CNF), 'mysql_up')).toEqual(['mysql_up 1']);
    setPassword(PASSWORD);
  });

  test.each([['pa$HOME'], ['50%(user)s'], ['back`quote']])('a password the exporter\'s parser would change (%s) is refused, naming the key', (password) => {
    setPassword(password);
    const cnf = path.join(dir, 'refused.cnf');
    const r = bash(`write_exporter_cnf ${cnf}`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/credential 'exporter-password' contains \$, % or a backquote/);
    expect(r.stderr).not.toContain(password);
    expect(fs.existsSync(cnf)).toBe(false);
    const sqlRun = bash(`exporter_user_sql ${rootCnf}`);
    expect(sqlRun.status).toBe(1);
    expect(sqlRun.stdout).toEqual('');
    setPassword(PASSWORD);
  });

  test('a missing exporter-password is an error naming the key', () => {
    fs.rmSync(path.join(secrets, 'exporter-password'));
    const r = bash(`ensure_exporter_user ${rootCnf}`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/credential 'exporter-password' is missing/);
    setPassword(PASSWORD);
  });
});
