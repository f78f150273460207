/**
 * The pieces of the Galera start logic (src/scripts/galera-lib.sh): the bootstrap decision, the
 * state lines the pods exchange, and a node's own position read from a real Galera data
 * directory after a clean shutdown and after kill -9.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'scripts');
const ZERO = '00000000-0000-0000-0000-000000000000';
const UUID = '6c1b5a7e-e544-11f1-ac97-aaedbfb79925';
const OTHER = '9f00aa00-e544-11f1-ac97-aaedbfb79925';

/** Runs a bash snippet with lib.sh and galera-lib.sh sourced. */
function bash(snippet: string, env: Record<string, string> = {}, input?: string) {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/lib.sh\nsource ${SCRIPTS}/galera-lib.sh\n${snippet}`], {
    encoding: 'utf8', input, env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', ...env },
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

/** As bash(), without blocking this process (for peers that it serves itself). */
function bashAsync(snippet: string, env: Record<string, string>): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', `source ${SCRIPTS}/lib.sh\nsource ${SCRIPTS}/galera-lib.sh\n${snippet}`], {
      env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', ...env },
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('close', (status) => resolve({ status, stdout: stdout.trim() }));
  });
}

/** decide() for node `me`, given every node's line "ORDINAL STATE UUID SEQNO SAFE". */
function decide(me: number, lines: string[]): string {
  const r = bash(`decide ${me}`, {}, lines.join('\n') + '\n');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The node that decides to bootstrap, asked from every node's point of view; throws if several do. */
function winner(lines: string[]): number | undefined {
  const deciders = lines.map((_, me) => me).filter((me) => decide(me, lines) === 'bootstrap');
  expect(deciders.length).toBeLessThanOrEqual(1);
  return deciders[0];
}

describe('decide: who bootstraps, who joins, who waits', () => {
  test('a node joins as soon as one peer runs in a Primary Component, even if others do not answer', () => {
    expect(decide(2, ['0 unreachable - - -', `1 primary ${UUID} 40 -`, `2 waiting ${UUID} 12 0`])).toEqual('join 1');
  });

  test('nobody bootstraps while one node does not answer: it may hold the newest transactions', () => {
    const lines = [`0 waiting ${UUID} 40 0`, `1 waiting ${UUID} 41 0`, '2 unreachable - - -'];
    expect(decide(1, lines)).toEqual('wait for 2:unreachable');
    expect(winner(lines)).toBeUndefined();
  });

  test('nobody bootstraps while a node is still reading its position, or starting a server', () => {
    expect(winner([`0 waiting ${UUID} 40 0`, '1 recovering - - -', `2 waiting ${UUID} 40 0`])).toBeUndefined();
    expect(winner([`0 waiting ${UUID} 40 0`, '1 starting - - -', `2 waiting ${UUID} 40 0`])).toBeUndefined();
  });

  test('the node with the highest seqno bootstraps, whatever its ordinal', () => {
    const lines = [`0 waiting ${UUID} 23 0`, `1 waiting ${UUID} 24 0`, `2 waiting ${UUID} 22 0`];
    expect(winner(lines)).toBe(1);
    expect(decide(0, lines)).toEqual('wait for 1 to bootstrap (most advanced position)');
  });

  test('seqnos compare as numbers, not as text', () => {
    expect(winner([`0 waiting ${UUID} 9 0`, `1 waiting ${UUID} 10 0`, `2 waiting ${UUID} 1000000000123 0`])).toBe(2);
  });

  test('on equal seqnos the last node to leave a clean shutdown (safe_to_bootstrap: 1) bootstraps', () => {
    expect(winner([`0 waiting ${UUID} 50 0`, `1 waiting ${UUID} 50 0`, `2 waiting ${UUID} 50 1`])).toBe(2);
  });

  test('on equal seqnos and no safe_to_bootstrap (a crash) the lowest ordinal bootstraps', () => {
    expect(winner([`0 waiting ${UUID} 50 0`, `1 waiting ${UUID} 50 0`, `2 waiting ${UUID} 50 0`])).toBe(0);
    expect(winner([`0 waiting ${UUID} 49 0`, `1 waiting ${UUID} 50 0`, `2 waiting ${UUID} 50 0`])).toBe(1);
  });

  test('a brand-new cluster (no node has data) is bootstrapped by ordinal 0', () => {
    expect(winner([`0 waiting ${ZERO} -1 0`, `1 waiting ${ZERO} -1 0`, `2 waiting ${ZERO} -1 0`])).toBe(0);
  });

  test('a node with data wins over nodes without (e.g. ordinal 0 lost its volume)', () => {
    expect(winner([`0 waiting ${ZERO} -1 0`, `1 waiting ${ZERO} -1 0`, `2 waiting ${UUID} 7 0`])).toBe(2);
    expect(winner([`0 waiting ${ZERO} -1 0`, `1 waiting ${UUID} -1 0`, `2 waiting ${ZERO} -1 0`])).toBe(1);
  });

  test('a server running outside any Primary Component takes part with its position', () => {
    const lines = [`0 waiting ${UUID} 30 0`, `1 non-primary ${UUID} 31 -`, `2 waiting ${UUID} 30 0`];
    expect(winner(lines)).toBe(1);
    expect(decide(0, lines)).toEqual('wait for 1 to bootstrap (most advanced position)');
    expect(winner([`0 waiting ${UUID} 31 0`, `1 non-primary ${UUID} 30 -`, `2 waiting ${UUID} 30 0`])).toBe(0);
  });

  test('data of another cluster: the highest seqno still wins, with a warning', () => {
    const r = bash('decide 1', {}, [`0 waiting ${UUID} 30 0`, `1 waiting ${OTHER} 90 0`, `2 waiting ${UUID} 30 0`].join('\n'));
    expect(r.stdout).toEqual('bootstrap');
    expect(r.stderr).toMatch(/WARNING: the nodes hold data of 2 different clusters/);
  });

  test('five nodes: exactly one bootstraps', () => {
    expect(winner([0, 1, 2, 3, 4].map((i) => `${i} waiting ${UUID} ${[5, 9, 9, 3, 9][i]} ${[0, 0, 0, 0, 1][i]}`))).toBe(4);
  });
});

describe('the state lines the pods exchange', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'galera-state-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([
    ['recovering - - -', true],
    ['starting - - -', true],
    [`waiting ${UUID} 12 1`, true],
    [`waiting ${ZERO} -1 0`, true],
    [`primary ${UUID} 12 -`, true],
    [`non-primary ${UUID} 12 -`, true],
    ['', false],
    ['waiting', false],
    [`waiting ${UUID} 12 2`, false],
    [`primary ${UUID}; rm -rf / 12 -`, false],
    ['HTTP/1.1 400 Bad Request', false],
  ])('%j is a valid state line: %s', (line, valid) => {
    expect(bash(`valid_state_line '${line.replace(/'/g, '')}'`).status).toBe(valid ? 0 : 1);
  });

  test('a waiting node publishes its position; one that is starting a server says so', () => {
    const env = { STATE_DIR: dir };
    expect(bash('status_line', env).stdout).toEqual('recovering - - -');
    fs.writeFileSync(path.join(dir, 'state'), `waiting ${UUID} 12 0\n`);
    expect(bash('status_line', env).stdout).toEqual(`waiting ${UUID} 12 0`);
    fs.writeFileSync(path.join(dir, 'state'), 'started\n');
    fs.writeFileSync(path.join(dir, 'client.cnf'), `[client]\nsocket=${dir}/none.sock\n`);
    expect(bash('status_line', env).stdout).toEqual('starting - - -');
  });

  test('a peer that answers garbage, or nothing, counts as unreachable', async () => {
    const server = net.createServer((socket) => socket.end('<html>hello</html>\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const garbage = spawnAsync('bash', ['-c', `source ${SCRIPTS}/lib.sh; source ${SCRIPTS}/galera-lib.sh; peer_state 127.0.0.1`], { STATUS_PORT: `${port}` });
    expect((await garbage).trim()).toEqual('unreachable - - -');
    server.close();
    const closed = spawnAsync('bash', ['-c', `source ${SCRIPTS}/lib.sh; source ${SCRIPTS}/galera-lib.sh; peer_state 127.0.0.1`], { STATUS_PORT: `${port}` });
    expect((await closed).trim()).toEqual('unreachable - - -');
  });

  test('a peer served by galera-status.sh through socat is read back exactly', async () => {
    fs.writeFileSync(path.join(dir, 'state'), `waiting ${UUID} 77 1\n`);
    const port = await freePort();
    const socat = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `EXEC:bash ${SCRIPTS}/galera-status.sh`], {
      env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', STATE_DIR: dir }, stdio: 'ignore',
    });
    try {
      await waitForPort(port);
      const line = await spawnAsync('bash', ['-c', `source ${SCRIPTS}/lib.sh; source ${SCRIPTS}/galera-lib.sh; peer_state 127.0.0.1`], { STATUS_PORT: `${port}` });
      expect(line.trim()).toEqual(`waiting ${UUID} 77 1`);
    } finally {
      socat.kill();
    }
  });
});

