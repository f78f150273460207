/**
 * A harness for running the backup, restore and replication scripts, unmodified, against real
 * MariaDB servers from Debian's packages, outside any pod: every "pod" is a set of processes on
 * this host with its own loopback address, directories and hostname; peer names (`rt-1.rt`)
 * resolve through a private /etc/hosts bind-mounted in a mount namespace of each process. The
 * environment is the one the construct synthesizes; only paths, ports and a few options needed
 * to run as root on a shared host are overridden. The scripts run with a PATH without any
 * `mysql*` program and without netcat, as in the mariadb:11.4 image.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');

export interface Result {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // exited already
  }
}

export function listening(port: number): boolean {
  return execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().length > 0;
}

/** A directory of links to this host's programs, minus what the mariadb:11.4 image lacks. */
export function imageLikeBin(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  for (const source of ['/usr/sbin', '/usr/bin']) {
    for (const name of fs.readdirSync(source)) {
      if (/^mysql/.test(name) || ['nc', 'ncat', 'netcat', 'nc.openbsd', 'nc.traditional'].includes(name)) continue;
      const link = path.join(bin, name);
      if (!fs.existsSync(link)) fs.symlinkSync(path.join(source, name), link);
    }
  }
  return bin;
}

/** What the "pods" of one test share. */
export class Host {
  readonly root: string;
  readonly hosts: string;
  readonly bin: string;
  readonly network: string;
  private readonly names = new Map<string, string>();

