/**
 * A throwaway MariaDB server from Debian's packages, on a unix socket only (no TCP), for tests
 * that run the library's scripts or SQL against a real server outside the pod runner.
 */
import { execFileSync, spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface ThrowawayServer {
  readonly dir: string;
  readonly socket: string;
  /** Runs SQL as root over the socket and returns stdout (batch mode, no column names). */
  sql(statements: string): string;
  stop(): Promise<void>;
}

export async function startMariaDb(extraArgs: string[] = []): Promise<ThrowawayServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-mysql-db-'));
  const datadir = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, '--user=root', '--skip-test-db', '--auth-root-authentication-method=socket'], { stdio: 'ignore' });
  const server: ChildProcess = spawn('mariadbd', [
    '--no-defaults', `--datadir=${datadir}`, `--socket=${socket}`, '--skip-networking', '--user=root',
    `--pid-file=${path.join(dir, 'mysqld.pid')}`, `--log-error=${path.join(dir, 'error.log')}`, ...extraArgs,
  ], { stdio: 'ignore' });
  const sql = (statements: string) => execFileSync('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '--batch', '--skip-column-names'], { input: statements, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  for (let i = 0; ; i++) {
    try {
      sql('SELECT 1');
      break;
    } catch (e) {
      if (i > 300 || server.exitCode !== null) {
        const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
        throw new Error(`the throwaway MariaDB did not start: ${log.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dir,
    socket,
    sql,
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
