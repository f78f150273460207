/**
 * MySqlReplicationCluster (MariaDB) end to end on the pod runner: the synthesized manifests run as
 * pods, Debian's MariaDB 10.11 standing in for the mariadb images (the 11.4 profile hides every
 * mysql* name). Every assertion is on data or on the state the servers and the volumes report.
 *
 * Two clusters, one after the other, in one runner:
 * - `small` (mariadb:10.11, 3 pods, a few rows): the read and write Services, and reads going on
 *   while replicas are killed and deleted;
 * - `big` (mariadb:11.4, over 200 MB): a primary alone, scaled to 3 (seeding by physical copies),
 *   restarts of replicas, an interrupted seed (scale to 4) and the loss of the primary under load.
 */
import { Dirent, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Chart, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { PodRunner, RUNNER_BASE_DIR } from './runner';
import { EngineVersion, MySqlReplicationCluster } from '../../src';

jest.setTimeout(600_000);

const RUNNER = 'repl-e2e';
/** Passwords with quotes, '#', ';', '$', a backquote and a backslash: they travel through SQL and option files. */
const ROOT_PASSWORD = 'r00t "pw" #1 \'q\' $HOME';
const REPLICATION_PASSWORD = 'repl;pw\'2 `id` \\';
const APP_PASSWORD = 'app pw #3';
const MiB = 1024 * 1024;

let rt: PodRunner;
/** Client option files on this machine (the client namespace shares its filesystem). */
let clientDir: string;
const login = { root: '', app: '' };
const started = Date.now();

/** A chart with the credentials Secret and a MariaDB replication cluster. */
function chart(name: string, version: EngineVersion, replicas: number): Chart {
  const c = Testing.chart();
  const credentials = new kplus.Secret(c, 'Credentials', {
    metadata: { name: `${name}-credentials` },
    stringData: { 'root-password': ROOT_PASSWORD, 'replication-password': REPLICATION_PASSWORD },
  });
  new MySqlReplicationCluster(c, 'Cluster', { name, version, replicas, credentials, storage: Size.gibibytes(2) });
  return c;
}

function cnfQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function sqlQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** The mariadb client of this machine, from the client namespace, as a user of the cluster. */
function client(host: string, as: keyof typeof login = 'root', extra: string[] = []): string[] {
  return ['timeout', '90', 'mariadb', `--defaults-extra-file=${login[as]}`, `--host=${host}`, '--connect-timeout=5', '--batch', ...extra];
}

/** Runs SQL on `host` (a Service or a pod's headless name) and returns the rows, tab-separated. */
async function sql(host: string, statements: string, as: keyof typeof login = 'root'): Promise<string> {
  const r = await rt.client(client(host, as, ['--skip-column-names']), { stdin: statements });
  if (r.code !== 0) {
    throw new Error(`${host}: SQL failed (exit ${r.code}): ${r.stderr.trim()}\n${statements}`);
  }
  return r.stdout.trim();
}

/** SHOW REPLICA STATUS of a server, by field name. */
async function replicaStatus(host: string): Promise<Record<string, string>> {
  const r = await rt.client(client(host), { stdin: 'SHOW REPLICA STATUS' });
  if (r.code !== 0) {
    throw new Error(`${host}: SHOW REPLICA STATUS failed: ${r.stderr.trim()}`);
  }
  const [header, values] = r.stdout.split('\n');
  const fields = header.split('\t');
  const row = (values ?? '').split('\t');
  return Object.fromEntries(fields.map((field, i) => [field, row[i]]));
}

/** The sequence number of a single-domain GTID position (`0-100-13` → 13). */
function gtidSeq(position: string): number {
  const match = /^0-\d+-(\d+)$/.exec(position);
  if (!match) {
    throw new Error(`'${position}' is not a single-domain GTID position`);
  }
  return Number(match[1]);
}

/** Waits (at most 60 s) until a replica has applied everything the primary has written so far. */
async function caughtUp(cluster: string, replica: string): Promise<void> {
  const position = await sql(`${cluster}-0.${cluster}`, 'SELECT @@gtid_binlog_pos');
  const waited = await sql(`${replica}.${cluster}`, `SELECT MASTER_GTID_WAIT(${sqlQuote(position)}, 60)`);
  if (waited !== '0') {
    throw new Error(`${replica} did not reach the primary's position ${position} within 60 s: ${JSON.stringify(await replicaStatus(`${replica}.${cluster}`))}`);
  }
}

async function checksum(host: string, table: string): Promise<string> {
  return (await sql(host, `CHECKSUM TABLE ${table}`)).split('\t')[1];
}

/** A file on a pod's volume (its PersistentVolumeClaim's directory). */
function onVolume(pod: string, path = ''): string {
  return join(RUNNER_BASE_DIR, RUNNER, 'claims', 'default', `data-${pod}`, path);
}

/** What identifies a marker file's one write: content, inode and modification time. */
function fileState(path: string): { content: string; ino: number; mtimeMs: number } | undefined {
  if (!existsSync(path)) {
    return undefined;
  }
  const stat = statSync(path);
  return { content: readFileSync(path, 'utf8'), ino: stat.ino, mtimeMs: stat.mtimeMs };
}

function markerField(content: string, field: string): string {
  const match = new RegExp(`^${field}=(.*)$`, 'm').exec(content);
  if (!match) {
    throw new Error(`no ${field}= in ${JSON.stringify(content)}`);
  }
  return match[1];
}

/** The bytes of the files below a directory (0 when it does not exist). */
function stageSize(dir: string): number {
  let total = 0;
  const walk = (path: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return; // removed meanwhile
    }
    for (const entry of entries) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) {
        walk(child);
      } else {
        try {
          total += statSync(child).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return total;
}

/** Runs a shell script in a container; fails on a non-zero exit. */
async function inPod(pod: string, container: string, script: string, timeoutMs = 60_000): Promise<string> {
  const r = await rt.exec(pod, container, ['bash', '-c', script], { timeoutMs });
  if (r.code !== 0) {
    throw new Error(`${pod}/${container}: exit ${r.code}: ${r.stderr.trim()}\n${script}`);
  }
  return r.stdout.trim();
}

interface Read {
  readonly n: number;
  /** When the first attempt started (ms since the epoch). */
  readonly at: number;
  /** ok (first attempt), retried (the retry succeeded) or failed (both failed). */
  readonly outcome: 'ok' | 'retried' | 'failed';
  /** The columns the successful attempt returned. */
  readonly row: string[];
}

/**
 * A bounded loop of reads through `host` from the client namespace (at most `maxReads`, at most
 * `maxSeconds`, until `stopFile` exists): each runs `query` on a new connection and, when it
 * fails, once more.
 */
async function readLoop(host: string, query: string, stopFile: string, maxReads: number, maxSeconds: number): Promise<Read[]> {
  const read = `timeout 10 mariadb --defaults-extra-file=${login.root} --host=${host} --connect-timeout=2 --batch --skip-column-names -e ${JSON.stringify(query)}`;
  const script = `end=$((SECONDS + ${maxSeconds}))
    for ((n = 1; n <= ${maxReads} && SECONDS < end; n++)); do
      [[ -e ${stopFile} ]] && break
      at=$(date +%s%3N)
      if out=$(${read} 2>/dev/null); then echo "$n $at ok $out"
      elif out=$(${read} 2>/dev/null); then echo "$n $at retried $out"
      else echo "$n $at failed"; fi
      sleep 0.02
    done`;
  const r = await rt.client(['bash', '-c', script], { timeoutMs: (maxSeconds + 60) * 1000 });
  return r.stdout.split('\n').filter((line) => line).map((line) => {
    const [n, at, outcome, ...row] = line.split(/\s+/);
    return { n: Number(n), at: Number(at), outcome: outcome as Read['outcome'], row };
  });
}

interface Write {
  readonly id: number;
  /** When the INSERT was acknowledged (ms since the epoch). */
  readonly at: number;
}

/**
 * A bounded write load through `host` from the client namespace: INSERTs of ids from `firstId`
 * up, one per connection, never retried; resolves with the ids whose INSERT was acknowledged, and when.
 */
async function writeLoop(host: string, firstId: number, stopFile: string, maxWrites: number, maxSeconds: number): Promise<Write[]> {
  const script = `end=$((SECONDS + ${maxSeconds}))
    for ((i = ${firstId}; i < ${firstId + maxWrites} && SECONDS < end; i++)); do
      [[ -e ${stopFile} ]] && break
      if timeout 10 mariadb --defaults-extra-file=${login.root} --host=${host} --connect-timeout=2 \\
          -e "INSERT INTO e2e.acked (id) VALUES ($i)" 2>/dev/null; then echo "$i $(date +%s%3N)"; fi
      sleep 0.02
    done`;
  const r = await rt.client(['bash', '-c', script], { timeoutMs: (maxSeconds + 60) * 1000 });
  return r.stdout.split('\n').filter((line) => line).map((line) => {
    const [id, at] = line.split(' ').map(Number);
    return { id, at };
  });
}

/** Samples readiness of pods every 50 ms until stopped: the intervals in which each was not ready. */
function watchReadiness(pods: readonly string[]): { stop: () => Promise<Map<string, Array<[number, number]>>> } {
  const notReady = new Map<string, Array<[number, number]>>(pods.map((pod) => [pod, []]));
  const since = new Map<string, number>();
  let running = true;
  const sample = (): void => {
    const now = Date.now();
    for (const pod of pods) {
      const ready = rt.isReady(pod);
      if (!ready && !since.has(pod)) {
        since.set(pod, now);
      } else if (ready && since.has(pod)) {
        notReady.get(pod)!.push([since.get(pod)!, now]);
        since.delete(pod);
      }
    }
  };
  const loop = (async () => {
    while (running) {
      sample();
      await sleep(50);
    }
  })();
  stopAfterTest.push(async () => {
    running = false;
    await loop;
  });
  return {
    stop: async () => {
      running = false;
      await loop;
      sample();
      for (const [pod, from] of since) {
        notReady.get(pod)!.push([from, Number.POSITIVE_INFINITY]);
      }
      return notReady;
    },
  };
}

/** Reads whose first attempt failed, as "n/total (p %)". */
function errorRate(reads: readonly Read[]): string {
  const failedFirst = reads.filter((r) => r.outcome !== 'ok').length;
  return `${failedFirst}/${reads.length} (${((100 * failedFirst) / Math.max(1, reads.length)).toFixed(1)} %)`;
}

/** Background loops of the running test, stopped after it even when it fails. */
const stopAfterTest: Array<() => unknown> = [];

afterEach(async () => {
  for (const stop of stopAfterTest.splice(0)) {
    await stop();
  }
});

beforeAll(async () => {
  clientDir = mkdtempSync(join(tmpdir(), 'repl-e2e-client-'));
  login.root = join(clientDir, 'root.cnf');
  login.app = join(clientDir, 'app.cnf');
  writeFileSync(login.root, `[client]\nuser=root\npassword=${cnfQuote(ROOT_PASSWORD)}\n`, { mode: 0o600 });
  writeFileSync(login.app, `[client]\nuser=app\npassword=${cnfQuote(APP_PASSWORD)}\n`, { mode: 0o600 });
  rt = await PodRunner.start({ name: RUNNER, restartBackoff: { initialMs: 1_000, maxMs: 5_000 } });
});

afterAll(async () => {
  await rt?.stop();
  if (clientDir) {
    rmSync(clientDir, { recursive: true, force: true });
  }
  console.log(`replication e2e: ${seconds(started)} in all`);
});

describe('a MariaDB 10.11 cluster of 3 pods', () => {
  const NAME = 'small';
  const PODS = [0, 1, 2].map((i) => `${NAME}-${i}`);
  const REPLICAS = PODS.slice(1);
  const ROWS = 100;

  afterAll(async () => {
    // the next cluster gets the machine to itself
    await rt.scale(NAME, 0);
    await rt.waitForStatefulSetReady(NAME, 0, 180_000);
  });

  test('a row written through the write Service is read back through the read Service and from every replica by its headless name', async () => {
    const since = Date.now();
    await rt.apply(chart(NAME, EngineVersion.MARIADB_10_11, 3));
    await rt.waitForStatefulSetReady(NAME, 3, 300_000);
    console.log(`small: 3 pods ready in ${seconds(since)}`);

    await sql(`${NAME}-write`, `CREATE DATABASE e2e;
      CREATE TABLE e2e.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64) NOT NULL);
      INSERT INTO e2e.t VALUES (0, 0, 'hello from the tutorial')`);
    const written = await sql(`${NAME}-write`, 'SELECT note FROM e2e.t WHERE id = 0');
    expect(written).toBe('hello from the tutorial');
    for (const replica of REPLICAS) {
      await caughtUp(NAME, replica);
      expect(await sql(`${replica}.${NAME}`, 'SELECT note FROM e2e.t WHERE id = 0')).toBe('hello from the tutorial');
    }
    // the read Service spreads reads over every ready pod (the primary too); the write Service reaches only the primary
    const readers = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const [host, note] = (await sql(`${NAME}-read`, 'SELECT @@hostname, note FROM e2e.t WHERE id = 0')).split('\t');
      expect(note).toBe('hello from the tutorial');
      readers.add(host);
    }
    expect([...readers].sort()).toEqual(PODS);
    const writers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      writers.add(await sql(`${NAME}-write`, 'SELECT @@hostname'));
    }
    expect([...writers]).toEqual([`${NAME}-0`]);
  });

  test('reads through the read Service go on while one replica is killed with -9 and another is deleted: no read fails twice in a row, and a replica that is not ready gets no reads', async () => {
    await sql(`${NAME}-write`, `INSERT INTO e2e.t SELECT seq, seq, CONCAT('row ', seq) FROM e2e.seq_1_to_${ROWS}`);
    for (const replica of REPLICAS) {
      await caughtUp(NAME, replica);
    }
    const expected = `${ROWS + 1}\t${(ROWS * (ROWS + 1)) / 2}`;
    const stopFile = join(clientDir, 'stop-reads');
    stopAfterTest.push(() => writeFileSync(stopFile, ''));
    const watch = watchReadiness(REPLICAS);
    const reads = readLoop(`${NAME}-read`, 'SELECT @@hostname, COUNT(*), SUM(v) FROM e2e.t', stopFile, 3_000, 150);
    const since = Date.now();

    await sleep(2_000);
    const killedAt = Date.now();
    await rt.killContainer(`${NAME}-1`, 'server');
    await rt.waitFor(`${NAME}-1 to restart and be ready`, () => rt.restartCount(`${NAME}-1`, 'server') === 1 && rt.isReady(`${NAME}-1`), 120_000, [`${NAME}-1`]);
    console.log(`small-1 ready again ${seconds(killedAt)} after kill -9 of its server`);
    await sleep(2_000);
    const deletedAt = Date.now();
    await rt.deletePod(`${NAME}-2`);
    await rt.waitForStatefulSetReady(NAME, 3, 120_000);
    console.log(`small-2 ready again ${seconds(deletedAt)} after its deletion`);
    await sleep(2_000);
    writeFileSync(stopFile, '');
    const done = await reads;
    const notReady = await watch.stop();
    console.log(`reads through ${NAME}-read: ${done.length} in ${seconds(since)}, first attempt failed: ${errorRate(done)}, not ready: ${
      JSON.stringify(Object.fromEntries([...notReady].map(([pod, spans]) => [pod, spans.map(([a, b]) => `${a - since}..${b - since} ms`)])))}`);

    expect(done.length).toBeGreaterThan(100);
    // every read was answered, at worst by its retry, and with the data
    expect(done.filter((r) => r.outcome === 'failed')).toEqual([]);
    for (const r of done) {
      expect(r.row.slice(1).join('\t')).toBe(expected);
    }
    // each replica was out of the read Service for a while, got no reads then, and got reads before and after
    for (const replica of REPLICAS) {
      const spans = notReady.get(replica)!;
      expect(spans.length).toBeGreaterThanOrEqual(1);
      const servedBy = done.filter((r) => r.row[0] === replica);
      // 250 ms: the Services follow a readiness change, and this test samples it, with some delay
      const inSpan = servedBy.filter((r) => spans.some(([from, to]) => r.at > from + 250 && r.at < to - 250));
      expect(inSpan).toEqual([]);
      expect(servedBy.some((r) => r.at < spans[0][0])).toBe(true);
      expect(servedBy.some((r) => r.at > spans[spans.length - 1][1])).toBe(true);
    }
  });
});