describe('local_position: a node\'s own last committed position, from a real Galera data directory', () => {
  let dir: string;
  let datadir: string;
  let env: Record<string, string>;
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'galera-position-'));
    datadir = path.join(dir, 'data');
    const gcommPort = await freePort();
    // a single-node Galera cluster on loopback, as root (the pods run it as uid 999)
    fs.writeFileSync(path.join(dir, 'my.cnf'), [
      '[mariadbd]', 'user = root', `datadir = ${datadir}`, `socket = ${dir}/mysqld.sock`, `pid_file = ${dir}/mysqld.pid`, 'skip_networking',
      'binlog_format = ROW', 'innodb_autoinc_lock_mode = 2', 'innodb_buffer_pool_size = 32M', 'innodb_log_file_size = 16M',
      'wsrep_on = ON', 'wsrep_provider = /usr/lib/galera/libgalera_smm.so', 'wsrep_cluster_address = gcomm://',
      `wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:${gcommPort};gcache.size=16M"`, 'wsrep_node_address = 127.0.0.1', '',
    ].join('\n'));
    env = { DATADIR: datadir, STATE_DIR: dir };
  });

  afterAll(() => {
    server?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startServer(...extraArgs: string[]): Promise<void> {
    server = spawn('mariadbd', [`--defaults-file=${dir}/my.cnf`, '--wsrep-new-cluster', ...extraArgs], { stdio: 'ignore' });
    for (let i = 0; i < 300; i++) {
      if (spawnSync('mariadb', ['--no-defaults', `--socket=${dir}/mysqld.sock`, '-uroot', '-e', 'SELECT 1']).status === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the single-node Galera server did not start');
  }

  function sqlOn(statements: string): void {
    const r = spawnSync('mariadb', ['--no-defaults', `--socket=${dir}/mysqld.sock`, '-uroot'], { input: statements, encoding: 'utf8' });
    expect(r.stderr).toEqual('');
  }

  async function stop(signal: NodeJS.Signals): Promise<void> {
    const exited = new Promise((r) => server!.once('exit', r));
    server!.kill(signal);
    await exited;
    server = undefined;
  }

  test('an empty data directory has no position', () => {
    expect(bash('local_position', env).stdout).toEqual(`${ZERO} -1 0`);
  });

  test('after a clean shutdown: the position of grastate.dat, with safe_to_bootstrap', async () => {
    const install = spawnSync('mariadb-install-db', [`--defaults-file=${dir}/my.cnf`, '--skip-test-db'], { encoding: 'utf8' });
    expect(install.status).toBe(0);
    await startServer();
    sqlOn('CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY); INSERT INTO t.a VALUES (1), (2), (3);');
    await stop('SIGTERM');
    const grastate = fs.readFileSync(path.join(datadir, 'grastate.dat'), 'utf8');
    const uuid = /uuid:\s+(\S+)/.exec(grastate)![1];
    const seqno = /seqno:\s+(\S+)/.exec(grastate)![1];
    expect(Number(seqno)).toBeGreaterThanOrEqual(3);
    expect(bash('local_position', env).stdout).toEqual(`${uuid} ${seqno} 1`);
  });

  test('after kill -9: grastate.dat says seqno -1, and mariadbd --wsrep-recover finds the last commit', async () => {
    const before = bash('local_position', env).stdout.split(' ');
    await startServer();
    sqlOn('INSERT INTO t.a VALUES (4); INSERT INTO t.a VALUES (5);');
    const committed = spawnSync('mariadb', ['--no-defaults', `--socket=${dir}/mysqld.sock`, '-uroot', '-N', '-e',
      "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_last_committed'"], { encoding: 'utf8' }).stdout.trim();
    expect(Number(committed)).toBeGreaterThanOrEqual(Number(before[1]) + 2);
    await stop('SIGKILL');
    const grastate = fs.readFileSync(path.join(datadir, 'grastate.dat'), 'utf8');
    expect(grastate).toMatch(/seqno:\s+-1/);
    const r = bash('local_position', env);
    expect(r.status).toBe(0);
    // the same cluster, at the last commit the server acknowledged; safe_to_bootstrap as Galera
    // left it (1 here: a node alone in its Primary Component may bootstrap)
    expect(r.stdout).toEqual(`${before[0]} ${committed} ${/safe_to_bootstrap:\s+(\d)/.exec(grastate)![1]}`);
  });

  function savedState(): { uuid: string; seqno: string } {
    const text = fs.readFileSync(path.join(datadir, 'grastate.dat'), 'utf8');
    return { uuid: /uuid:\s+(\S+)/.exec(text)?.[1] ?? '', seqno: /seqno:\s+(\S+)/.exec(text)?.[1] ?? '' };
  }

  function sqlValue(statement: string): string {
    return spawnSync('mariadb', ['--no-defaults', `--socket=${dir}/mysqld.sock`, '-uroot', '-N', '-e', statement], { encoding: 'utf8' }).stdout.trim();
  }

  test('kill -9 while a DDL is applied: Galera has marked the state unsafe (zero UUID), and although InnoDB recovers a valid position, neither Galera nor local_position uses it', async () => {
    const before = bash('local_position', env).stdout.split(' ');
    await startServer(`--wsrep-start-position=${before[0]}:${before[1]}`);
    sqlOn("CREATE TABLE t.big (id INT PRIMARY KEY AUTO_INCREMENT, pad CHAR(200)); INSERT INTO t.big (pad) SELECT REPEAT('x', 200) FROM t.seq_1_to_100000;");
    const committed = sqlValue("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_last_committed'");
    expect(savedState()).toEqual({ uuid: before[0], seqno: '-1' });
    // a DDL is a total-order action: Galera writes the zero UUID to grastate.dat while it runs
    // (on every node), and the cluster UUID again when it is done; kill -9 in between
    let killed = false;
    for (let attempt = 0; attempt < 5 && !killed; attempt++) {
      const ddl = spawn('mariadb', ['--no-defaults', `--socket=${dir}/mysqld.sock`, '-uroot', '-e', 'ALTER TABLE t.big FORCE'], { stdio: 'ignore' });
      const done = new Promise((r) => ddl.once('exit', r));
      let finished = false;
      void done.then(() => (finished = true));
      while (!finished) {
        if (savedState().uuid === ZERO) {
          await stop('SIGKILL');
          killed = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      await done;
    }
    expect(killed).toBe(true);
    expect(savedState()).toEqual({ uuid: ZERO, seqno: '-1' });

    // the data files look complete: InnoDB recovers a position of the cluster, at least the last commit before the DDL
    const recovered = bash('recover_position', env);
    expect(recovered.status).toBe(0);
    const [uuid, seqno] = recovered.stdout.split(':');
    expect(uuid).toEqual(before[0]);
    expect(Number(seqno)).toBeGreaterThanOrEqual(Number(committed));
    // but the zero UUID also marks a state transfer that did not finish and a node found inconsistent, which the
    // files cannot tell apart: no position
    expect(bash('local_position', env).stdout).toEqual(`${ZERO} -1 0`);

    // Galera agrees: given the recovered position, it ignores it (the saved state names no cluster) and starts a new history
    const log = path.join(dir, 'restart.log');
    await startServer(`--wsrep-start-position=${recovered.stdout}`, `--log-error=${log}`);
    expect(fs.readFileSync(log, 'utf8')).toMatch(new RegExp(`Found saved state: ${ZERO}:-1`));
    const state = sqlValue("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_cluster_state_uuid'");
    expect(state).toMatch(/^[0-9a-f-]{36}$/);
    expect(state).not.toEqual(before[0]);
    await stop('SIGTERM');
    expect(savedState().uuid).toEqual(state);
  });

  test('an empty grastate.dat (a first start or state transfer that did not finish) has no position, whatever InnoDB recovers', () => {
    const file = path.join(datadir, 'grastate.dat');
    const saved = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, '');
    try {
      expect(bash('recover_position', env).stdout).toMatch(/^[0-9a-f-]{36}:\d+$/);
      expect(bash('local_position', env).stdout).toEqual(`${ZERO} -1 0`);
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  test('a recovered position of another cluster than the one grastate.dat names is not used', () => {
    const file = path.join(datadir, 'grastate.dat');
    const saved = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, saved.replace(/uuid:\s+\S+/, `uuid:    ${OTHER}`).replace(/seqno:\s+\S+/, 'seqno:   -1'));
    try {
      const r = bash('local_position', env);
      expect(r.stdout).toEqual(`${ZERO} -1 0`);
      expect(r.stderr).toMatch(new RegExp(`not a position of the cluster ${OTHER}`));
    } finally {
      fs.writeFileSync(file, saved);
    }
  });

  test('an empty or truncated gvwstate.dat is removed; a complete one is kept', () => {
    const file = path.join(datadir, 'gvwstate.dat');
    const complete = `my_uuid: ${UUID}\n#vwbeg\nview_id: 3 ${UUID} 7\nbootstrap: 0\nmember: ${UUID} 0\n#vwend\n`;
    for (const [text, kept] of [['', false], [`my_uuid: ${UUID}\n#vwbeg\n`, false], [complete, true]] as const) {
      fs.writeFileSync(file, text);
      const r = bash('discard_unusable_gvwstate', env);
      expect(r.status).toBe(0);
      expect(fs.existsSync(file)).toBe(kept);
      expect(r.stderr.includes('removing an unusable gvwstate.dat')).toBe(!kept);
    }
    fs.rmSync(file, { force: true });
  });

  test('a data directory that InnoDB cannot open stops the start script with its log, rather than guessing', () => {
    const file = path.join(datadir, 'ibdata1');
    const saved = fs.readFileSync(file);
    const state = path.join(datadir, 'grastate.dat');
    const stateText = fs.readFileSync(state, 'utf8');
    // after a crash (seqno -1), with a system tablespace that is all zeroes
    fs.writeFileSync(state, stateText.replace(/seqno:\s+\S+/, 'seqno:   -1'));
    fs.writeFileSync(file, Buffer.alloc(saved.length));
    try {
      const r = bash('local_position', env);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/FATAL: mariadbd --wsrep-recover (failed|printed no position)/);
    } finally {
      fs.writeFileSync(file, saved);
      fs.writeFileSync(state, stateText);
    }
  });
});

describe('a restarted node waits while the Primary Component still counts its previous instance (real 3-node Galera)', () => {
  // three nodes on loopback addresses of their own, each with its status server (galera-status.sh)
  const ips = ['127.84.0.1', '127.84.0.2', '127.84.0.3'];
  let dir: string;
  let statusPort: number;
  const servers: (ChildProcess | undefined)[] = [];
  const statusServers: ChildProcess[] = [];
  const nodeDir = (i: number) => path.join(dir, `n${i}`);

  /** galera-lib.sh as node `me` (the restarted one), with the peers' status servers. */
  function asNode(me: number, snippet: string) {
    return bash(snippet, { STATE_DIR: path.join(dir, `self${me}`), POD_NAME: `g-${me}`, PEERS: ips.join(' '), STATUS_PORT: `${statusPort}` });
  }

  function sqlOn(i: number, statements: string): string {
    const r = spawnSync('mariadb', ['--no-defaults', `--socket=${nodeDir(i)}/sock`, '-uroot', '-N', '-B', '-e', statements], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  }

  function status(i: number, name: string): string {
    return sqlOn(i, `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '${name}'`);
  }

  async function until(what: string, check: () => boolean, tries = 600): Promise<void> {
    for (let i = 0; i < tries; i++) {
      try {
        if (check()) return;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async function start(i: number, ...args: string[]): Promise<void> {
    servers[i] = spawn('mariadbd', [`--defaults-file=${nodeDir(i)}/my.cnf`, ...args], { stdio: 'ignore' });
    await until(`node ${i} to answer`, () => sqlOn(i, 'SELECT 1') === '1').catch((e) => {
      const log = path.join(nodeDir(i), 'error.log');
      throw new Error(`${e.message}; its log ends:\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-3000) : ''}`);
    });
  }

  async function kill9(i: number): Promise<void> {
    const exited = new Promise((r) => servers[i]!.once('exit', r));
    servers[i]!.kill('SIGKILL');
    await exited;
    servers[i] = undefined;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'galera-rejoin-'));
    fs.chmodSync(dir, 0o755);
    statusPort = await freePort();
    const [sqlPort, gcommPort, istPort, sstPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    // as root, the servers run as mysql (the rsync daemon of an IST would drop to nobody otherwise)
    const asRoot = process.getuid?.() === 0;
    for (const [i, ip] of ips.entries()) {
      fs.mkdirSync(nodeDir(i));
      fs.mkdirSync(path.join(dir, `self${i}`));
      fs.writeFileSync(path.join(nodeDir(i), 'my.cnf'), [
        '[mariadbd]', ...(asRoot ? ['user = mysql'] : []), `datadir = ${nodeDir(i)}/data`, `socket = ${nodeDir(i)}/sock`,
        `pid_file = ${nodeDir(i)}/mysqld.pid`, `log_error = ${nodeDir(i)}/error.log`, `bind_address = ${ip}`, `port = ${sqlPort}`,
        'binlog_format = ROW', 'innodb_autoinc_lock_mode = 2', 'innodb_buffer_pool_size = 32M', 'innodb_log_file_size = 16M',
        'wsrep_on = ON', 'wsrep_provider = /usr/lib/galera/libgalera_smm.so', `wsrep_node_name = g-${i}`,
        `wsrep_cluster_address = gcomm://${ips.map((a) => `${a}:${gcommPort}`).join(',')}`, `wsrep_node_address = ${ip}:${gcommPort}`,
        `wsrep_provider_options = "gmcast.listen_addr=tcp://${ip}:${gcommPort};ist.recv_addr=${ip}:${istPort};gcache.size=16M"`,
        'wsrep_sst_method = rsync', `wsrep_sst_receive_address = ${ip}:${sstPort}`, '',
      ].join('\n'));
      // the status server of a running node, as galera-start.sh runs it
      const state = path.join(nodeDir(i), 'state');
      fs.mkdirSync(state);
      fs.writeFileSync(path.join(state, 'state'), 'started\n');
      fs.writeFileSync(path.join(state, 'client.cnf'), `[client]\nuser = root\nsocket = ${nodeDir(i)}/sock\n`);
      statusServers.push(spawn('socat', [`TCP-LISTEN:${statusPort},bind=${ip},reuseaddr,fork`, `EXEC:bash ${SCRIPTS}/galera-status.sh`], {
        env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', STATE_DIR: state }, stdio: 'ignore',
      }));
    }
    // node 0 bootstraps with some data; the others start from a copy of its data directory and join by IST
    const install = spawnSync('mariadb-install-db', [`--defaults-file=${nodeDir(0)}/my.cnf`, '--skip-test-db'], { encoding: 'utf8' });
    if (install.status !== 0) throw new Error(install.stderr);
    if (asRoot) spawnSync('chown', ['-R', 'mysql', dir]);
    await start(0, '--wsrep-new-cluster');
    sqlOn(0, 'CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY); INSERT INTO t.a VALUES (1)');
    const stopped = new Promise((r) => servers[0]!.once('exit', r));
    servers[0]!.kill('SIGTERM');
    await stopped;
    for (const i of [1, 2]) {
      spawnSync('cp', ['-a', `${nodeDir(0)}/data`, nodeDir(i)]);
      const grastate = path.join(nodeDir(i), 'data', 'grastate.dat');
      fs.writeFileSync(grastate, fs.readFileSync(grastate, 'utf8').replace(/safe_to_bootstrap: 1/, 'safe_to_bootstrap: 0'));
    }
    if (asRoot) spawnSync('chown', ['-R', 'mysql', dir]);
    await start(0, '--wsrep-new-cluster');
    await start(1);
    await start(2);
    await until('a cluster of 3', () => [0, 1, 2].every((i) => status(i, 'wsrep_cluster_size') === '3' && status(i, 'wsrep_local_state_comment') === 'Synced'));
  }, 180_000);

  afterAll(() => {
    for (const server of servers) server?.kill('SIGKILL');
    for (const socat of statusServers) socat.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a running node publishes its state line first and the members of its component on a second line', async () => {
    const answer = await spawnAsync('socat', ['-u', `TCP:${ips[0]}:${statusPort}`, 'STDOUT'], {});
    const [state, members] = answer.trim().split('\n');
    expect(state).toMatch(/^primary [0-9a-f-]{36} \d+ -$/);
    expect(members).toEqual(`addresses ${status(0, 'wsrep_incoming_addresses')}`);
    expect(members.split(/[ ,]/).slice(1).map((a) => a.split(':')[0]).sort()).toEqual(ips);
    // a reader of the first line only (peer_state) still sees a valid state line
    expect(asNode(2, `peer_state ${ips[0]}`).stdout).toEqual(state);
  });

  test('a node whose previous instance is counted waits; one that is not counted, has no data or has waited long enough joins at once', async () => {
    const uuid = status(0, 'wsrep_cluster_state_uuid');
    // node 2 runs: a Primary Component counts a member at its address (the first peer that does is node 0)
    expect(asNode(2, `hold_rejoin ${uuid} ${ips[2]} 60`)).toMatchObject({ status: 0, stdout: '0' });
    // an address no member has
    expect(asNode(2, `hold_rejoin ${uuid} 127.84.0.9 60`)).toMatchObject({ status: 1, stdout: '' });
    // a new node (no data) never waits; nor one that has run for the cap already
    expect(asNode(2, `hold_rejoin ${ZERO} ${ips[2]} 60`).status).toBe(1);
    expect(asNode(2, `SECONDS=60; hold_rejoin ${uuid} ${ips[2]} 60`).status).toBe(1);
    expect(asNode(2, `SECONDS=59; hold_rejoin ${uuid} ${ips[2]} 60`).status).toBe(0);
  });

  test('after kill -9 the peers count the previous instance until they evict it; then the node no longer waits', async () => {
    const uuid = status(0, 'wsrep_cluster_state_uuid');
    await kill9(2);
    // right after the kill the Primary Component still has 3 members, node 2's among them
    expect(asNode(2, `hold_rejoin ${uuid} ${ips[2]} 60`)).toMatchObject({ status: 0, stdout: '0' });
    expect(status(0, 'wsrep_cluster_size')).toEqual('3');
    await until('the eviction', () => asNode(2, `hold_rejoin ${uuid} ${ips[2]} 60`).status === 1, 3000);
    // it stops waiting because the peers evicted it, not because they stopped answering
    expect(status(0, 'wsrep_cluster_size')).toEqual('2');
    expect(status(0, 'wsrep_cluster_status')).toEqual('Primary');
    expect(asNode(2, `counted_by_primary ${ips[1]}`)).toMatchObject({ status: 0, stdout: '0' });
    // it rejoins by IST
    await start(2, `--wsrep-start-position=${uuid}:${status(0, 'wsrep_last_committed')}`);
    await until('a cluster of 3 again', () => status(2, 'wsrep_cluster_size') === '3' && status(2, 'wsrep_local_state_comment') === 'Synced');
  }, 120_000);

  test('without a Primary Component there is nothing to wait for, even if a component lists the address', async () => {
    const server = net.createServer((socket) => socket.end(`non-primary ${UUID} 12 -\naddresses ${ips[2]}:3306,${ips[1]}:3306\n`));
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.84.0.5', resolve));
    try {
      const env = { STATE_DIR: path.join(dir, 'self2'), POD_NAME: 'g-2', STATUS_PORT: `${port}` };
      expect((await bashAsync('peer_state 127.84.0.5', env)).stdout).toEqual(`non-primary ${UUID} 12 -`);
      expect((await bashAsync(`hold_rejoin ${UUID} ${ips[2]} 60`, { ...env, PEERS: '127.84.0.5 127.84.0.6 self' })).status).toBe(1);
      // nobody answers: no Primary Component either
      expect((await bashAsync(`hold_rejoin ${UUID} ${ips[2]} 60`, { ...env, PEERS: '127.84.0.6 127.84.0.7 self' })).status).toBe(1);
    } finally {
      server.close();
    }
  });

  test('a primary peer answering the same lines is counted; addresses are matched by host, IPv6 included', async () => {
    const server = net.createServer((socket) => socket.end(`primary ${UUID} 12 -\naddresses 127.84.0.1:3306,[fd00::7]:3306\n`));
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.84.0.5', resolve));
    try {
      const env = { STATE_DIR: path.join(dir, 'self2'), POD_NAME: 'g-2', STATUS_PORT: `${port}`, PEERS: '127.84.0.6 127.84.0.5 self' };
      expect(await bashAsync('counted_by_primary fd00::7', env)).toMatchObject({ status: 0, stdout: '1' });
      expect(await bashAsync('counted_by_primary 127.84.0.1', env)).toMatchObject({ status: 0, stdout: '1' });
      expect((await bashAsync('counted_by_primary 127.84.0.13', env)).status).toBe(1);
      expect((await bashAsync('counted_by_primary fd00::', env)).status).toBe(1);
    } finally {
      server.close();
    }
  });
});

function spawnAsync(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH!, DB_ENGINE: 'mariadb', ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', () => resolve(out));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}
