/**
 * TLS end to end on the pod runner, with a CA and a server certificate made by openssl in the
 * test and given to the clusters as a Secret of type kubernetes.io/tls:
 * - a MariaDB replication cluster of 2 pods with requireSecureTransport: the replica seeds and
 *   replicates over TLS (the primary sees its connection encrypted), a plaintext TCP client is
 *   refused and a TLS client that verifies the server succeeds;
 * - a Galera cluster of 3 nodes with TLS: it forms over TLS, and a node killed with SIGKILL
 *   rejoins by IST over TLS.
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Chart, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { PodRunner } from './runner';
import { EngineVersion, GaleraCluster, MySqlReplicationCluster, ServerTls } from '../../src';

jest.setTimeout(600_000);

const RUNNER = 'tls-e2e';
const ROOT_PASSWORD = 'root "pw" #1';
const TLS_DIR = '/etc/cdk8s-mysql/tls';

let rt: PodRunner;
let work: string;
const cert = { ca: '', crt: '', key: '' };

/** A CA, and a certificate it signs for these DNS names (server and client use), with openssl. */
function makeCertificates(dnsNames: string[]): void {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=e2e-ca']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${dnsNames[0]}`]);
  writeFileSync(join(work, 'ext.cnf'), `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf']);
  cert.ca = readFileSync(join(work, 'ca.crt'), 'utf8');
  cert.crt = readFileSync(join(work, 'tls.crt'), 'utf8');
  cert.key = readFileSync(join(work, 'tls.key'), 'utf8');
}

/** The chart's Secrets: the passwords and the certificate. */
function secrets(c: Chart, name: string, passwords: Record<string, string>): kplus.ISecret {
  new kplus.Secret(c, 'Credentials', { metadata: { name: `${name}-credentials` }, stringData: passwords });
  return new kplus.Secret(c, 'Tls', {
    metadata: { name: `${name}-tls` },
    type: 'kubernetes.io/tls',
    stringData: { 'tls.crt': cert.crt, 'tls.key': cert.key, 'ca.crt': cert.ca },
  });
}

/** The mariadb client of this machine as root on `host`, with extra options. */
async function tcp(host: string, options: string[], statement: string): Promise<{ code: number; out: string }> {
  const r = await rt.client(['timeout', '60', 'mariadb', `--defaults-extra-file=${join(work, 'root.cnf')}`, `--host=${host}`, '--connect-timeout=5',
    ...options, '--batch', '--skip-column-names', '-e', statement]);
  return { code: r.code ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

/** A TLS client that verifies the server's certificate against the CA and the name it connects to. */
const verified = () => ['--ssl', `--ssl-ca=${join(work, 'ca.crt')}`, '--ssl-verify-server-cert'];

async function tlsSql(host: string, statement: string): Promise<string> {
  const r = await tcp(host, verified(), statement);
  if (r.code !== 0) throw new Error(`${host}: ${r.out}`);
  return r.out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tls-e2e-'));
  // the names a Certificate of the construct lists, as Services and pods are named in the runner
  makeCertificates(['tls-write', 'tls-read', 'tls-0.tls', 'tls-1.tls', 'gal-client', 'gal-0.gal', 'gal-1.gal', 'gal-2.gal']);
  writeFileSync(join(work, 'root.cnf'), `[client]\nuser=root\npassword="${ROOT_PASSWORD.replace(/"/g, '\\"')}"\n`, { mode: 0o600 });
  rt = await PodRunner.start({ name: RUNNER, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

afterAll(async () => {
  await rt?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a replication cluster with tls from a Secret and requireSecureTransport', () => {
  afterAll(async () => {
    await rt.scale('tls', 0);
    await rt.waitForStatefulSetReady('tls', 0, 120_000);
  });

  test('the replica replicates over verified TLS, plaintext TCP is refused and a TLS client succeeds', async () => {
    const c = Testing.chart();
    const tls = secrets(c, 'tls', { 'root-password': ROOT_PASSWORD, 'replication-password': 'repl pw' });
    new MySqlReplicationCluster(c, 'Cluster', {
      name: 'tls',
      version: EngineVersion.MARIADB_11_4,
      replicas: 2,
      storage: Size.gibibytes(1),
      tls: ServerTls.fromSecret(tls),
      requireSecureTransport: true,
      serverOptions: { performance_schema: 'ON' },
    });
    await rt.apply(Testing.synth(c));
    await rt.waitForStatefulSetReady('tls', 2, 240_000);

    // the key is mounted read-only, 0440, group mysql (fsGroup): mysqld (uid 999) reads it
    const stat = await rt.exec('tls-0', 'server', ['bash', '-c', `stat -L -c '%a %g' ${TLS_DIR}/tls.key && touch ${TLS_DIR}/x 2>&1 || true`]);
    expect(stat.stdout).toMatch(/^440 999\n/);
    expect(stat.stdout).toMatch(/Read-only file system/);
    expect(await tlsSql('tls-write', 'SELECT @@have_ssl, @@require_secure_transport')).toBe('YES\t1');

    await tlsSql('tls-write', 'CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3)');
    const position = await tlsSql('tls-0.tls', 'SELECT @@gtid_binlog_pos');
    expect(await tlsSql('tls-1.tls', `SELECT MASTER_GTID_WAIT('${position}', 60)`)).toBe('0');
    expect(await tlsSql('tls-1.tls', 'SELECT COUNT(*) FROM app.t')).toBe('3');
    const status = await rt.client(['mariadb', `--defaults-extra-file=${join(work, 'root.cnf')}`, '--host=tls-1.tls', ...verified(), '-e', 'SHOW REPLICA STATUS\\G']);
    expect(status.stdout).toMatch(/Master_SSL_Allowed: Yes/);
    expect(status.stdout).toMatch(/Master_SSL_Verify_Server_Cert: Yes/);
    expect(status.stdout).toMatch(/Slave_IO_Running: Yes/);
    // on the primary, the replica's binlog dump session is encrypted
    const cipher = await tlsSql('tls-0.tls', `SELECT s.VARIABLE_VALUE FROM performance_schema.threads t JOIN performance_schema.status_by_thread s
      USING (THREAD_ID) WHERE t.PROCESSLIST_COMMAND = 'Binlog Dump' AND s.VARIABLE_NAME = 'Ssl_cipher'`);
    expect(cipher).toMatch(/^[A-Z0-9_-]+$/);
    // the replication account requires TLS
    expect(await tlsSql('tls-write', "SELECT ssl_type FROM mysql.user WHERE user = 'repl'")).toBe('ANY');

    // plaintext is refused (MariaDB answers "access denied" with the right password), TLS succeeds
    const plain = await tcp('tls-write', ['--skip-ssl'], 'SELECT 1');
    expect(plain.code).not.toBe(0);
    expect(plain.out).toMatch(/ERROR 1045/);
    expect(await tlsSql('tls-read', "SHOW SESSION STATUS LIKE 'Ssl_version'")).toMatch(/^Ssl_version\tTLSv1\.[23]$/);
    // a client that connects by a name the certificate does not have is refused by its own check
    const wrongName = await tcp(await podIp('tls-0'), verified(), 'SELECT 1');
    expect(wrongName.code).not.toBe(0);
  });
});

async function podIp(pod: string): Promise<string> {
  const r = await rt.exec(pod, pod.startsWith('gal') ? 'mariadb' : 'server', ['hostname', '-i']);
  return r.stdout.trim().split(/\s+/)[0];
}

describe('a Galera cluster with tls', () => {
  test('forms over TLS, and a node killed with SIGKILL rejoins by IST over TLS', async () => {
    const c = Testing.chart();
    const tls = secrets(c, 'gal', { 'root-password': ROOT_PASSWORD, 'sst-password': 'sst pw' });
    new GaleraCluster(c, 'Galera', {
      name: 'gal',
      version: EngineVersion.MARIADB_11_4,
      storage: Size.gibibytes(1),
      tls: ServerTls.fromSecret(tls),
      primaryComponentTimeout: Duration.seconds(30),
      serverOptions: { innodb_buffer_pool_size: '64M', innodb_log_file_size: '16M', wsrep_provider_options: 'gcache.size=32M' },
    });
    await rt.apply(Testing.synth(c));
    await rt.waitForStatefulSetReady('gal', 3, 300_000);
    const galeraSql = async (pod: string, statement: string) => {
      const r = await rt.exec(pod, 'mariadb', ['mariadb', '--defaults-extra-file=/run/mysqld/client.cnf', '--batch', '--skip-column-names', '-e', statement]);
      if (r.code !== 0) throw new Error(`${pod}: ${r.stderr}`);
      return r.stdout.trim();
    };
    expect(await galeraSql('gal-0', "SHOW STATUS LIKE 'wsrep_cluster_size'")).toBe('wsrep_cluster_size\t3');
    expect(await galeraSql('gal-0', "SHOW VARIABLES LIKE 'wsrep_provider_options'")).toMatch(/socket\.ssl = YES/);
    // the nodes joined by SST over TLS (socat with OpenSSL)
    expect(rt.logs('gal-1', 'mariadb')).toMatch(/encrypt='4'/);
    expect(rt.logs('gal-1', 'mariadb')).toMatch(/SST completed on joiner|mariabackup SST completed/);

    await galeraSql('gal-0', 'CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)');
    // While a node applies a DDL, Galera marks its state unsafe (grastate.dat names no cluster), and
    // a node killed then rejoins by a full SST by design (see the README). This is a crash between
    // transactions: gal-2 is killed once it has applied the DDL and grastate.dat names the cluster.
    const status = (name: string) => `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '${name}'`;
    const uuid = await galeraSql('gal-0', status('wsrep_cluster_state_uuid'));
    const ddl = Number(await galeraSql('gal-0', status('wsrep_last_committed')));
    for (let attempt = 0; ; attempt++) {
      const applied = Number(await galeraSql('gal-2', status('wsrep_last_committed')));
      const saved = (await rt.exec('gal-2', 'mariadb', ['cat', '/var/lib/mysql/grastate.dat'])).stdout;
      if (applied >= ddl && new RegExp(`^uuid:\\s+${uuid}$`, 'm').test(saved)) break;
      if (attempt >= 300) throw new Error(`gal-2 has not applied the DDL (${applied} < ${ddl}) or its grastate.dat names no cluster:\n${saved}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await rt.killContainer('gal-2', 'mariadb');
    await galeraSql('gal-0', 'INSERT INTO app.t (v) VALUES (1), (2), (3)');
    await rt.waitForReady('gal-2', 180_000);
    const log = rt.logs('gal-2', 'mariadb');
    expect(log).toMatch(new RegExp(`this node's last committed position: ${uuid}:\\d+`));
    expect(log).toMatch(/IST received/);
    expect(log).not.toMatch(/Proceeding with SST/);
    expect(await galeraSql('gal-2', 'SELECT COUNT(*) FROM app.t')).toBe('3');
    // clients use TLS too
    expect(await tlsSql('gal-client', "SHOW SESSION STATUS LIKE 'Ssl_version'")).toMatch(/^Ssl_version\tTLSv1\.[23]$/);
  });
});