describe('a MariaDB 11.4 cluster with over 200 MB of data', () => {
  const NAME = 'big';
  const primary = `${NAME}-0.${NAME}`;
  const ROWS_PER_CHUNK = 22_000;
  const CHUNKS = 10;
  /** The primary's GTID position right after the load. */
  let loadSeq = 0;

  test('scaled from 1 to 3 pods, each new replica is seeded by a physical copy rather than by replaying the binary log, catches up, refuses writes of an application user and has the primary\'s checksum', async () => {
    let since = Date.now();
    await rt.apply(chart(NAME, EngineVersion.MARIADB_11_4, 1));
    await rt.waitForStatefulSetReady(NAME, 1, 300_000);
    console.log(`big: the primary alone ready in ${seconds(since)}`);

    // the load: chunks of 22,000 rows of 1 KiB from the SEQUENCE engine, one transaction each
    await sql(`${NAME}-write`, 'CREATE DATABASE bulk; CREATE TABLE bulk.t (id INT PRIMARY KEY, pad VARCHAR(1024) NOT NULL)');
    since = Date.now();
    const chunks = Array.from({ length: CHUNKS }, (_, i) =>
      `INSERT INTO bulk.t SELECT seq, REPEAT(MD5(seq), 32) FROM bulk.seq_${i * ROWS_PER_CHUNK + 1}_to_${(i + 1) * ROWS_PER_CHUNK};`);
    await sql(`${NAME}-write`, chunks.join('\n'));
    const [rows, bytes] = (await sql(`${NAME}-write`, 'SELECT COUNT(*), SUM(LENGTH(pad)) FROM bulk.t')).split('\t').map(Number);
    const loadPosition = await sql(primary, 'SELECT @@gtid_binlog_pos');
    loadSeq = gtidSeq(loadPosition);
    const ibd = statSync(onVolume(`${NAME}-0`, 'data/bulk/t.ibd')).size;
    console.log(`loaded ${rows} rows, ${(bytes / MiB).toFixed(0)} MiB (t.ibd ${(ibd / MiB).toFixed(0)} MiB) in ${seconds(since)}, up to GTID ${loadPosition}`);
    expect(rows).toBe(CHUNKS * ROWS_PER_CHUNK);
    expect(bytes).toBeGreaterThanOrEqual(200 * MiB);
    expect(ibd).toBeGreaterThanOrEqual(200 * MiB);
    const primaryBinlogs = (await sql(primary, 'SHOW BINARY LOGS')).split('\n').reduce((sum, line) => sum + Number(line.split('\t')[1]), 0);
    expect(primaryBinlogs).toBeGreaterThanOrEqual(200 * MiB);

    since = Date.now();
    await rt.scale(NAME, 3);
    await rt.waitForStatefulSetReady(NAME, 3, 600_000);
    console.log(`big: scaled to 3 in ${seconds(since)}`);

    await sql(`${NAME}-write`, 'CREATE DATABASE e2e; CREATE TABLE e2e.log (tag VARCHAR(64) NOT NULL)');
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('after-scale')");
    const primarySum = await checksum(primary, 'bulk.t');
    for (const [replica, donor] of [[`${NAME}-1`, `${NAME}-0`], [`${NAME}-2`, `${NAME}-1`]]) {
      const host = `${replica}.${NAME}`;
      // the volume was seeded once, by a copy of the donor taken after the load: the primary for
      // the first replica, a ready replica rather than the primary for the second
      const seeded = fileState(onVolume(replica, 'seeded'))!;
      expect(seeded).toBeDefined();
      expect(markerField(seeded.content, 'donor')).toBe(`${donor}.${NAME}`);
      const seedSeq = gtidSeq(markerField(seeded.content, 'gtid'));
      expect(seedSeq).toBeGreaterThanOrEqual(loadSeq);
      await caughtUp(NAME, replica);
      // nothing of the load went through replication: the replica logs what it applies
      // (log_slave_updates), and its binary log holds only transactions after the copy's position
      const binlogs = (await sql(host, 'SHOW BINARY LOGS')).split('\n').map((line) => line.split('\t'));
      expect(binlogs.reduce((sum, [, size]) => sum + Number(size), 0)).toBeLessThan(10 * MiB);
      const gtids: number[] = [];
      for (const [file] of binlogs) {
        const events = await sql(host, `SHOW BINLOG EVENTS IN ${sqlQuote(file)}`);
        gtids.push(...events.split('\n').map((line) => /\tGtid\t.*GTID 0-\d+-(\d+)/.exec(line)).filter((m) => m).map((m) => Number(m![1])));
      }
      expect(gtids.length).toBeGreaterThan(0);
      expect(Math.min(...gtids)).toBe(seedSeq + 1);
      const status = await replicaStatus(host);
      expect(status).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Master_Host: primary, Using_Gtid: 'Slave_Pos' });
      expect(await sql(host, "SELECT COUNT(*) FROM e2e.log WHERE tag = 'after-scale'")).toBe('1');
      expect(await checksum(host, 'bulk.t')).toBe(primarySum);
    }

    // an application user without READ ONLY ADMIN writes on the primary, and is refused on the replicas
    await sql(`${NAME}-write`, `CREATE USER 'app'@'%' IDENTIFIED BY ${sqlQuote(APP_PASSWORD)};
      GRANT SELECT, INSERT, UPDATE, DELETE ON e2e.* TO 'app'@'%'`);
    expect(await sql(primary, "SHOW GRANTS FOR 'app'@'%'")).not.toMatch(/READ ONLY ADMIN|SUPER|ALL PRIVILEGES ON \*\.\*/);
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('app on the primary')", 'app');
    for (const replica of [`${NAME}-1`, `${NAME}-2`]) {
      await caughtUp(NAME, replica);
      const r = await rt.client(client(`${replica}.${NAME}`, 'app'), { stdin: `INSERT INTO e2e.log VALUES ('app on ${replica}')` });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ERROR 1290 .*--read-only/);
      expect(await sql(`${replica}.${NAME}`, "SELECT tag FROM e2e.log WHERE tag LIKE 'app on %'", 'app')).toBe('app on the primary');
    }
    expect(await sql(primary, "SELECT COUNT(*) FROM e2e.log WHERE tag LIKE 'app on big-%'")).toBe('0');
  });

  test('a replica whose server is killed with -9, and a replica whose pod is deleted, come back on their volume without seeding again, replicate what was written meanwhile, and configure replication only once', async () => {
    const replicas = [`${NAME}-1`, `${NAME}-2`];
    // e2e.log has no primary key: a transaction applied twice would show as a duplicate row
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('before the restarts')");
    const before = new Map<string, { seeded: unknown; configured: unknown; datadir: number; slavePos: number }>();
    for (const replica of replicas) {
      await caughtUp(NAME, replica);
      const configured = fileState(onVolume(replica, 'replication-configured'));
      expect(configured?.content).toBe(`source=${primary}\n`);
      before.set(replica, {
        seeded: fileState(onVolume(replica, 'seeded')),
        configured,
        datadir: statSync(onVolume(replica, 'data')).ino,
        slavePos: gtidSeq(await sql(`${replica}.${NAME}`, 'SELECT @@gtid_slave_pos')),
      });
    }

    let since = Date.now();
    await rt.killContainer(`${NAME}-1`, 'server');
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('while big-1 was killed')");
    await rt.waitFor(`${NAME}-1 to restart and be ready`, () => rt.restartCount(`${NAME}-1`, 'server') === 1 && rt.isReady(`${NAME}-1`), 180_000, [`${NAME}-1`]);
    console.log(`big-1 ready again ${seconds(since)} after kill -9 of its server`);
    since = Date.now();
    await rt.deletePod(`${NAME}-2`);
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('while big-2 was deleted')");
    await rt.waitForStatefulSetReady(NAME, 3, 180_000);
    console.log(`big-2 ready again ${seconds(since)} after its deletion`);
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('after the restarts')");

    const expectedLog = await sql(primary, 'SELECT tag, COUNT(*) FROM e2e.log GROUP BY tag ORDER BY tag');
    expect(expectedLog.split('\n').map((line) => line.split('\t')[1])).toEqual(['1', '1', '1', '1', '1', '1']);
    const primarySum = await checksum(primary, 'bulk.t');
    for (const replica of replicas) {
      const host = `${replica}.${NAME}`;
      await caughtUp(NAME, replica);
      const b = before.get(replica)!;
      // the same copy: neither marker was written again, the datadir is the one seeded
      expect(fileState(onVolume(replica, 'seeded'))).toEqual(b.seeded);
      expect(fileState(onVolume(replica, 'replication-configured'))).toEqual(b.configured);
      expect(statSync(onVolume(replica, 'data')).ino).toBe(b.datadir);
      expect(existsSync(onVolume(replica, 'seed.tmp'))).toBe(false);
      // replication resumed from where it was, not from the copy's position: every row exactly once
      expect(await sql(host, 'SELECT tag, COUNT(*) FROM e2e.log GROUP BY tag ORDER BY tag')).toBe(expectedLog);
      expect(gtidSeq(await sql(host, 'SELECT @@gtid_slave_pos'))).toBeGreaterThan(b.slavePos);
      expect(await replicaStatus(host)).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Last_SQL_Errno: '0', Master_Host: primary });
      expect(await checksum(host, 'bulk.t')).toBe(primarySum);
    }
    // the new pod's init container ran and left the seeded volume alone
    expect(rt.logs(`${NAME}-2`, 'init')).toMatch(/the volume is seeded already/);
  });

  test('a seed interrupted mid-stream starts over from scratch, and the volume is never marked seeded before a complete copy is in place', async () => {
    const pod = `${NAME}-3`;
    const [firstDonor, nextDonor] = [`${NAME}-2`, `${NAME}-1`];
    /**
     * Waits in the first donor's sidecar for a copy (a mariadb-backup other than `skip`) that has
     * sent 32 MiB, and stops it with SIGSTOP: the copy is then mid-stream for as long as the test
     * needs. Prints the stopped process's pid.
     */
    const holdCopy = (skip: string) => inPod(firstDonor, 'donor', `for ((i = 0; i < 12000; i++)); do
        for pid in $(pgrep -x mariadb-backup); do
          [[ $pid != "${skip}" ]] || continue
          sent=$(awk '/^wchar:/ { print $2 }' /proc/$pid/io 2>/dev/null) || continue
          if ((\${sent:-0} >= 32 * 1024 * 1024)); then kill -STOP "$pid"; echo "$pid"; exit 0; fi
        done
        sleep 0.01
      done
      exit 1`, 180_000);
    const resume = (pid: string) => inPod(firstDonor, 'donor', `kill -CONT ${pid}; for ((i = 0; i < 300; i++)); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.1; done; exit 1`);
    const marker = onVolume(pod, 'seeded');
    const stage = onVolume(pod, 'seed.tmp');
    const canary = join(stage, 'left-by-the-interrupted-copy');

    // what the volume shows every 20 ms, from the scale-up until the pod is ready
    const samples: Array<{ at: number; marker: boolean; stage: boolean }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ at: Date.now(), marker: existsSync(marker), stage: existsSync(stage) });
        await sleep(20);
      }
    })();
    const stopSampling = async () => {
      sampling = false;
      await sampler;
    };
    stopAfterTest.push(stopSampling);

    const firstCopy = holdCopy('');
    const since = Date.now();
    await rt.scale(NAME, 4);
    const held = await firstCopy;
    // mid-stream: the receiving mbstream runs, part of the copy is on the volume, without the donor's end mark
    const receiver = await inPod(pod, 'init', 'pgrep -x mbstream');
    expect(receiver).toMatch(/^\d+$/);
    let lastSize = -1;
    await rt.waitFor('the partial copy to stop growing', () => {
      const size = stageSize(stage);
      const stable = size > 0 && size === lastSize;
      lastSize = size;
      return stable;
    }, 30_000, [pod]);
    const partial = stageSize(stage);
    const full = stageSize(onVolume(firstDonor, 'data'));
    console.log(`interrupted the first copy at ${(partial / MiB).toFixed(0)} of ${(full / MiB).toFixed(0)} MiB, ${seconds(since)} after the scale-up`);
    expect(partial).toBeGreaterThanOrEqual(MiB);
    expect(partial).toBeLessThan(full / 2);
    expect(existsSync(join(stage, 'cdk8s-mysql-seed-complete'))).toBe(false);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(onVolume(pod, 'data'))).toBe(false);
    writeFileSync(canary, 'a file of the interrupted copy\n');

    // 1. the init container dies (kill -9) mid-stream; it restarts and copies again from the first donor
    const secondCopy = holdCopy(held);
    const killedAt = Date.now();
    await rt.killContainer(pod, 'init');
    await resume(held); // the donor's copy fails on the closed connection and ends
    const heldAgain = await secondCopy;
    expect(existsSync(canary)).toBe(false);
    expect(existsSync(marker)).toBe(false);

    // 2. the receiving mbstream dies (kill -9) mid-stream: the same init container takes a copy from the next donor
    const mbstreamKilledAt = Date.now();
    await inPod(pod, 'init', 'pkill -KILL -x mbstream');
    await resume(heldAgain);
    await rt.waitForStatefulSetReady(NAME, 4, 300_000);
    await stopSampling();
    console.log(`big-3 seeded and ready ${seconds(killedAt)} after its init container was killed`);

    // the marker appeared once, after the last interruption, and never next to a partial copy
    const seeded = fileState(marker)!;
    expect(markerField(seeded.content, 'donor')).toBe(`${nextDonor}.${NAME}`);
    expect(gtidSeq(markerField(seeded.content, 'gtid'))).toBeGreaterThanOrEqual(loadSeq);
    expect(seeded.mtimeMs).toBeGreaterThan(mbstreamKilledAt);
    expect(samples.filter((s) => s.marker && (s.at < mbstreamKilledAt || s.stage))).toEqual([]);
    expect(samples.some((s) => s.stage)).toBe(true);
    expect(rt.restartCount(pod, 'init')).toBe(1);
    expect(existsSync(onVolume(pod, 'data/left-by-the-interrupted-copy'))).toBe(false);
    expect(existsSync(stage)).toBe(false);

    // the copy is consistent and replicates
    await sql(`${NAME}-write`, "INSERT INTO e2e.log VALUES ('after big-3 was seeded')");
    await caughtUp(NAME, pod);
    expect(await checksum(`${pod}.${NAME}`, 'bulk.t')).toBe(await checksum(primary, 'bulk.t'));
    expect(await sql(`${pod}.${NAME}`, 'SELECT tag, COUNT(*) FROM e2e.log GROUP BY tag ORDER BY tag'))
      .toBe(await sql(primary, 'SELECT tag, COUNT(*) FROM e2e.log GROUP BY tag ORDER BY tag'));
    expect(await replicaStatus(`${pod}.${NAME}`)).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Master_Host: primary });
    // the donor cleaned up after both broken copies: no copy runs, no work directory of one is left
    expect(await inPod(firstDonor, 'donor', 'pgrep -x mariadb-backup; ls -A /tmp | grep "^cdk8s-mysql-send" || true')).toBe('');
  });

  test('the primary deleted, then its server killed with -9, under a write load: no acknowledged write is lost, reads go on from the replicas, and the replicas reconnect', async () => {
    const replicas = [1, 2, 3].map((i) => `${NAME}-${i}`);
    await sql(`${NAME}-write`, 'CREATE TABLE e2e.acked (id INT PRIMARY KEY)');
    const logFiles = new Map<string, string>();
    for (const replica of replicas) {
      await caughtUp(NAME, replica);
      logFiles.set(replica, (await replicaStatus(`${replica}.${NAME}`)).Master_Log_File);
    }
    const stopFile = join(clientDir, 'stop-load');
    stopAfterTest.push(() => writeFileSync(stopFile, ''));
    const watch = watchReadiness([`${NAME}-0`, ...replicas]);
    const since = Date.now();
    const writes = writeLoop(`${NAME}-write`, 1, stopFile, 20_000, 240);
    const reads = readLoop(`${NAME}-read`, 'SELECT @@hostname, COUNT(*) FROM e2e.acked', stopFile, 20_000, 240);

    await sleep(3_000);
    const deletedAt = Date.now();
    await rt.deletePod(`${NAME}-0`);
    await rt.waitForStatefulSetReady(NAME, 4, 180_000);
    const backAt = Date.now();
    console.log(`big-0 ready again ${seconds(deletedAt)} after its deletion`);
    await sleep(3_000);
    const killedAt = Date.now();
    await rt.killContainer(`${NAME}-0`, 'server');
    await rt.waitFor(`${NAME}-0 to restart and be ready`, () => rt.restartCount(`${NAME}-0`, 'server') === 1 && rt.isReady(`${NAME}-0`), 180_000, [`${NAME}-0`]);
    const backAgainAt = Date.now();
    console.log(`big-0 ready again ${seconds(killedAt)} after kill -9 of its server`);
    await sleep(3_000);
    writeFileSync(stopFile, '');
    const acked = await writes;
    const done = await reads;
    const notReady = await watch.stop();
    console.log(`through ${NAME}-write: ${acked.length} writes acknowledged; through ${NAME}-read: ${done.length} reads in ${seconds(since)}, first attempt failed: ${
      errorRate(done)}, not ready: ${JSON.stringify(Object.fromEntries([...notReady].map(([pod, spans]) => [pod, spans.map(([a, b]) => `${a - since}..${b - since} ms`)])))}`);

    // writes were acknowledged before, between and after the two losses
    expect(acked.filter((w) => w.at < deletedAt).length).toBeGreaterThan(10);
    expect(acked.filter((w) => w.at > backAt && w.at < killedAt).length).toBeGreaterThan(10);
    expect(acked.filter((w) => w.at > backAgainAt).length).toBeGreaterThan(10);
    // reads went on, from the replicas while the primary was away, never failing twice in a row
    expect(done.filter((r) => r.outcome === 'failed')).toEqual([]);
    for (const [from, to] of [[deletedAt, backAt], [killedAt, backAgainAt]]) {
      const during = done.filter((r) => r.at > from + 250 && r.at < to - 250);
      expect(during.length).toBeGreaterThan(10);
      expect(during.filter((r) => !replicas.includes(r.row[0]))).toEqual([]);
    }
    // the replicas stayed in the read Service: they hold everything they received while the primary is away
    for (const replica of replicas) {
      expect(notReady.get(replica)).toEqual([]);
    }

    // the replicas reconnected to the primary's new server (registered with it, on a newer binary log)
    expect((await sql(primary, 'SHOW SLAVE HOSTS')).split('\n').map((line) => line.split('\t')[0]).sort()).toEqual(['101', '102', '103']);
    const ids = new Set((await sql(primary, 'SELECT id FROM e2e.acked')).split('\n').map(Number));
    expect(acked.filter((w) => !ids.has(w.id))).toEqual([]);
    for (const replica of replicas) {
      const host = `${replica}.${NAME}`;
      await caughtUp(NAME, replica);
      const status = await replicaStatus(host);
      expect(status).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Master_Host: primary });
      expect(status.Master_Log_File > logFiles.get(replica)!).toBe(true);
      const onReplica = new Set((await sql(host, 'SELECT id FROM e2e.acked')).split('\n').map(Number));
      expect(acked.filter((w) => !onReplica.has(w.id))).toEqual([]);
      expect(onReplica).toEqual(ids);
    }
  });
});
