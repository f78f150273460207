/**
 * The pieces of the replication scripts that run without a server: the pod's configuration
 * (role, server_id) and the parsing of mariadb-backup's info files, run for real with bash.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { EngineVersion, MySqlReplicationCluster, MySqlReplicationClusterProps } from '../../src';
import { one, synth } from '../util';

const LIB = path.join(__dirname, '..', '..', 'src', 'scripts', 'replication-lib.sh');

/** Runs a bash snippet with replication-lib.sh sourced, in a clean environment. */
function bash(snippet: string, env: Record<string, string>) {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${LIB}\n${snippet}`], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The environment and the ConfigMap a synthesized cluster gives its init container. */
function synthesized(props: MySqlReplicationClusterProps) {
  const chart = Testing.chart();
  new MySqlReplicationCluster(chart, 'db', props);
  const manifests = synth(chart);
  const init = one(manifests, 'StatefulSet').spec.template.spec.initContainers[0];
  const env: Record<string, string> = Object.fromEntries(init.env.map((e: { name: string; value: string }) => [e.name, e.value]));
  const configMap = one(manifests, 'ConfigMap', `${props.name}-config`);
  return { env, config: configMap.data as Record<string, string> };
}

describe('the pod configuration written by the init container', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-cnf-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Writes the ConfigMap to a directory and renders my.cnf for one hostname. */
  function render(props: MySqlReplicationClusterProps, hostname: string) {
    const { env, config } = synthesized(props);
    const podDir = fs.mkdtempSync(path.join(dir, `${hostname}-`));
    const configDir = path.join(podDir, 'config');
    fs.mkdirSync(configDir);
    for (const [file, text] of Object.entries(config)) {
      fs.writeFileSync(path.join(configDir, file), text);
    }
    const cnf = path.join(podDir, 'my.cnf');
    // the same two steps as replication-init.sh
    const r = bash('ordinal=$(pod_ordinal)\nrender_server_cnf "$ordinal"', { ...env, HOSTNAME: hostname, CONFIG_DIR: configDir, DB_CNF: cnf });
    return { ...r, cnf: fs.existsSync(cnf) ? fs.readFileSync(cnf, 'utf8') : '', config };
  }

  test('ordinal 0 is the primary: the cluster settings, then the primary settings, then server_id = base', () => {
    const r = render({ name: 'shop', version: EngineVersion.MARIADB_10_11 }, 'shop-0');
    expect(r.status).toBe(0);
    expect(r.cnf).toContain(r.config['server.cnf']);
    expect(r.cnf).toContain(r.config['primary.cnf']);
    expect(r.cnf).not.toContain('read_only = ON');
    expect(r.cnf.indexOf(r.config['server.cnf'])).toBeLessThan(r.cnf.indexOf(r.config['primary.cnf']));
    expect(r.cnf).toMatch(/\[mysqld\]\nserver_id = 100\nreport_host = shop-0\.shop\n$/);
  });

  test('another ordinal is a read-only replica with server_id = base + ordinal', () => {
    const r = render({ name: 'shop', version: EngineVersion.MYSQL_8_4, serverIdBase: 7000 }, 'shop-12');
    expect(r.status).toBe(0);
    expect(r.cnf).toContain(r.config['replica.cnf']);
    expect(r.cnf).toContain('read_only = ON');
    expect(r.cnf).toMatch(/server_id = 7012\nreport_host = shop-12\.shop\n$/);
  });

  test('a fully qualified hostname gives the same ordinal', () => {
    const r = render({ name: 'shop' }, 'shop-2.shop.default.svc.cluster.local');
    expect(r.status).toBe(0);
    expect(r.cnf).toMatch(/server_id = 102\n/);
  });

  test('the highest server_id is 4294967295, and a pod beyond it fails with the fix', () => {
    expect(render({ name: 'big', serverIdBase: 4294967290, replicas: 6 }, 'big-5').cnf).toMatch(/server_id = 4294967295\n/);
    // scaled beyond what the construct validated, e.g. with kubectl scale
    const r = render({ name: 'big', serverIdBase: 4294967290, replicas: 6 }, 'big-6');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/server_id 4294967290 \+ 6 = 4294967296 is above 4294967295: lower serverIdBase or scale down/);
    expect(r.cnf).toEqual('');
  });

  test('a hostname of another StatefulSet is refused rather than guessed', () => {
    const r = render({ name: 'shop' }, 'shopping-1');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/hostname 'shopping-1' is not a pod of StatefulSet 'shop' \(expected shop-<ordinal>\)/);
  });

  test('a hostname without an ordinal is refused', () => {
    const r = render({ name: 'shop' }, 'shop-x');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/hostname 'shop-x' does not end in a pod ordinal \(expected shop-<ordinal>\)/);
  });
});

describe('the GTID position of a copy, read from the info files of mariadb-backup', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-gtid-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function gtid(files: Record<string, string>) {
    for (const [name, text] of Object.entries(files)) {
      fs.writeFileSync(path.join(dir, name), text);
    }
    return bash(`seed_gtid ${dir}`, {});
  }

  test('MariaDB 10.11: the third field of xtrabackup_binlog_info', () => {
    const r = gtid({ xtrabackup_binlog_info: 'mariadb-bin.000001\t853\t0-100-3\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('0-100-3');
  });

  test('MariaDB 11.4: the third field of mariadb_backup_binlog_info', () => {
    const r = gtid({ mariadb_backup_binlog_info: 'mariadb-bin.000004\t1207\t0-100-42\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('0-100-42');
  });

  test('a copy of a replica: gtid_slave_pos of xtrabackup_slave_info wins over its binlog position', () => {
    const r = gtid({
      xtrabackup_binlog_info: 'mariadb-bin.000002\t400\t0-101-9\n',
      xtrabackup_slave_info: "SET GLOBAL gtid_slave_pos = '0-100-7';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n",
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('0-100-7');
  });

  test('a copy of a replica on MariaDB 11.4: mariadb_backup_slave_info, with several domains', () => {
    const r = gtid({
      mariadb_backup_binlog_info: 'mariadb-bin.000002\t400\t0-101-9,1-200-4\n',
      mariadb_backup_slave_info: "SET GLOBAL gtid_slave_pos = '0-100-7,1-200-4';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n",
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('0-100-7,1-200-4');
  });

  test('a copy of a primary without any transaction has an empty position (replicate from the start)', () => {
    const r = gtid({ xtrabackup_binlog_info: 'mariadb-bin.000001\t330\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toEqual('');
  });

  test('an empty slave info file (a copy of a primary) falls back to the binlog position', () => {
    const r = gtid({ mariadb_backup_slave_info: '', mariadb_backup_binlog_info: 'mariadb-bin.000001\t853\t0-100-3\n' });
    expect(r.stdout).toEqual('0-100-3');
  });

  test('a copy without any info file is an error', () => {
    const r = gtid({ ibdata1: 'x' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the copy has no binlog info file/);
  });

  test('a position that is not a GTID list is refused, not passed to the server', () => {
    const r = gtid({ xtrabackup_binlog_info: "mariadb-bin.000001\t853\t0-100-3'; DROP TABLE x; --\n" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/xtrabackup_binlog_info holds .* which is not a GTID position/);
  });
});
