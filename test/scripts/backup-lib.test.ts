/**
 * expect_manifest_tables of backup-lib.sh, the check every restore (restoreFrom of both clusters)
 * ends with, against a real MariaDB 10.11.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { startMariaDb, ThrowawayServer } from '../mariadb-server';

const LIB = path.join(__dirname, '..', '..', 'src', 'scripts', 'backup-lib.sh');

describe('backup-lib.sh: expect_manifest_tables', () => {
  let server: ThrowawayServer;
  let dir: string;
  let cnf: string;

  /** Runs a strict bash snippet with backup-lib.sh sourced. */
  function bash(snippet: string) {
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `set -euo pipefail\nsource ${LIB}\n${snippet}`],
      { encoding: 'utf8', env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb' } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A manifest listing the server's tables as they are now. */
  function manifestOfNow(): string {
    const lines = bash(`table_checksums ${cnf}`);
    expect(lines.status).toBe(0);
    const tables = lines.stdout.trim().split('\n').map((l) => `    ${l}`).join(',\n');
    const manifest = path.join(dir, 'manifest.json');
    fs.writeFileSync(manifest, `{\n  "name": "b",\n  "tables": [\n${tables}\n  ]\n}\n`);
    return manifest;
  }

  beforeAll(async () => {
    server = await startMariaDb();
    dir = fs.mkdtempSync('/tmp/cdk8s-mysql-backup-lib-');
    cnf = path.join(dir, 'root.cnf');
    fs.writeFileSync(cnf, `[client]\nuser=root\nsocket=${server.socket}\n`);
    server.sql('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2); CREATE TABLE app.u (v INT);');
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('prints how many tables match when the server equals the manifest', () => {
    const r = bash(`expect_manifest_tables ${manifestOfNow()} ${cnf} b`);
    expect(r.stderr).toEqual('');
    expect(r.stdout.trim()).toEqual('2');
  });

  test('stops a strict script with the difference when a table differs', () => {
    const manifest = manifestOfNow();
    server.sql('INSERT INTO app.t VALUES (3)');
    const r = bash(`n=$(expect_manifest_tables ${manifest} ${cnf} 20250101T010100Z-physical)\necho "reached $n"`);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toEqual('');
    expect(r.stderr).toMatch(/^< .*"table": "t", "rows": 2/m);
    expect(r.stderr).toMatch(/^> .*"table": "t", "rows": 3/m);
    expect(r.stderr).toMatch(/the tables restored from 20250101T010100Z-physical differ from its manifest/);
  });
});
