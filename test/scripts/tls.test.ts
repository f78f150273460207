/**
 * TLS of a replication cluster, run by its own scripts against Debian's MariaDB 10.11, with a CA
 * and a server certificate made by openssl in the test: the primary requires secure transport,
 * a replica seeds and replicates over verified TLS, the scripts' TCP checks use TLS, the agent
 * puts TLS settings right on a replica and reloads a renewed certificate, and a client that
 * trusts another CA, or connects in plaintext, is refused.
 *
 * Each "pod" is a set of processes with its own loopback address; peer names (`tl-0.tl`)
 * resolve through a private /etc/hosts bind-mounted in a mount namespace of each process.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { EngineVersion, MySqlReplicationCluster, ServerTls } from '../../src';
import { one, synth } from '../util';

jest.setTimeout(180_000);

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');
const NAME = 'tl';

interface Result { readonly code: number | null; readonly stdout: string; readonly stderr: string }

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A CA and a certificate it signs for the given DNS names, made with openssl in DIR. */
function makeCertificates(dir: string, dnsNames: string[], caName = 'test-ca'): void {
  fs.mkdirSync(dir, { recursive: true });
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${caName}`]);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${dnsNames[0]}`]);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf']);
}

function serial(certFile: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-serial', '-in', certFile], { encoding: 'utf8' }).trim();
}

