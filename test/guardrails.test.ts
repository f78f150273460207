/**
 * Every synth-time guardrail of the library: one bad input each, rejected with a message that
 * names the property, the value and the fix; and the valid values at each boundary, accepted.
 * (Guardrails that take many inputs also have their own table: the versions in
 * engine-version.test.ts, paths and buckets in backup-target.test.ts.)
 */
import { Chart, Cron, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  BackupMethod, BackupSchedule, BackupScheduleOptions, BackupTarget, EngineVersion, GaleraCluster, GaleraClusterProps,
  MySqlReplicationCluster, MySqlReplicationClusterProps, SstMethod,
} from '../src';
import { synth } from './util';

function replication(props: MySqlReplicationClusterProps = {}, chart: Chart = Testing.chart()): Chart {
  new MySqlReplicationCluster(chart, props.name ?? 'db', { name: 'db', ...props });
  return chart;
}

function galera(props: GaleraClusterProps = {}): Chart {
  const chart = Testing.chart();
  new GaleraCluster(chart, 'db', { name: 'db', ...props });
  return chart;
}

function claim(chart: Chart, id = 'Claim'): kplus.IPersistentVolumeClaim {
  return kplus.PersistentVolumeClaim.fromClaimName(chart, id, 'backups');
}

function secret(): kplus.ISecret {
  return kplus.Secret.fromSecretName(Testing.chart(), 'S3', 's3-credentials');
}

/** A schedule `Nightly` of a MariaDB 11.4 cluster `db` (physical backups to a claim). */
function schedule(options: Partial<BackupScheduleOptions> = {}, props: MySqlReplicationClusterProps = {}): Chart {
  const chart = Testing.chart();
  const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4, ...props });
  db.addBackupSchedule('Nightly', { target: BackupTarget.persistentVolumeClaim(claim(chart)), ...options });
  return chart;
}

