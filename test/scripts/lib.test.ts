import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { startMariaDb, ThrowawayServer } from '../mariadb-server';

const LIB = path.join(__dirname, '..', '..', 'src', 'scripts', 'lib.sh');

/** Runs a bash snippet with lib.sh sourced; returns status, stdout and stderr. */
function bash(snippet: string, env: Record<string, string> = {}) {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${LIB}\n${snippet}`], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const NASTY = ['p"a\'ss#w\\ord with spaces;', 'ends-with-backslash\\', '\'"\'"', 'unicodé-ümlaut', '$HOME`id`'];

describe('lib.sh', () => {
  let server: ThrowawayServer;
  let secrets: string;

  beforeAll(async () => {
    server = await startMariaDb();
    secrets = fs.mkdtempSync('/tmp/cdk8s-mysql-secrets-');
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(secrets, { recursive: true, force: true });
  });

  test.each(NASTY.map((p) => [p]))('a user created with sql_quote logs in through write_client_cnf with the password %s', (password) => {
    fs.writeFileSync(path.join(secrets, 'app-password'), password);
    const env = { DB_ENGINE: 'mariadb', SECRETS_DIR: secrets, DB_SOCKET: server.socket };
    const create = bash(
      'printf \'CREATE OR REPLACE USER app@localhost IDENTIFIED BY %s;\\n\' "$(sql_secret app-password)"',
      env,
    );
    expect(create.status).toBe(0);
    server.sql(create.stdout);
    const cnf = path.join(secrets, 'app.cnf');
    const login = bash(`write_client_cnf ${cnf} app app-password && echo 'SELECT CURRENT_USER()' | sql ${cnf}`, env);
    expect(login.stderr).toEqual('');
    expect(login.stdout.trim()).toEqual('app@localhost');
    expect(fs.statSync(cnf).mode.toString(8).slice(-3)).toEqual('600');
  });

  test('read_secret refuses an empty credential and names the key', () => {
    fs.writeFileSync(path.join(secrets, 'empty'), '');
    const r = bash('read_secret empty', { SECRETS_DIR: secrets });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/credential 'empty' is empty/);
  });

  test('read_secret refuses a missing credential and names the key', () => {
    const r = bash('read_secret no-such-key', { SECRETS_DIR: secrets });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/credential 'no-such-key' is missing/);
  });

  test('sql_secret stops a strict script when the credential is missing, instead of using an empty literal', () => {
    const r = bash('set -euo pipefail\np=$(sql_secret no-such-key)\necho "reached with [$p]"', { SECRETS_DIR: secrets });
    expect(r.status).toBe(1);
    expect(r.stdout).toEqual('');
    expect(r.stderr).toMatch(/credential 'no-such-key' is missing/);
  });

  test('sql_secret quotes a credential as an SQL literal', () => {
    fs.writeFileSync(path.join(secrets, 'quoted'), "it's");
    expect(bash('sql_secret quoted', { SECRETS_DIR: secrets }).stdout).toEqual("'it''s'");
  });

  test('a wrong DB_ENGINE is an error, not a guess', () => {
    const r = bash('db_client', { DB_ENGINE: 'postgres' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/DB_ENGINE must be mysql or mariadb, not 'postgres'/);
  });

  test('wait_for_server gives up after its timeout when no server answers', () => {
    const cnf = path.join(secrets, 'nobody.cnf');
    fs.writeFileSync(cnf, `[client]\nsocket=${secrets}/no.sock\n`);
    const r = bash(`wait_for_server ${cnf} 1 || echo gave-up`, { DB_ENGINE: 'mariadb' });
    expect(r.stdout.trim()).toEqual('gave-up');
  });

  test('atomic_write replaces a file in one step', () => {
    const file = path.join(secrets, 'marker');
    fs.writeFileSync(file, 'old');
    const r = bash(`atomic_write ${file} new-content && ls ${secrets}`, {});
    expect(fs.readFileSync(file, 'utf8')).toEqual('new-content');
    expect(r.stdout).not.toMatch(/\.tmp\./);
  });
});