  constructor(prefix: string) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `cdk8s-mysql-${prefix}-`));
    this.hosts = path.join(this.root, 'hosts');
    this.network = `127.${100 + (process.pid % 100)}.${1 + Math.floor(Math.random() * 250)}`;
    this.bin = imageLikeBin(this.root);
    this.writeHosts();
  }

  /** Gives a DNS name the next loopback address of this test's network. */
  address(name: string): string {
    let ip = this.names.get(name);
    if (!ip) {
      ip = `${this.network}.${10 + this.names.size}`;
      this.names.set(name, ip);
      this.writeHosts();
    }
    return ip;
  }

  /** Runs a command with the private /etc/hosts, an environment and a working directory. */
  spawn(args: string[], env: NodeJS.ProcessEnv, stdio: any): ChildProcess {
    const argv = ['/usr/bin/unshare', '--mount', '--propagation', 'private', '--', '/bin/bash', '-c',
      'mount --bind "$1" /etc/hosts && shift && exec "$@"', '_', this.hosts, ...args];
    return spawn(argv[0], argv.slice(1), { env, detached: true, stdio });
  }

  /** Runs a command to completion; `started` sees the process while it runs (to kill it mid-way). */
  run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000, log?: string, started?: (child: ChildProcess) => void): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(args, env, ['ignore', 'pipe', 'pipe']);
      started?.(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      const timer = setTimeout(() => kill(child, 'SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const result = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        if (log) fs.appendFileSync(log, `$ ${args.join(' ')}\n${result.stderr}${result.stdout}\n`);
        resolve(result);
      });
    });
  }

  remove(): void {
    if (process.env.KEEP_BACKUP_TEST_DIR) {
      console.log(`kept ${this.root}`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }

  private writeHosts(): void {
    fs.writeFileSync(this.hosts, ['127.0.0.1 localhost', ...[...this.names].map(([name, ip]) => `${ip} ${name}`), ''].join('\n'));
  }
}

/** Everything the pods of one replication cluster share: the synthesized env and config. */
export interface ClusterSpec {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly config: Record<string, string>;
  readonly secrets: string;
  readonly dbPort: number;
  readonly seedPort: number;
}

/** One pod of a MySqlReplicationCluster, run by its own scripts. */
export class ClusterPod {
  readonly hostname: string;
  readonly ip: string;
  readonly dir: string;
  readonly volume: string;
  readonly run: string;
  private readonly processes = new Map<string, ChildProcess>();

  /** `instance` tells apart the directories of pods that reuse an ordinal (a new volume). */
  constructor(readonly host: Host, readonly cluster: ClusterSpec, readonly ordinal: number, private readonly extraEnv: Record<string, string> = {},
    instance = '') {
    this.hostname = `${cluster.name}-${ordinal}`;
    this.ip = host.address(`${this.hostname}.${cluster.name}`);
    this.dir = path.join(host.root, `${this.hostname}${instance}`);
    this.volume = path.join(this.dir, 'volume');
    this.run = path.join(this.dir, 'run');
    for (const d of ['volume', 'run', 'tmp', 'conf', 'config']) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    const overrides = [
      '',
      '# test only: run as root on a shared host, each pod on its own loopback address',
      '[mysqld]',
      'user = root',
      `bind_address = ${this.ip}`,
      `port = ${cluster.dbPort}`,
      `datadir = ${this.volume}/data`,
      `socket = ${this.run}/mysqld.sock`,
      `pid_file = ${this.run}/mysqld.pid`,
      'innodb_buffer_pool_size = 32M',
      '',
    ].join('\n');
    for (const [file, text] of Object.entries(cluster.config)) {
      fs.writeFileSync(path.join(this.dir, 'config', file), file === 'server.cnf' ? text + overrides : text);
    }
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...this.cluster.env,
      DB_PORT: `${this.cluster.dbPort}`,
      SEED_PORT: `${this.cluster.seedPort}`,
      DB_SOCKET: `${this.run}/mysqld.sock`,
      DB_CNF: path.join(this.dir, 'conf', 'my.cnf'),
      CONFIG_DIR: path.join(this.dir, 'config'),
      SECRETS_DIR: this.cluster.secrets,
      RUN_DIR: this.run,
      DATA_ROOT: this.volume,
      TMPDIR: path.join(this.dir, 'tmp'),
      HOSTNAME: this.hostname,
      PATH: this.host.bin,
      ...(this.cluster.env.RESTORE_DIR ? { RESTORE_DIR: path.join(this.volume, 'restore.tmp') } : {}),
      ...this.extraEnv,
      ...extra,
    };
  }

  /** Runs one of the library's scripts to completion (an init container, a probe). */
  script(name: string, extraEnv: Record<string, string> = {}, timeoutMs = 180_000): Promise<Result> {
    return this.exec(['/bin/bash', path.join(SCRIPTS, name)], extraEnv, timeoutMs);
  }

  /** Runs a bash snippet with replication-lib.sh sourced, as the scripts do. */
  bash(snippet: string, extraEnv: Record<string, string> = {}, timeoutMs = 180_000): Promise<Result> {
    return this.exec(['/bin/bash', '--norc', '--noprofile', '-c', `source ${SCRIPTS}/replication-lib.sh\n${snippet}`], extraEnv, timeoutMs);
  }

  /** The process groups of everything running in this pod, scripts run to completion included. */
  pids(): number[] {
    return [...this.processes.values()].map((c) => c.pid!).filter((p) => p !== undefined);
  }

  /** A file of the pod's volume, or undefined when it does not exist. */
  file(relative: string): string | undefined {
    const f = path.join(this.volume, relative);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined;
  }

  private async exec(args: string[], extraEnv: Record<string, string>, timeoutMs: number): Promise<Result> {
    let key = '';
    try {
      return await this.host.run(args, this.env(extraEnv), timeoutMs, path.join(this.dir, 'exec.log'), (child) => {
        key = `exec-${child.pid}`;
        this.processes.set(key, child);
      });
    } finally {
      this.processes.delete(key);
    }
  }

  /** Starts a long-running container script (server, agent, donor); its output goes to <name>.log. */
  start(name: string): void {
    const log = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const child = this.host.spawn(['/bin/bash', path.join(SCRIPTS, name)], this.env(), ['ignore', log, log]);
    fs.closeSync(log);
    this.processes.set(name, child);
  }

  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.processes.get(name);
    if (!child) return;
    this.processes.delete(name);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    kill(child, signal);
    const timer = setTimeout(() => kill(child, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    for (const name of [...this.processes.keys()]) await this.stop(name);
  }

  /** Runs SQL on this pod's server as root, over its socket. */
  sql(statements: string): string {
    return execFileSync('mariadb', [`--defaults-extra-file=${this.run}/root.cnf`, '--batch', '--skip-column-names'], { input: statements, encoding: 'utf8', stdio: 'pipe' }).trim();
  }

  alive(): boolean {
    try {
      this.sql('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  status(): Record<string, string> {
    const out = execFileSync('mariadb', [`--defaults-extra-file=${this.run}/root.cnf`, '--batch', '-e', 'SHOW REPLICA STATUS'], { encoding: 'utf8', stdio: 'pipe' });
    const [header, values] = out.split('\n');
    if (!values) return {};
    const names = header.split('\t');
    return Object.fromEntries(values.split('\t').map((v, i) => [names[i], v]));
  }

  /** Init, server and (replicas) agent, until the readiness probe passes. */
  async boot(options: { agent?: boolean } = {}): Promise<Result> {
    const init = await this.script('replication-init.sh');
    if (init.code !== 0) throw new Error(`init of ${this.hostname} failed:\n${init.stderr}`);
    this.start('replication-server.sh');
    await waitFor(`${this.hostname} answers`, () => this.alive());
    if (options.agent ?? this.ordinal > 0) {
      this.start('replication-agent.sh');
    }
    await waitFor(`${this.hostname} is ready`, async () => (await this.script('replication-ready.sh')).code === 0, 90_000);
    return init;
  }
}

/** The per-table row counts and checksums of a server, as the manifest lists them. */
export function tableLines(pod: { sql(s: string): string }): string[] {
  const tables = pod.sql("SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY TABLE_SCHEMA, TABLE_NAME")
    .split('\n').filter((t) => t);
  return tables.map((t) => {
    const [schema, table] = t.split('.');
    const id = `\`${schema.replace(/`/g, '``')}\`.\`${table.replace(/`/g, '``')}\``;
    const rows = pod.sql(`SELECT COUNT(*) FROM ${id}`);
    const checksum = pod.sql(`CHECKSUM TABLE ${id} EXTENDED`).split('\t')[1];
    return JSON.stringify({ schema, table, rows: Number(rows), checksum: Number(checksum) }).replace(/":/g, '": ').replace(/,"/g, ', "');
  });
}