describe('a MariaDB replication cluster with tls and requireSecureTransport, run by its own scripts', () => {
  let root: string;
  let env: Record<string, string>;
  let config: Record<string, string>;
  let hosts: string;
  let tlsDir: string;
  let network: string;
  let dbPort: number;
  let seedPort: number;
  const processes: ChildProcess[] = [];

  const ip = (ordinal: number) => `${network}.${10 + ordinal}`;
  const dir = (ordinal: number) => path.join(root, `${NAME}-${ordinal}`);

  function podEnv(ordinal: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const d = dir(ordinal);
    return {
      ...env,
      DB_PORT: `${dbPort}`,
      SEED_PORT: `${seedPort}`,
      DB_SOCKET: `${d}/run/mysqld.sock`,
      DB_CNF: `${d}/conf/my.cnf`,
      CONFIG_DIR: `${d}/config`,
      SECRETS_DIR: path.join(root, 'credentials'),
      RUN_DIR: `${d}/run`,
      DATA_ROOT: `${d}/volume`,
      TMPDIR: `${d}/tmp`,
      HOSTNAME: `${NAME}-${ordinal}`,
      TLS_DIR: tlsDir,
      PATH: process.env.PATH,
      ...extra,
    };
  }

  function argv(args: string[]): string[] {
    return ['/usr/bin/unshare', '--mount', '--propagation', 'private', '--', '/bin/bash', '-c',
      'mount --bind "$1" /etc/hosts && shift && exec "$@"', '_', hosts, ...args];
  }

  function pod(ordinal: number): void {
    const d = dir(ordinal);
    for (const sub of ['volume', 'run', 'tmp', 'conf', 'config']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    const overrides = `\n[mysqld]\nuser = root\nbind_address = ${ip(ordinal)}\nport = ${dbPort}\ninnodb_buffer_pool_size = 32M\n` +
      `datadir = ${d}/volume/data\nsocket = ${d}/run/mysqld.sock\npid_file = ${d}/run/mysqld.pid\n` +
      `ssl_cert = ${tlsDir}/tls.crt\nssl_key = ${tlsDir}/tls.key\nssl_ca = ${tlsDir}/ca.crt\n`;
    for (const [file, text] of Object.entries(config)) {
      fs.writeFileSync(path.join(d, 'config', file), file === 'server.cnf' ? text + overrides : text);
    }
  }

  function exec(ordinal: number, args: string[], extra: Record<string, string> = {}): Promise<Result> {
    return new Promise((resolve, reject) => {
      const a = argv(args);
      const child = spawn(a[0], a.slice(1), { env: podEnv(ordinal, extra), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    });
  }

  const script = (ordinal: number, name: string) => exec(ordinal, ['/bin/bash', path.join(SCRIPTS, name)]);
  const bash = (ordinal: number, snippet: string, extra: Record<string, string> = {}) =>
    exec(ordinal, ['/bin/bash', '--norc', '-c', `source ${SCRIPTS}/replication-lib.sh\n${snippet}`], extra);

  function start(ordinal: number, name: string): void {
    const log = fs.openSync(path.join(dir(ordinal), `${name}.log`), 'a');
    const a = argv(['/bin/bash', path.join(SCRIPTS, name)]);
    processes.push(spawn(a[0], a.slice(1), { env: podEnv(ordinal), detached: true, stdio: ['ignore', log, log] }));
    fs.closeSync(log);
  }

  function sql(ordinal: number, statements: string): string {
    return execFileSync('mariadb', [`--defaults-extra-file=${dir(ordinal)}/run/root.cnf`, '--batch', '--skip-column-names'],
      { input: statements, encoding: 'utf8', stdio: 'pipe' }).trim();
  }

  function alive(ordinal: number): boolean {
    try {
      sql(ordinal, 'SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  function status(ordinal: number): Record<string, string> {
    const out = execFileSync('mariadb', [`--defaults-extra-file=${dir(ordinal)}/run/root.cnf`, '--batch', '-e', 'SHOW REPLICA STATUS'], { encoding: 'utf8' });
    const [header, values] = out.split('\n');
    if (!values) return {};
    const names = header.split('\t');
    return Object.fromEntries(values.split('\t').map((v, i) => [names[i], v]));
  }

  /** A TCP client of the primary as root, with extra client options; the result of `-e SQL`. */
  function tcpClient(options: string[], statement: string): string {
    return execFileSync('mariadb', ['--no-defaults', `--host=${ip(0)}`, `--port=${dbPort}`, '--user=root', '--password=root-pw', ...options,
      '--batch', '--skip-column-names', '-e', statement], { encoding: 'utf8', stdio: 'pipe' }).trim();
  }

  /** The cipher of the primary's binlog dump session (a replica's IO thread). */
  function dumpCipher(): string {
    return sql(0, `SELECT s.VARIABLE_VALUE FROM performance_schema.threads t JOIN performance_schema.status_by_thread s USING (THREAD_ID)
      WHERE t.PROCESSLIST_COMMAND = 'Binlog Dump' AND s.VARIABLE_NAME = 'Ssl_cipher'`);
  }

  beforeAll(async () => {
    const chart = Testing.chart();
    new MySqlReplicationCluster(chart, 'db', {
      name: NAME,
      version: EngineVersion.MARIADB_10_11,
      replicas: 3,
      tls: ServerTls.fromSecret(kplus.Secret.fromSecretName(chart, 'Tls', 'tl-tls')),
      requireSecureTransport: true,
      serverOptions: { performance_schema: 'ON' },
    });
    const manifests = synth(chart);
    env = Object.fromEntries(one(manifests, 'StatefulSet').spec.template.spec.initContainers[0].env
      .map((e: { name: string; value: string }) => [e.name, e.value]));
    config = one(manifests, 'ConfigMap', `${NAME}-config`).data;
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-tls-'));
    network = `127.${100 + (process.pid % 100)}.${1 + Math.floor(Math.random() * 250)}`;
    hosts = path.join(root, 'hosts');
    fs.writeFileSync(hosts, ['127.0.0.1 localhost', ...[0, 1, 2].map((i) => `${ip(i)} ${NAME}-${i}.${NAME}`), ''].join('\n'));
    fs.mkdirSync(path.join(root, 'credentials'));
    fs.writeFileSync(path.join(root, 'credentials', 'root-password'), 'root-pw');
    fs.writeFileSync(path.join(root, 'credentials', 'replication-password'), 'repl-pw');
    tlsDir = path.join(root, 'tls');
    // the names a Certificate of the construct lists (without a namespace)
    makeCertificates(tlsDir, [`${NAME}-write`, `${NAME}-read`, ...[0, 1, 2].map((i) => `${NAME}-${i}.${NAME}`)]);
    dbPort = await freePort();
    seedPort = await freePort();
  });

  afterAll(async () => {
    for (const child of processes) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        continue;
      }
      await exited;
    }
    if (!process.env.KEEP_TLS_DIR) fs.rmSync(root, { recursive: true, force: true });
  }, 120_000);

  test('the synthesized configuration offers TLS and requires it for TCP', () => {
    expect(config['server.cnf']).toMatch(/require_secure_transport = ON/);
    expect(env.TLS_DIR).toBe('/etc/cdk8s-mysql/tls');
  });

  test('the primary starts with TLS, creates the replication account with REQUIRE SSL, and refuses plaintext TCP', async () => {
    pod(0);
    expect((await script(0, 'replication-init.sh')).code).toBe(0);
    start(0, 'replication-server.sh');
    await waitFor('the primary answers', () => alive(0));
    expect(sql(0, "SELECT ssl_type FROM mysql.user WHERE user = 'repl'")).toBe('ANY');
    expect(sql(0, 'SELECT @@require_secure_transport, @@have_ssl')).toBe('1\tYES');
    // the probes use the socket, which require_secure_transport exempts
    expect((await script(0, 'replication-ready.sh')).stdout).toBe('ready\n');
    expect(() => tcpClient(['--skip-ssl'], 'SELECT 1')).toThrow(/ERROR 1045 .*Access denied/);
    // a TLS client that verifies the server against the CA and the name it connects to succeeds
    expect(tcpClient(['--ssl', `--ssl-ca=${tlsDir}/ca.crt`], "SHOW SESSION STATUS LIKE 'Ssl_version'")).toMatch(/^Ssl_version\tTLSv1\.[23]$/);
  });

  test('a replica seeds from the primary and replicates over TLS, verifying the primary\'s certificate and name', async () => {
    start(0, 'replication-donor.sh');
    start(0, 'replication-agent.sh');
    await waitFor('the donor listens', () => execFileSync('ss', ['-Hltn', `sport = :${seedPort}`], { encoding: 'utf8' }).trim() !== '');
    pod(1);
    expect((await script(1, 'replication-init.sh')).code).toBe(0);
    start(1, 'replication-server.sh');
    await waitFor('the replica answers', () => alive(1));
    start(1, 'replication-agent.sh');
    await waitFor('the replica is ready', async () => (await script(1, 'replication-ready.sh')).code === 0);
    expect(status(1)).toMatchObject({
      Master_Host: 'tl-0.tl',
      Slave_IO_Running: 'Yes',
      Master_SSL_Allowed: 'Yes',
      Master_SSL_Verify_Server_Cert: 'Yes',
      Master_SSL_CA_File: `${tlsDir}/ca.crt`,
    });
    sql(0, 'CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); USE app; INSERT INTO app.t SELECT seq FROM seq_1_to_100;');
    const position = sql(0, 'SELECT @@gtid_binlog_pos');
    expect(sql(1, `SELECT MASTER_GTID_WAIT('${position}', 60)`)).toBe('0');
    expect(sql(1, 'SELECT COUNT(*) FROM app.t')).toBe('100');
    // the primary sees the replica's connection encrypted
    expect(dumpCipher()).toMatch(/^[A-Z0-9_-]+$/);
  });

  test('the scripts check donors over TLS: a new replica finds the ready replica although plaintext is refused', async () => {
    pod(2);
    // as the init container does before it looks for donors
    const order = await bash(2, 'write_client_cnf "$(replication_cnf)" "$REPLICATION_USER" replication-password && donor_order 2');
    expect(order.stderr).not.toMatch(/is not a donor/);
    expect(order.stdout).toBe('1\n0\n');
    // with a CA that did not sign the servers' certificate, the check fails: the name and chain are verified
    makeCertificates(path.join(root, 'other'), ['tl-write'], 'other-ca');
    const untrusted = await bash(2, 'write_client_cnf "$(replication_cnf)" "$REPLICATION_USER" replication-password && donor_order 2', { TLS_DIR: path.join(root, 'other') });
    expect(untrusted.stdout).toBe('0\n');
    expect(untrusted.stderr).toMatch(/tl-1\.tl is not a donor/);
  });

  test('the agent turns TLS back on for a replica whose replication was changed to plaintext', async () => {
    sql(1, "STOP REPLICA; CHANGE MASTER TO MASTER_SSL = 0, MASTER_SSL_CA = '', MASTER_SSL_VERIFY_SERVER_CERT = 0; START REPLICA");
    await waitFor('the agent restores TLS', () => {
      const s = status(1);
      return s.Master_SSL_Allowed === 'Yes' && s.Slave_IO_Running === 'Yes' && s.Master_SSL_Verify_Server_Cert === 'Yes';
    });
    sql(0, 'INSERT INTO app.t VALUES (101)');
    const position = sql(0, 'SELECT @@gtid_binlog_pos');
    expect(sql(1, `SELECT MASTER_GTID_WAIT('${position}', 60)`)).toBe('0');
    expect(fs.readFileSync(path.join(dir(1), 'replication-agent.sh.log'), 'utf8')).toMatch(/changing its TLS settings to MASTER_SSL = 1/);
  });

  test('a renewed certificate is reloaded by the agent without a restart', async () => {
    const before = serial(`${tlsDir}/tls.crt`);
    const served = () => execFileSync('bash', ['-c',
      `openssl s_client -starttls mysql -connect ${ip(0)}:${dbPort} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: 'utf8' }).trim();
    expect(served()).toBe(before);
    // a new certificate from the same CA, as cert-manager writes it at a renewal
    const renew = path.join(root, 'renew');
    fs.mkdirSync(renew);
    fs.copyFileSync(`${tlsDir}/ca.crt`, `${renew}/ca.crt`);
    fs.copyFileSync(`${tlsDir}/ca.key`, `${renew}/ca.key`);
    execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=tl-write'], { cwd: renew, stdio: 'pipe' });
    execFileSync('openssl', ['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2',
      '-extfile', `${tlsDir}/ext.cnf`], { cwd: renew, stdio: 'pipe' });
    fs.copyFileSync(`${renew}/tls.key`, `${tlsDir}/tls.key`);
    fs.copyFileSync(`${renew}/tls.crt`, `${tlsDir}/tls.crt`);
    const after = serial(`${tlsDir}/tls.crt`);
    expect(after).not.toBe(before);
    await waitFor('the primary serves the renewed certificate', () => served() === after, 30_000);
    expect(fs.readFileSync(path.join(dir(0), 'replication-agent.sh.log'), 'utf8')).toMatch(/the certificate files changed: reloading them/);
    // replication goes on with the renewed certificate
    sql(0, 'INSERT INTO app.t VALUES (102)');
    const position = sql(0, 'SELECT @@gtid_binlog_pos');
    expect(sql(1, `SELECT MASTER_GTID_WAIT('${position}', 60)`)).toBe('0');
  });
});