/** The message of the error that `make` throws. */
function rejection(make: () => unknown): string {
  try {
    make();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the input was accepted');
}

const long = 'a'.repeat(53);

/** [the sentence, the bad input, [the property, the value, the fix that ends the message]] */
const rejected: Array<[string, () => unknown, [string, string, string]]> = [
  // MySqlReplicationCluster
  ['replicas below 1 is rejected', () => replication({ replicas: 0 }),
    ['replicas', 'got 0', 'a cluster needs its primary (1 = a primary alone, 3 = a primary and 2 replicas)']],
  ['a name that is not a DNS label is rejected', () => replication({ name: 'Orders_DB' }),
    ['name', "'Orders_DB'", "use lowercase letters, digits and '-', starting and ending with a letter or digit"]],
  ['a name longer than 52 characters is rejected (the StatefulSet adds a revision hash)', () => replication({ name: long }),
    ['name', `'${long}' is 53 characters long`, 'choose a shorter name']],
  ['a name that makes a pod name longer than 63 characters is rejected', () => replication({ name: 'a'.repeat(52), replicas: 100_000_000_000 }),
    ['name', `'${'a'.repeat(52)}-99999999999'`, 'choose a shorter name']],
  ['a name that starts with a digit is rejected (Service names start with a letter)', () => replication({ name: '1orders' }),
    ['name', "'1orders' starts with a digit", "choose a name that starts with a letter, e.g. 'db-1orders'"]],
  ['an image without a tag is rejected', () => replication({ image: 'registry.example.com:5000/mysql' }),
    ['image', "'registry.example.com:5000/mysql' has no tag", "pin a version, e.g. 'registry.example.com:5000/mysql:8.4' (an untagged image floats to 'latest')"]],
  ['an image pinned to latest is rejected', () => replication({ image: 'mysql:latest' }),
    ['image', "'mysql:latest' is pinned to 'latest'", "pin a version, e.g. 'mysql:8.4'"]],
  ['a release series the scripts do not support is rejected', () => replication({ version: EngineVersion.mysql('5.7') }),
    ['EngineVersion.mysql', "('5.7') is not a supported version", "use a mysql release of the 8.0 or 8.4 series, e.g. '8.4'"]],
  ['a data volume below 1 GiB is rejected', () => replication({ storage: Size.mebibytes(512) }),
    ['storage', '512Mi is too small', 'give at least 1Gi (a new datadir takes about 250 MiB and a binary log file grows to 1 GiB before it rotates), e.g. Size.gibibytes(10)']],
  ['access modes without a writable mode are rejected', () => replication({ accessModes: [kplus.PersistentVolumeAccessMode.READ_ONLY_MANY] }),
    ['accessModes', '[ReadOnlyMany] has no writable mode', 'use [PersistentVolumeAccessMode.READ_WRITE_ONCE] (or READ_WRITE_ONCE_POD)']],
  ['a StorageClass name that is not a DNS name is rejected', () => replication({ storageClassName: 'Fast SSD' }),
    ['storageClassName', "'Fast SSD'", "give the name of an existing StorageClass (lowercase letters, digits, '-' and '.'), e.g. 'standard'"]],
  ['a CPU request above its limit is rejected', () => replication({ resources: { cpu: { request: kplus.Cpu.units(2), limit: kplus.Cpu.millis(500) } } }),
    ['resources.cpu.request', '2 is above resources.cpu.limit 500m', 'lower the request or raise the limit (a request may equal its limit)']],
  ['a memory request above its limit is rejected', () => replication({ resources: { memory: { request: Size.gibibytes(2), limit: Size.gibibytes(1) } } }),
    ['resources.memory.request', '2Gi is above resources.memory.limit 1Gi', 'lower the request or raise the limit (a request may equal its limit)']],
  ['a buffer pool above 80% of the memory limit is rejected', () => replication({ innodbBufferPoolSize: Size.mebibytes(900) }),
    ['innodbBufferPoolSize', '900Mi is more than 80% of resources.memory.limit 1Gi', 'give at most 819Mi, or raise the memory limit to at least 1125Mi']],
  ['a memory limit with no room beside the default buffer pool is rejected', () => replication({ resources: { memory: { limit: Size.mebibytes(128) } } }),
    ['resources.memory.limit', 'the default innodb_buffer_pool_size (128Mi) is more than 80% of resources.memory.limit 128Mi', 'raise the memory limit to at least 160Mi']],
  ['a buffer pool of 0 is rejected', () => replication({ innodbBufferPoolSize: Size.mebibytes(0) }),
    ['innodbBufferPoolSize', 'got 0 KiB', 'e.g. Size.mebibytes(512)']],
  ['maxConnections out of the server\'s range is rejected', () => replication({ maxConnections: 0 }),
    ['maxConnections', 'got 0', 'e.g. 500']],
  ['maxConnections below MariaDB\'s minimum of 10 is rejected', () => replication({ maxConnections: 5, version: EngineVersion.MARIADB_11_4 }),
    ['maxConnections must be a whole number from 10 to 100000', 'got 5', 'e.g. 500']],
  ['a maxLag of 0 is rejected', () => replication({ maxLag: Duration.seconds(0) }),
    ['maxLag', 'got 0 ms', 'a replica would never be ready; allow a lag, e.g. Duration.seconds(30)']],
  ['a serverIdBase that pushes a server_id beyond 2^32-1 is rejected', () => replication({ serverIdBase: 4294967294 }),
    ['serverIdBase must be a whole number from 1 to 4294967293', 'got 4294967294', 'server_id = serverIdBase + ordinal must stay within 1..4294967295 for 3 pods']],
  ['semiSync without a replica is rejected', () => replication({ semiSync: true, replicas: 1 }),
    ['semiSync', 'got replicas 1', 'set replicas to 2 or more, or turn semiSync off']],
  ['a server option that the construct manages is rejected', () => replication({ serverOptions: { 'server-id': '7' } }),
    ['serverOptions.server-id', 'server-id', 'it is serverIdBase + the pod ordinal: set serverIdBase; remove it from serverOptions']],
  ['a skip- prefix that turns off a managed option is rejected', () => replication({ serverOptions: { 'skip-log-bin': '' } }),
    ['serverOptions.skip-log-bin', 'skip-log-bin', 'every pod writes a binary log so that any pod can be a donor; remove it from serverOptions']],
  ['skip_grant_tables is rejected', () => replication({ serverOptions: { skip_grant_tables: 'ON' } }),
    ['serverOptions.skip_grant_tables', 'skip_grant_tables', 'the server checks every login against its accounts; remove it from serverOptions']],
  ['a setting given both as a prop and as a server option is rejected', () => replication({ maxConnections: 100, serverOptions: { 'max-connections': '200' } }),
    ['serverOptions.max-connections', 'which maxConnections sets already', 'give it once']],
  ['a server option with a line break is rejected', () => replication({ serverOptions: { init_connect: 'SET x=1\n[client]' } }),
    ['serverOptions.init_connect', 'has a line break in its value', 'give a single-line value']],
  ['a server option name with other characters is rejected', () => replication({ serverOptions: { 'long query time': '2' } }),
    ['serverOptions key', "'long query time' is not an option name", "use the server's option name, of letters, digits, '_', '-' and '.', e.g. 'long_query_time'"]],
  ['a restore from something that is not a backup name is rejected', () => replication({ restoreFrom: { target: BackupTarget.persistentVolumeClaim(claim(Testing.chart())), backup: 'newest' } }),
    ['restoreFrom.backup', "'newest' is not a backup name", "give 'latest' or the name of a backup directory, e.g. '20250101T010100Z-physical'"]],
  ['a restore without a target is rejected', () => replication({ restoreFrom: {} as any }),
    ['restoreFrom', 'needs a target', "pass the BackupTarget the backups were written to, e.g. restoreFrom: { target, backup: 'latest' }"]],
  ['physical backups with XtraBackup of another release series are rejected', () => {
    const chart = replication({ xtrabackupImage: 'percona/percona-xtrabackup:8.0.35' });
    (chart.node.findChild('db') as MySqlReplicationCluster).addBackupSchedule('Nightly', { target: BackupTarget.persistentVolumeClaim(claim(chart)), method: BackupMethod.PHYSICAL });
  }, ['xtrabackupImage', "'percona/percona-xtrabackup:8.0.35' (8.0)", "set xtrabackupImage to 'percona/percona-xtrabackup:8.4', or use method: BackupMethod.LOGICAL"]],

  // GaleraCluster
  ['a Galera cluster of 2 nodes is rejected (no majority after one loss)', () => galera({ replicas: 2 }),
    ['replicas', '2 is even', 'use 3 (3, 5 or 7)']],
  ['a Galera cluster of an even size is rejected', () => galera({ replicas: 4 }),
    ['replicas', '4 is even', 'use 3 or 5 (3, 5 or 7)']],
  ['a Galera cluster of 0 nodes is rejected', () => galera({ replicas: 0 }),
    ['replicas', 'got 0', 'use 3, 5 or 7']],
  ['a single Galera node without allowSingleNode is rejected', () => galera({ replicas: 1 }),
    ['replicas', '1 is a single node', 'use 3, 5 or 7 nodes, or set allowSingleNode: true for development']],
  ['an unknown SST method is rejected', () => SstMethod.of('xtrabackup-v2'),
    ['sstMethod', "'xtrabackup-v2'", 'or SstMethod.RSYNC (faster; the donor is read-only during the copy)']],
  ['a MySQL version for Galera is rejected', () => galera({ version: EngineVersion.MYSQL_8_4 }),
    ['version', 'mysql 8.4', 'use EngineVersion.MARIADB_11_4 or EngineVersion.MARIADB_10_11 (or MySqlReplicationCluster for MySQL)']],
  ['a Galera cluster name with a space is rejected', () => galera({ clusterName: 'my cluster' }),
    ['clusterName', "'my cluster'", "use 1 to 64 letters, digits, '_', '.' or '-'"]],
  ['a startupTimeout under 30 seconds is rejected', () => galera({ startupTimeout: Duration.seconds(5) }),
    ['startupTimeout', 'got 5000 ms', 'e.g. Duration.seconds(60)']],
  ['a primaryComponentTimeout under 10 seconds is rejected', () => galera({ primaryComponentTimeout: Duration.seconds(1) }),
    ['primaryComponentTimeout', 'got 1000 ms', 'e.g. Duration.seconds(20)']],
  ['a startupTimeout not longer than primaryComponentTimeout is rejected', () => galera({ startupTimeout: Duration.minutes(2), primaryComponentTimeout: Duration.minutes(2) }),
    ['startupTimeout', '120 s is not longer than primaryComponentTimeout 120 s', 'make startupTimeout longer (it also covers crash recovery and state transfers), e.g. Duration.hours(1)']],
  ['a wsrep option that the construct manages is rejected', () => galera({ serverOptions: { 'wsrep-cluster-address': 'gcomm://' } }),
    ['serverOptions.wsrep-cluster-address', 'wsrep-cluster-address', 'it lists every pod of the StatefulSet: set replicas; remove it from serverOptions']],
  ['wsrep_recover in the option file is rejected', () => galera({ serverOptions: { wsrep_recover: 'ON' } }),
    ['serverOptions.wsrep_recover', 'wsrep_recover', 'every start would only recover and exit; remove it from serverOptions']],
  ['a provider option that recovery depends on is rejected', () => galera({ serverOptions: { wsrep_provider_options: 'gcache.size=1G; pc.recovery=FALSE' } }),
    ['serverOptions.wsrep_provider_options', "'gcache.size=1G; pc.recovery=FALSE' sets pc.recovery", 'remove pc.recovery from it']],
  ['a provider option that moves the Galera port is rejected', () => galera({ serverOptions: { wsrep_provider_options: 'gmcast.listen_addr=tcp://0.0.0.0:5000' } }),
    ['serverOptions.wsrep_provider_options', "'gmcast.listen_addr=tcp://0.0.0.0:5000' sets gmcast.listen_addr", 'remove gmcast.listen_addr from it']],
  ['a binlog_format other than ROW on Galera is rejected', () => galera({ serverOptions: { binlog_format: 'MIXED' } }),
    ['serverOptions.binlog_format', "'MIXED' breaks Galera replication, which needs binlog_format = ROW", 'remove it from serverOptions']],
  ['a Galera buffer pool above 80% of the memory limit is rejected', () => galera({ serverOptions: { innodb_buffer_pool_size: '1G' } }),
    ['serverOptions.innodb_buffer_pool_size', "'1G' is more than 80% of resources.memory.limit 1Gi", 'give at most 819M, or raise the memory limit to at least 1280Mi']],

  // BackupSchedule and BackupTarget
  ['a schedule without a cluster is rejected', () => new BackupSchedule(Testing.chart(), 'Nightly', {} as any),
    ['BackupSchedule', 'needs a cluster', 'use cluster.addBackupSchedule(id, options), or pass cluster']],
  ['a schedule without a target is rejected', () => schedule({ target: undefined }),
    ["BackupSchedule 'Nightly'", 'has no target', 'pass target: BackupTarget.persistentVolumeClaim(claim) or BackupTarget.s3({ bucket, credentials })']],
  ['a target that is not a BackupTarget is rejected', () => schedule({ target: { bucket: 'b' } as any }),
    ["BackupSchedule 'Nightly' target", 'got {"bucket":"b"}', 'make it with BackupTarget.persistentVolumeClaim(…) or BackupTarget.s3(…)']],
  ['a schedule name too long for its CronJobs is rejected', () => schedule({ name: 'x'.repeat(45) }),
    ['BackupSchedule name', `'${'x'.repeat(45)}'`, 'choose another name']],
  ['a time that is not HH:MM is rejected', () => schedule({ times: '01:01,25:00' }),
    ['times', "'01:01,25:00' has '25:00'", "give comma-separated HH:MM (00:00 to 23:59), e.g. '01:01,13:01'"]],
  ['a time given twice is rejected', () => schedule({ times: '01:01,01:01' }),
    ['times', "'01:01,01:01' has 01:01 twice", 'give each time once']],
  ['a cron field out of range is rejected', () => schedule({ schedules: [Cron.schedule({ minute: '61', hour: '1' })] }),
    ['schedules[0]', "'61 1 * * *' has an invalid minute field '61'", 'use *, numbers 0-59, ranges a-b, lists a,b and steps */n']],
  ['both times and schedules are rejected', () => schedule({ times: '01:00', schedules: [Cron.daily()] }),
    ['times', 'and schedules are both set', 'give one of them']],
  ['an empty list of schedules is rejected', () => schedule({ schedules: [] }),
    ['schedules', 'is empty', 'give at least one Cron, e.g. [Cron.daily()], or leave it unset']],
  ['a schedule given twice is rejected', () => schedule({ schedules: [Cron.daily(), Cron.daily()] }),
    ['schedules', "'0 0 * * *' twice", 'give each schedule once']],
  ['a schedule that never runs is rejected', () => schedule({ schedules: [Cron.schedule({ minute: '0', hour: '1', day: '30', month: '2' })] }),
    ['schedules[0]', "'0 1 30 2 *' never runs", "give a date that exists, e.g. '0 1 1 * *' for the 1st of every month"]],
  ['backups less than 5 minutes apart are rejected', () => schedule({ schedules: [Cron.schedule({ minute: '*/2' })] }),
    ['schedules', "'*/2 * * * *' runs backups 2 minutes apart", "give runs at least 5 minutes apart, e.g. Cron.schedule({ minute: '0' }) for hourly backups"]],
  ['a time zone that is not an IANA name is rejected', () => schedule({ timeZone: 'Mars/Olympus' }),
    ['timeZone', "'Mars/Olympus'", "give e.g. 'Etc/UTC' or 'Europe/Berlin'"]],
  ['a time zone in the wrong case is rejected with its right spelling', () => schedule({ timeZone: 'europe/berlin' }),
    ['timeZone', "'europe/berlin'", "give 'Europe/Berlin'"]],
  ['keepLast below 1 is rejected', () => schedule({ keepLast: 0 }),
    ['keepLast', 'got 0', 'the newest backup is always kept; e.g. keepLast: 7']],
  ['keepFor of 0 is rejected', () => schedule({ keepFor: Duration.days(0) }),
    ['keepFor', 'got 0 s', 'keep backups for e.g. Duration.days(7), or leave it unset to keep by count only']],
  ['keepFor no longer than the time between backups is rejected (only one backup would exist)', () => schedule({ times: '01:00,13:00', keepFor: Duration.hours(12) }),
    ['keepFor', '12 hours keeps only the newest backup, because backups run 12 hours apart', 'keep them for longer than 12 hours, e.g. Duration.days(7), or also set keepLast, e.g. keepLast: 7']],
  ['a startingDeadline under 10 seconds is rejected', () => schedule({ startingDeadline: Duration.seconds(5) }),
    ['startingDeadline', 'got 5 s', 'e.g. Duration.minutes(30)']],
  ['an activeDeadline under a minute is rejected', () => schedule({ activeDeadline: Duration.seconds(30) }),
    ['activeDeadline', 'got 30 s', 'e.g. Duration.minutes(30)']],
  ['a negative backoffLimit is rejected', () => schedule({ backoffLimit: -1 }),
    ['backoffLimit', 'got -1', 'e.g. 1 retries a failed run once']],
  ['a jobsHistoryLimit that is not a whole number is rejected', () => schedule({ jobsHistoryLimit: 1.5 }),
    ['jobsHistoryLimit', 'got 1.5', 'e.g. 3']],
  ['a memory request above its limit in the backup Jobs is rejected', () => schedule({ resources: { memory: { request: Size.gibibytes(2), limit: Size.gibibytes(1) } } }),
    ['resources.memory.request', '2Gi is above resources.memory.limit 1Gi', 'lower the request or raise the limit (a request may equal its limit)']],
  ['a drill of something that is not a backup name is rejected', () => schedule({ restoreDrill: { backup: 'yesterday' } }),
    ['restoreDrill.backup', "'yesterday' is not a backup name", "give 'latest' or the name of a backup directory, e.g. '20250101T010100Z-physical'"]],
  ['a drill with several schedules is rejected', () => schedule({ restoreDrill: { times: '04:00,05:30' } }),
    ['restoreDrill', 'got 2 (0 4 * * *; 30 5 * * *)', 'give times that share their minute, or one Cron']],
  ['two schedules of one method in one directory are rejected (they would prune each other)', () => {
    const chart = schedule();
    (chart.node.findChild('db') as MySqlReplicationCluster).addBackupSchedule('Hourly', { target: BackupTarget.persistentVolumeClaim(claim(chart, 'C2')) });
  }, ["BackupSchedule 'Hourly'", "as 'Nightly' does", 'give one of them another path (persistentVolumeClaim) or prefix (s3)']],
  ['a claim target without a claim is rejected', () => BackupTarget.persistentVolumeClaim(undefined as any),
    ['BackupTarget.persistentVolumeClaim', 'needs a claim', "pass kplus.PersistentVolumeClaim.fromClaimName(this, 'Backups', '<claim name>')"]],
  ['a claim path that leaves its directory is rejected', () => BackupTarget.persistentVolumeClaim(claim(Testing.chart()), { path: 'a/../b' }),
    ['BackupTarget.persistentVolumeClaim path', "'a/../b'", "without a leading or trailing '/' or '..', e.g. 'prod/orders'"]],
  ['an S3 target without credentials is rejected', () => BackupTarget.s3({ bucket: 'db-backups' } as any),
    ['BackupTarget.s3', "needs credentials (bucket 'db-backups')", "pass it as credentials: kplus.Secret.fromSecretName(this, 'S3', '<secret name>')"]],
  ['a bucket name S3 does not allow is rejected', () => BackupTarget.s3({ bucket: 'Upper', credentials: secret() }),
    ['BackupTarget.s3 bucket', "'Upper'", "use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"]],
  ['an S3 prefix with a leading slash is rejected', () => BackupTarget.s3({ bucket: 'db-backups', prefix: '/orders/', credentials: secret() }),
    ['BackupTarget.s3 prefix', "'/orders/'", "e.g. 'prod/orders'"]],
  ['an endpoint that is not an http(s) URL is rejected', () => BackupTarget.s3({ bucket: 'db-backups', endpoint: 'minio:9000', credentials: secret() }),
    ['BackupTarget.s3 endpoint', "'minio:9000'", "give e.g. 'https://s3.example.com' or 'http://minio.storage.svc:9000'"]],
  ['a region that is not a region name is rejected', () => BackupTarget.s3({ bucket: 'db-backups', credentials: secret(), region: 'EU Central' }),
    ['BackupTarget.s3 region', "'EU Central'", "give e.g. 'us-east-1'"]],
  ['an untagged rclone image is rejected', () => BackupTarget.s3({ bucket: 'db-backups', credentials: secret(), rcloneImage: 'rclone/rclone' }),
    ['BackupTarget.s3 rcloneImage', "'rclone/rclone' has no tag", "pin a version, e.g. 'rclone/rclone:1.69' (an untagged image floats to 'latest')"]],
];

describe('guardrails: bad input is rejected at synthesis with the property, the value and the fix', () => {
  test.each(rejected)('%s', (_sentence, make, [property, value, fix]) => {
    const message = rejection(make);
    expect(message).toContain(property);
    expect(message).toContain(value);
    expect(message.slice(-fix.length)).toEqual(fix);
  });

  test('the table lists at least 20 distinct bad inputs', () => {
    expect(new Set(rejected.map(([sentence]) => sentence)).size).toEqual(rejected.length);
    expect(rejected.length).toBeGreaterThanOrEqual(20);
  });
});

/** [the sentence, a valid input at the edge of a guardrail] */
const accepted: Array<[string, () => Chart]> = [
  ['a data volume of exactly 1 GiB', () => replication({ storage: Size.gibibytes(1) })],
  ['a Galera volume of exactly 1 GiB', () => galera({ storage: Size.gibibytes(1) })],
  ['a name of 52 characters that starts with a letter', () => replication({ name: `o${'a'.repeat(51)}` })],
  ['an image pinned by digest, whatever its tag', () => replication({ image: `mysql:latest@sha256:${'0'.repeat(64)}` })],
  ['a registry with a port and a tagged image', () => replication({ image: 'registry.example.com:5000/mysql:8.4.3' })],
  ['ReadWriteOncePod and a mix with a read-only mode', () => replication({
    accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE_POD, kplus.PersistentVolumeAccessMode.READ_ONLY_MANY],
    storageClassName: 'fast.ssd-1',
  })],
  ['requests equal to their limits', () => replication({
    resources: {
      cpu: { request: kplus.Cpu.millis(1500), limit: kplus.Cpu.units(1.5) },
      memory: { request: Size.gibibytes(2), limit: Size.mebibytes(2048) },
    },
  })],
  ['requests without limits', () => replication({ resources: { cpu: { request: kplus.Cpu.units(4) }, memory: { request: Size.gibibytes(64) } } })],
  ['a buffer pool of exactly 80% of the memory limit', () => replication({ innodbBufferPoolSize: Size.gibibytes(8), resources: { memory: { limit: Size.gibibytes(10) } } })],
  ['a memory limit of exactly 160 MiB beside the default buffer pool', () => replication({ resources: { memory: { limit: Size.mebibytes(160) } } })],
  ['maxConnections of 1 and 100000 on MySQL', () => replication({ name: 'most', maxConnections: 100000 }, replication({ name: 'least', maxConnections: 1 }))],
  ['maxConnections of 10 on MariaDB', () => replication({ maxConnections: 10, version: EngineVersion.MARIADB_11_4 })],
  ['the highest serverIdBase for 3 pods', () => replication({ serverIdBase: 4294967293 })],
  ['a maxLag of one millisecond', () => replication({ maxLag: Duration.millis(1) })],
  ['server options the construct does not manage, also with a skip- prefix', () => replication({ serverOptions: { 'skip_name_resolve': 'OFF', 'long-query-time': '2' } })],
  ['a Galera cluster of 3, 5 or 1 node with allowSingleNode', () => {
    const chart = Testing.chart();
    new GaleraCluster(chart, 'a', { name: 'a', replicas: 3 });
    new GaleraCluster(chart, 'b', { name: 'b', replicas: 5 });
    new GaleraCluster(chart, 'c', { name: 'c', replicas: 1, allowSingleNode: true });
    return chart;
  }],
  ['a startupTimeout one second longer than primaryComponentTimeout', () => galera({ startupTimeout: Duration.seconds(61), primaryComponentTimeout: Duration.seconds(60) })],
  ['Galera\'s mandatory settings with their own values and a gcache size', () => galera({
    serverOptions: { binlog_format: 'row', innodb_autoinc_lock_mode: '2', default_storage_engine: 'InnoDB', wsrep_provider_options: 'gcache.size=1G;gcs.fc_limit=64' },
  })],
  ['a Galera buffer pool of exactly 80% of the memory limit', () => galera({
    serverOptions: { innodb_buffer_pool_size: '8G' }, resources: { memory: { request: Size.gibibytes(10), limit: Size.gibibytes(10) } },
  })],
  ['backups exactly 5 minutes apart', () => schedule({ schedules: [Cron.schedule({ minute: '*/5' })], keepLast: 12 })],
  ['keepFor one second longer than the time between backups', () => schedule({ keepFor: Duration.seconds(24 * 3600 + 1) })],
  ['keepFor equal to the time between backups with keepLast set', () => schedule({ keepFor: Duration.days(1), keepLast: 2 })],
  ['a schedule on February 29 (it runs in leap years)', () => schedule({ schedules: [Cron.schedule({ minute: '0', hour: '1', day: '29', month: '2' })] })],
  ['a schedule on a day of month or a day of week', () => schedule({ schedules: [Cron.schedule({ minute: '0', hour: '1', day: '31', month: '4', weekDay: 'MON' })] })],
  ['IANA time zones of every shape', () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4 });
    ['Etc/UTC', 'UTC', 'EST5EDT', 'Etc/GMT+8', 'America/Argentina/Buenos_Aires', 'America/Port-au-Prince', 'Asia/Shanghai'].forEach((timeZone, i) => {
      db.addBackupSchedule(`Tz${i}`, { target: BackupTarget.persistentVolumeClaim(claim(chart, `C${i}`), { path: `tz${i}` }), timeZone });
    });
    return chart;
  }],
  ['a schedule name of 44 characters', () => schedule({ name: 'x'.repeat(44) })],
];

describe('guardrails: the valid value at each boundary is accepted', () => {
  test.each(accepted)('%s is accepted', (_sentence, make) => {
    expect(synth(make()).length).toBeGreaterThan(0);
  });
});
