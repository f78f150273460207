import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { checkBackupName } from './_backup';
import { CnfValue, CONTAINER_SECURITY, kubeResources, POD_SECURITY, recommendedLabels, renderCnf, resourceName, sizeQuantity, validateImage, validateStatefulSetName } from './_common';
import * as guard from './_guardrails';
import {
  EXPORTER_PASSWORD_KEY, EXPORTER_SCRIPTS, exporterCnf, exporterContainers, monitoringObjects, replicationAlerts, resolveMonitoring,
} from './_metrics';
import { clusterNetworkPolicy, componentSelector } from './_network-policy';
import { placement } from './_scheduling';
import { contentHash, readScripts } from './_scripts';
import { BoundServerTls, TLS_DIR, TLS_RESERVED_OPTIONS, tlsServerOptions, validateSecureTransport } from './_tls';
import { AllowedClients } from './allowed-clients';
import { BackupSchedule, BackupScheduleOptions } from './backup-schedule';
import { ClusterTopology, IDatabaseCluster, PhysicalBackupStream, RestoreFromBackup } from './database-cluster';
import { EngineVersion } from './engine-version';
import { PodAntiAffinity } from './pod-anti-affinity';
import { ServerTls } from './server-tls';

/**
 * Properties of a `MySqlReplicationCluster`.
 */
export interface MySqlReplicationClusterProps {
  /**
   * The name of the StatefulSet and of the headless Service, the prefix of every other object's
   * name (`<name>-write`, `<name>-read`, `<name>-config`, `<name>-scripts`, `<name>-credentials`)
   * and of the pods (`<name>-0` is the primary). At most 52 characters, a DNS label that starts
   * with a letter (it names Services).
   *
   * @default - derived from the construct path (stable, with a short hash)
   */
  readonly name?: string;

  /**
   * The number of pods: one primary (ordinal 0) and `replicas - 1` read replicas.
   *
   * @default 3
   */
  readonly replicas?: number;

  /**
   * The database engine and version.
   *
   * @default EngineVersion.MYSQL_8_4
   */
  readonly version?: EngineVersion;

  /**
   * The container image of every container of the pods, e.g. a mirror of the official image.
   * It must carry the binaries of `version` (the scripts call the engine's own programs); it must
   * name a tag other than `latest`, or a digest.
   *
   * @default - the official image of `version`, e.g. `mysql:8.4`
   */
  readonly image?: string;

  /**
   * CPU and memory of the database server container (and of the init container, which prepares
   * copies of the data). The sidecars have small fixed requests.
   *
   * @default - requests 500m CPU and 1 GiB memory; limits 1 GiB memory and no CPU limit
   */
  readonly resources?: kplus.ContainerResources;

  /**
   * The size of each pod's volume (one PersistentVolumeClaim per pod, from the StatefulSet's
   * volumeClaimTemplates). It holds the datadir, including the binary logs. At least 1 GiB.
   *
   * @default Size.gibibytes(10)
   */
  readonly storage?: Size;

  /**
   * The StorageClass of the pods' volumes.
   *
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;

  /**
   * The access modes of the pods' volumes.
   *
   * @default [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE]
   */
  readonly accessModes?: kplus.PersistentVolumeAccessMode[];

  /**
   * `innodb_buffer_pool_size`: at most 80% of the memory limit (the server needs memory beside
   * it); with the default 128 MiB, a memory limit needs to be at least 160 MiB.
   *
   * @default - the server's default (128 MiB)
   */
  readonly innodbBufferPoolSize?: Size;

  /**
   * `max_connections`: 1 to 100000 for MySQL, 10 to 100000 for MariaDB.
   *
   * @default - the server's default (151)
   */
  readonly maxConnections?: number;

  /**
   * Further server options for the `[mysqld]` section of my.cnf, by option name, e.g.
   * `{ long_query_time: '2', slow_query_log: 'ON' }`. They are written after the library's
   * settings, so they also override its defaults (e.g. MariaDB's `binlog_expire_logs_seconds`,
   * 7 days). Options that the replication depends on (server_id, log_bin, gtid_mode, read_only,
   * datadir, …) are set by the construct and cannot be given here; `plugin_load_add` is appended
   * to the construct's.
   *
   * @default - none
   */
  readonly serverOptions?: { [name: string]: string };

  /**
   * Semi-synchronous replication: the primary waits, for each commit, until a replica has
   * received it (falling back to asynchronous replication after 10 seconds without a replica).
   * It needs at least one replica.
   *
   * @default false
   * @see https://dev.mysql.com/doc/refman/8.4/en/replication-semisync.html
   */
  readonly semiSync?: boolean;

  /**
   * How far a replica may lag behind the primary (`Seconds_Behind_Source`) and still be ready,
   * that is, receive reads from the read Service. While a replica cannot reach the primary (its
   * pod restarts, or is out of reach) but has applied everything it received, it stays ready until
   * that data is `maxLag` old, so reads go on from the replicas while the primary is away for less.
   *
   * @default Duration.seconds(30)
   */
  readonly maxLag?: Duration;

  /**
   * The `server_id` of the primary; the pod with ordinal n gets `serverIdBase + n`. Choose
   * distinct ranges for clusters that replicate to or from each other.
   *
   * @default 100
   */
  readonly serverIdBase?: number;

  /**
   * The Secret with the cluster's passwords, under the keys `root-password` (the `root`
   * account, also used by the probes and the sidecars) and `replication-password` (the
   * `repl` account replicas log in with). Both must be non-empty. They are set when a datadir is
   * first initialized; changing the Secret later does not change the accounts.
   *
   * @default - a Secret named `<name>-credentials` that you create, e.g. with
   * `kubectl create secret generic <name>-credentials --from-literal=root-password=… --from-literal=replication-password=…`
   */
  readonly credentials?: kplus.ISecret;

  /**
   * Start a new cluster from a backup: when the primary's (ordinal 0) volume is empty, an init
   * container fetches the backup, checks its checksum, and the primary's datadir is built from it
   * (a physical copy, or a new datadir loaded with the dump) instead of a new one; its tables must
   * match the backup's manifest. The replicas then seed from the primary as usual. The accounts
   * `root` and `repl` get the passwords of `credentials`; the GTID position continues from the
   * backup's. It has no effect on a volume that holds data; remove it once the cluster runs.
   *
   * @default - a new, empty cluster
   */
  readonly restoreFrom?: RestoreFromBackup;

  /**
   * The Percona XtraBackup image of a MySQL cluster's backup sidecar, which a physical
   * `BackupSchedule` adds (the `mysql` image has no physical backup tool). It must match the
   * server's release series.
   *
   * @default - `percona/percona-xtrabackup:<series>`, e.g. `percona/percona-xtrabackup:8.4`
   */
  readonly xtrabackupImage?: string;

  /**
   * Adds a Prometheus mysqld_exporter sidecar (container `metrics`, port 9104 named `metrics`)
   * to every pod, and a headless Service `<name>-metrics` that reaches the exporters of all pods,
   * ready or not. The exporter logs in over the pod-local socket as `exporter@localhost`, an
   * account limited to 3 connections with PROCESS, REPLICATION CLIENT (MariaDB: REPLICA MONITOR)
   * and SELECT on performance_schema only, which the primary creates (and replication carries to
   * the replicas). Its password is the key `exporter-password` of `credentials` (no `$`, `%` or
   * backquote: the exporter's option file parser changes them), written into an option file at
   * pod start; it never appears in the manifests, environment, command lines or logs.
   *
   * @default false
   */
  readonly metrics?: boolean;

  /**
   * The image of the exporter sidecar: prom/mysqld-exporter 0.15 or later, or a mirror of it.
   *
   * @default 'prom/mysqld-exporter:v0.20.0'
   */
  readonly metricsImage?: string;

  /**
   * Also synthesize a Prometheus Operator ServiceMonitor `<name>-metrics` that scrapes the
   * exporters every 30 seconds. Needs `metrics`.
   *
   * @default false
   */
  readonly serviceMonitor?: boolean;

  /**
   * Also synthesize a Prometheus Operator PrometheusRule `<name>-alerts`: a server does not
   * answer its exporter (`mysql_up` 0), an exporter cannot be scraped, a replica's replication
   * IO or SQL thread is stopped, a replica lags more than `maxLag`. Needs `metrics`.
   *
   * @default false
   */
  readonly alertRules?: boolean;

  /**
   * Labels of the ServiceMonitor and the PrometheusRule, for the selectors of your Prometheus
   * (e.g. `{ release: 'kube-prometheus-stack' }`).
   *
   * @default - none
   */
  readonly monitoringLabels?: { [key: string]: string };

  /**
   * Synthesize a NetworkPolicy `<name>` that admits to the pods only what the cluster needs:
   * `allowedClients` to the SQL port (3306); only the cluster's own pods and its backup Jobs to
   * the physical copy stream (3307, which serves a full copy of the data without
   * authentication) and to 3306; `metricsFrom` to a port named `metrics`. It restricts ingress
   * only: egress stays open, because backups and restores reach S3 or NFS and names are resolved
   * through the cluster's DNS, whose addresses differ between clusters. It needs a network plugin
   * that enforces NetworkPolicies (without one, it has no effect).
   *
   * @default true
   */
  readonly networkPolicy?: boolean;

  /**
   * Who may connect to the SQL port (3306), besides the cluster's own pods and its backup Jobs.
   * Only with `networkPolicy`.
   *
   * @default [AllowedClients.sameNamespace()]
   */
  readonly allowedClients?: AllowedClients[];

  /**
   * Who may scrape a container port named `metrics` (a metrics exporter). Only with
   * `networkPolicy`.
   *
   * @default [AllowedClients.namespaceNamed('monitoring')]
   */
  readonly metricsFrom?: AllowedClients[];

  /**
   * How strictly the pods are kept on different nodes.
   *
   * @default PodAntiAffinity.PREFERRED
   */
  readonly podAntiAffinity?: PodAntiAffinity;

  /**
   * Also spread the pods evenly across zones (`topology.kubernetes.io/zone`, at most one pod
   * more in one zone than in another; a pod that would break that stays Pending). Use it with
   * 3 or more zones.
   *
   * @default false
   */
  readonly spreadAcrossZones?: boolean;

  /**
   * TLS with a server certificate: the servers offer TLS to clients (`ssl_cert`, `ssl_key`,
   * `ssl_ca`), replicas replicate over TLS and verify the primary's certificate against the CA
   * and its name, the replication account requires TLS, and the scripts' and backup Jobs' TCP
   * connections use TLS. The seeding stream of new replicas (port 3307) is not encrypted.
   * A renewed certificate is reloaded without a restart.
   *
   * @default - no TLS
   */
  readonly tls?: ServerTls;

  /**
   * Refuse TCP connections without TLS (`require_secure_transport`); connections over the
   * server's unix socket (the probes and sidecars) are not affected. Needs `tls`.
   *
   * @default false
   */
  readonly requireSecureTransport?: boolean;
}

/** Paths inside the pods. */
const SCRIPTS_DIR = '/etc/cdk8s-mysql/scripts';
const CONFIG_DIR = '/etc/cdk8s-mysql/config';
const CREDENTIALS_DIR = '/etc/cdk8s-mysql/credentials';
const CNF_DIR = '/etc/mysql/conf.d';
const DATA_ROOT = '/var/lib/mysql';
const TMP_DIR = '/tmp';

const MYSQL_PORT = 3306;
const SEED_PORT = 3307;
/** uid and gid of the `mysql` user of the official images. */
const MAX_SERVER_ID = 4294967295;

const SCRIPTS = [
  'lib.sh',
  'replication-lib.sh',
  'replication-init.sh',
  'replication-server.sh',
  'replication-agent.sh',
  'replication-donor.sh',
  'replication-send.sh',
  'replication-alive.sh',
  'replication-ready.sh',
];

/** Options the construct sets itself, with the way to get what the user wanted instead. */
const RESERVED_OPTIONS: Record<string, string> = {
  server_id: 'it is serverIdBase + the pod ordinal: set serverIdBase',
  report_host: 'it is each pod\'s stable DNS name',
  read_only: 'it follows each pod\'s role (the primary is writable, replicas are read-only)',
  super_read_only: 'it follows each pod\'s role (replicas turn it on at run time)',
  rpl_semi_sync_master_enabled: 'set semiSync',
  rpl_semi_sync_slave_enabled: 'set semiSync',
  rpl_semi_sync_source_enabled: 'set semiSync',
  rpl_semi_sync_replica_enabled: 'set semiSync',
  gtid_mode: 'the cluster replicates with GTIDs',
  enforce_gtid_consistency: 'the cluster replicates with GTIDs',
  gtid_strict_mode: 'the cluster replicates with GTIDs',
  log_bin: 'every pod writes a binary log so that any pod can be a donor',
  log_basename: 'the binary and relay logs have fixed names',
  relay_log: 'the binary and relay logs have fixed names',
  log_replica_updates: 'replicas log what they replicate so that they can be donors',
  log_slave_updates: 'replicas log what they replicate so that they can be donors',
  skip_replica_start: 'replication starts with the server and the agent keeps it running',
  skip_slave_start: 'replication starts with the server and the agent keeps it running',
  datadir: 'the datadir is on the pod\'s volume',
  socket: 'the probes and sidecars use the socket in the shared run directory',
  pid_file: 'it is in the shared run directory',
  port: 'the Services and probes use port 3306',
  bind_address: 'the other pods and the Services connect over the pod network',
  skip_networking: 'the other pods and the Services connect over the pod network',
  skip_grant_tables: 'the server checks every login against its accounts',
  user: 'the pods run as the images\' mysql user (uid 999)',
  ...TLS_RESERVED_OPTIONS,
};

/**
 * A MySQL or MariaDB cluster with one primary and read replicas, replicating asynchronously
 * (or semi-synchronously) with GTIDs, in one StatefulSet.
 *
 * Synthesizes:
 * - a StatefulSet `<name>`: the pod with ordinal 0 is the primary, the others are read-only
 *   replicas; each pod has its own PersistentVolumeClaim (kept when the StatefulSet is scaled
 *   down or deleted). Every container runs a script of this library (the images only carry the
 *   binaries): an init container writes the configuration (`server_id` = `serverIdBase` +
 *   ordinal) and initializes the primary or seeds a new replica with a physical copy of a donor
 *   (MariaDB: `mariadb-backup` streamed by the donor's sidecar; MySQL: the CLONE plugin), the
 *   server container runs `mysqld`/`mariadbd`, and an agent sidecar configures replication from
 *   the primary and keeps it running;
 * - a headless Service `<name>` (stable DNS `<name>-<ordinal>.<name>` for every pod, ready or
 *   not), a write Service `<name>-write` that reaches only the primary, and a read Service
 *   `<name>-read` that reaches every ready pod: replicas that replicate and lag at most
 *   `maxLag`, and the primary too (a Service selector cannot exclude one pod of a StatefulSet);
 * - ConfigMaps `<name>-config` (my.cnf) and `<name>-scripts`;
 * - a PodDisruptionBudget `<name>-pdb` (at most one pod down at a time) and, unless
 *   `networkPolicy` is false, an ingress NetworkPolicy `<name>` (see `allowedClients`);
 * - with `tls: ServerTls.certManager(…)`, a cert-manager Certificate; with `metrics`, an exporter
 *   sidecar and a Service `<name>-metrics`, and optionally a ServiceMonitor and a PrometheusRule.
 *
 * The passwords come from a Secret (see `credentials`). The primary is always ordinal 0: there is
 * no automatic failover; if the primary's pod is down, writes wait for Kubernetes to restart it.
 *
 * Backups: `addBackupSchedule()`; a new cluster starts from a backup with `restoreFrom`.
 */
export class MySqlReplicationCluster extends Construct implements IDatabaseCluster {
  /** The key of the root password in the credentials Secret. */
  public static readonly ROOT_PASSWORD_KEY = 'root-password';
  /** The key of the replication account's password in the credentials Secret. */
  public static readonly REPLICATION_PASSWORD_KEY = 'replication-password';
  /** The key of the metrics exporter's password in the credentials Secret (with `metrics`). */
  public static readonly EXPORTER_PASSWORD_KEY = EXPORTER_PASSWORD_KEY;

  /** The name of the StatefulSet and the headless Service, the prefix of the other objects' names. */
  public readonly name: string;
  /** The number of pods (primary included). */
  public readonly replicas: number;
  /** The engine and version. */
  public readonly version: EngineVersion;
  /** The image of the pods' containers. */
  public readonly image: string;
  /** The port of the server in every Service. */
  public readonly port: number;
  /** The in-cluster DNS name to connect to for writes (and reads that must see the latest write). */
  public readonly writeHost: string;
  /** The in-cluster DNS name to connect to for reads (any ready pod). */
  public readonly readHost: string;
  /** The StatefulSet (an L1 object, so that every field can be patched). */
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** The headless Service that gives every pod a stable DNS name. */
  public readonly headlessService: kplus.Service;
  /** The Service that reaches only the primary. */
  public readonly writeService: kplus.Service;
  /** The Service that reaches every ready pod. */
  public readonly readService: kplus.Service;
  /** The ConfigMap with the server configuration (server.cnf, primary.cnf, replica.cnf). */
  public readonly configMap: kplus.ConfigMap;
  /** The ConfigMap with the scripts the containers run. */
  public readonly scriptsConfigMap: kplus.ConfigMap;
  /** The Secret the passwords are read from. */
  public readonly credentials: kplus.ISecret;
  /** With `metrics`: the headless Service `<name>-metrics` of the exporters. */
  public readonly metricsService?: kplus.Service;
  /** With `serviceMonitor`: the ServiceMonitor (an ApiObject). */
  public readonly serviceMonitor?: ApiObject;
  /** With `alertRules`: the PrometheusRule (an ApiObject). */
  public readonly alertRules?: ApiObject;
  /**
   * The NetworkPolicy that restricts who reaches the pods (see `networkPolicy`); undefined with
   * `networkPolicy: false`. Its rules are derived from the containers' ports when the chart is
   * synthesized.
   */
  public readonly networkPolicy?: k8s.KubeNetworkPolicy;
  /** The PodDisruptionBudget `<name>-pdb`: drains and upgrades take down at most one pod at a time. */
  public readonly podDisruptionBudget: k8s.KubePodDisruptionBudget;
  /** The Secret with the server certificate and its CA (`ca.crt`), when the cluster has TLS. */
  public readonly tlsSecretName?: string;
  /** The cert-manager Certificate, when `tls` is `ServerTls.certManager(…)`. */
  public readonly certificate?: ApiObject;
  /** Always `ClusterTopology.REPLICATION`. */
  public readonly topology: ClusterTopology = ClusterTopology.REPLICATION;
  /**
   * The members backups are taken from, most preferred first: the replicas, highest ordinal
   * first (the primary only when there is no replica).
   */
  public readonly backupMembers: string[];

  private readonly enableXtrabackupSidecar: () => void;
  private readonly xtrabackupImage: string;
  private xtrabackupSidecar = false;

  public constructor(scope: Construct, id: string, props: MySqlReplicationClusterProps = {}) {
    super(scope, id);

    const replicas = props.replicas ?? 3;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new Error(`replicas must be a whole number of at least 1, got ${replicas}: a cluster needs its primary (1 = a primary alone, 3 = a primary and 2 replicas)`);
    }
    const name = resourceName(this, props.name);
    validateStatefulSetName('name', name, replicas);
    const version = props.version ?? EngineVersion.MYSQL_8_4;
    const image = props.image ?? version.image;
    validateImage('image', image, version.version);
    const storage = props.storage ?? Size.gibibytes(10);
    const serverIdBase = props.serverIdBase ?? 100;
    const maxBase = MAX_SERVER_ID - (replicas - 1);
    if (!Number.isInteger(serverIdBase) || serverIdBase < 1 || serverIdBase > maxBase) {
      throw new Error(`serverIdBase must be a whole number from 1 to ${maxBase}, got ${serverIdBase}: server_id = serverIdBase + ordinal must stay within 1..${MAX_SERVER_ID} for ${replicas} pods`);
    }
    const maxLag = props.maxLag ?? Duration.seconds(30);
    if (maxLag.toMilliseconds() <= 0) {
      throw new Error(`maxLag must be more than 0, got ${maxLag.toMilliseconds()} ms: a replica would never be ready; allow a lag, e.g. Duration.seconds(30)`);
    }
    const maxLagSeconds = Math.ceil(maxLag.toMilliseconds() / 1000);
    const monitoring = resolveMonitoring(props);
    const semiSync = props.semiSync ?? false;
    validateSecureTransport(props.tls, props.requireSecureTransport ?? false);
    if (semiSync && replicas < 2) {
      throw new Error(`semiSync needs at least one replica to acknowledge commits, got replicas ${replicas}: set replicas to 2 or more, or turn semiSync off`);
    }
    // guardrails: what Kubernetes or the server would reject later, or run badly (see _guardrails.ts)
    guard.checkServiceName('name', name);
    guard.checkStorage('storage', storage);
    guard.checkAccessModes('accessModes', props.accessModes ?? [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE]);
    guard.checkStorageClassName('storageClassName', props.storageClassName);
    guard.checkResources('resources', props.resources);
    // without resources, the default memory limit is 1 GiB
    guard.checkBufferPool(props.resources ? props.resources.memory?.limit : Size.gibibytes(1), props.serverOptions, 'innodbBufferPoolSize', props.innodbBufferPoolSize);
    if (props.maxConnections !== undefined) guard.checkMaxConnections(props.maxConnections, version.isMariaDb);

    this.name = name;
    this.replicas = replicas;
    this.version = version;
    this.image = image;
    this.port = MYSQL_PORT;
    const namespace = Chart.of(this).namespace;
    const dnsName = (service: string) => (namespace ? `${service}.${namespace}.svc.cluster.local` : service);
    this.writeHost = dnsName(`${name}-write`);
    this.readHost = dnsName(`${name}-read`);
    this.backupMembers = replicas > 1
      ? Array.from({ length: replicas - 1 }, (_, i) => `${name}-${replicas - 1 - i}.${name}`)
      : [`${name}-0.${name}`];
    this.xtrabackupImage = props.xtrabackupImage ?? `percona/percona-xtrabackup:${version.series}`;
    validateImage('xtrabackupImage', this.xtrabackupImage, version.series);

    const engine = version.engine;
    const mariadb = version.isMariaDb;
    const labels = recommendedLabels(engine, name, 'database');
    const selector = { 'app.kubernetes.io/name': labels['app.kubernetes.io/name'], 'app.kubernetes.io/instance': name };
    // the backup Jobs' pods share name and instance: these select the database pods only
    const memberLabels = componentSelector(labels);

    this.credentials = props.credentials ?? kplus.Secret.fromSecretName(this, 'Credentials', `${name}-credentials`);

    // TLS: the certificate's Secret (cert-manager: a Certificate for every name of the cluster)
    let tls: BoundServerTls | undefined;
    if (props.tls) {
      tls = props.tls._bind(this, {
        cluster: name,
        headlessService: name,
        clientServices: [`${name}-write`, `${name}-read`],
        pods: Array.from({ length: replicas }, (_, i) => `${name}-${i}`),
        namespace,
        labels,
      });
      this.tlsSecretName = tls.secretName;
      this.certificate = tls.certificate;
    }

    // configuration: the cluster's server.cnf (library settings, then the user's) and one file per role
    const config = serverConfig(version, semiSync, props);
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: { name: `${name}-config`, labels }, data: config });
    // restoreFrom: the restore init container's script and the backup functions init restores with
    const scripts = readScripts([
      ...SCRIPTS,
      ...(props.restoreFrom ? ['backup-lib.sh', 'restore-fetch.sh'] : []),
      ...(monitoring.enabled ? EXPORTER_SCRIPTS : []),
    ]);
    this.scriptsConfigMap = new kplus.ConfigMap(this, 'Scripts', { metadata: { name: `${name}-scripts`, labels }, data: scripts });

    // Services
    const mysqlPort: kplus.ServicePort = { name: 'mysql', port: MYSQL_PORT, targetPort: MYSQL_PORT };
    const seedPort: kplus.ServicePort = { name: 'seed', port: SEED_PORT, targetPort: SEED_PORT };
    this.headlessService = new kplus.Service(this, 'HeadlessService', {
      metadata: { name, labels },
      clusterIP: 'None',
      ports: mariadb ? [mysqlPort, seedPort] : [mysqlPort],
    });
    // replicas and new pods reach every peer by name, ready or not
    ApiObject.of(this.headlessService).addJsonPatch(JsonPatch.add('/spec/publishNotReadyAddresses', true));
    this.writeService = new kplus.Service(this, 'WriteService', { metadata: { name: `${name}-write`, labels }, ports: [mysqlPort] });
    this.readService = new kplus.Service(this, 'ReadService', { metadata: { name: `${name}-read`, labels }, ports: [mysqlPort] });
    // not `selector`: the pods of the backup Jobs carry its labels too
    for (const [key, value] of Object.entries(memberLabels)) {
      this.headlessService.selectLabel(key, value);
      this.writeService.selectLabel(key, value);
      this.readService.selectLabel(key, value);
    }
    this.writeService.selectLabel('statefulset.kubernetes.io/pod-name', `${name}-0`);

    // the pods
    const socketDir = mariadb ? '/run/mysqld' : '/var/run/mysqld';
    const env: k8s.EnvVar[] = Object.entries({
      DB_ENGINE: engine,
      DB_PORT: `${MYSQL_PORT}`,
      DB_SOCKET: `${socketDir}/mysqld.sock`,
      DB_CNF: `${CNF_DIR}/my.cnf`,
      CONFIG_DIR,
      SECRETS_DIR: CREDENTIALS_DIR,
      RUN_DIR: socketDir,
      DATA_ROOT,
      TMPDIR: TMP_DIR,
      CLUSTER_NAME: name,
      HEADLESS_SERVICE: name,
      SERVER_ID_BASE: `${serverIdBase}`,
      MAX_LAG_SECONDS: `${maxLagSeconds}`,
      REPLICAS: `${replicas}`,
      ...(mariadb ? { SEED_PORT: `${SEED_PORT}` } : {}),
      ...(monitoring.enabled ? { EXPORTER_CNF: exporterCnf(socketDir) } : {}),
      ...(tls ? { TLS_DIR } : {}),
    }).map(([envName, value]) => ({ name: envName, value }));

    const mount = (volume: string, mountPath: string, readOnly = false): k8s.VolumeMount => (
      { name: volume, mountPath, ...(readOnly ? { readOnly } : {}) }
    );
    const data = mount('data', DATA_ROOT);
    const run = mount('run', socketDir);
    const tmp = mount('tmp', TMP_DIR);
    const scriptsMount = mount('scripts', SCRIPTS_DIR, true);
    const tlsMounts = tls ? [mount('tls', TLS_DIR, true)] : [];
    const securityContext = CONTAINER_SECURITY;
    const serverResources = kubeResources(props.resources ?? {
      cpu: { request: kplus.Cpu.millis(500) },
      memory: { request: Size.gibibytes(1), limit: Size.gibibytes(1) },
    });
    const container = (
      containerName: string, script: string, volumeMounts: k8s.VolumeMount[], resources: k8s.ResourceRequirements,
    ): k8s.Container => ({
      name: containerName,
      image,
      imagePullPolicy: 'IfNotPresent',
      command: ['bash', `${SCRIPTS_DIR}/${script}`],
      env,
      securityContext,
      resources,
      volumeMounts,
    });
    const probe = (script: string, periodSeconds: number, failureThreshold: number): k8s.Probe => ({
      exec: { command: ['bash', `${SCRIPTS_DIR}/${script}`] },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
    });
    const sidecarResources = (memoryLimit: string): k8s.ResourceRequirements => ({
      requests: { cpu: k8s.Quantity.fromString('10m'), memory: k8s.Quantity.fromString('32Mi') },
      limits: { memory: k8s.Quantity.fromString(memoryLimit) },
    });

    // restoreFrom: the primary's first start fetches and checks the backup, then init restores it
    const restoreContainers: k8s.Container[] = [];
    const restoreVolumes: k8s.Volume[] = [];
    const restoreEnv: k8s.EnvVar[] = [];
    if (props.restoreFrom) {
      const backup = props.restoreFrom.backup ?? 'latest';
      checkBackupName('restoreFrom.backup', backup);
      if (!props.restoreFrom.target) {
        throw new Error('restoreFrom needs a target: pass the BackupTarget the backups were written to, e.g. restoreFrom: { target, backup: \'latest\' }');
      }
      const target = props.restoreFrom.target._bind(name);
      restoreEnv.push({ name: 'RESTORE_BACKUP', value: backup }, { name: 'RESTORE_DIR', value: `${DATA_ROOT}/restore.tmp` });
      restoreContainers.push(...target.initContainers(securityContext, sidecarResources('128Mi')), {
        name: 'restore',
        // MySQL: the xtrabackup image prepares physical copies (and fetches dumps)
        image: mariadb ? image : this.xtrabackupImage,
        imagePullPolicy: 'IfNotPresent',
        command: ['bash', `${SCRIPTS_DIR}/restore-fetch.sh`],
        env: [
          ...env,
          ...restoreEnv,
          { name: 'BACKUP', value: backup },
          ...Object.entries(target.env).map(([envName, value]) => ({ name: envName, value })),
        ],
        securityContext,
        resources: serverResources,
        volumeMounts: [data, run, tmp, scriptsMount, ...target.mounts],
      });
      restoreVolumes.push(...target.volumes);
    }
    const init: k8s.Container = {
      ...container('init', 'replication-init.sh', [
        data, run, tmp, mount('conf', CNF_DIR), mount('config', CONFIG_DIR, true), scriptsMount, mount('credentials', CREDENTIALS_DIR, true),
        ...tlsMounts,
      ], serverResources),
      env: [...env, ...restoreEnv],
    };
    const server: k8s.Container = {
      ...container('server', 'replication-server.sh', [data, run, tmp, mount('conf', CNF_DIR, true), scriptsMount, ...tlsMounts], serverResources),
      ports: [{ name: 'mysql', containerPort: MYSQL_PORT }],
      // generous (30 min: crash recovery, or a MySQL replica restarting on a fresh clone), and
      // every 2 s, so that a pod becomes ready soon after its server answers
      startupProbe: probe('replication-alive.sh', 2, 900),
      livenessProbe: probe('replication-alive.sh', 10, 6),
      readinessProbe: probe('replication-ready.sh', 5, 2),
    };
    const agent = container('agent', 'replication-agent.sh', [data, run, tmp, scriptsMount, mount('credentials', CREDENTIALS_DIR, true), ...tlsMounts], sidecarResources('128Mi'));
    const containers = [server, agent];
    if (mariadb) {
      containers.push({
        ...container('donor', 'replication-donor.sh', [data, run, tmp, scriptsMount], sidecarResources('512Mi')),
        ports: [{ name: 'seed', containerPort: SEED_PORT }],
      });
    }
    const metricsInit: k8s.Container[] = [];
    if (monitoring.enabled) {
      const exporter = exporterContainers({
        serverImage: image, exporterImage: monitoring.image, runDir: socketDir, scriptsDir: SCRIPTS_DIR, credentialsDir: CREDENTIALS_DIR, env,
      });
      metricsInit.push(exporter.init);
      containers.push(exporter.sidecar);
    }

    const accessModes = props.accessModes ?? [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE];
    this.statefulSet = new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        serviceName: name,
        replicas,
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels,
            annotations: {
              'cdk8s-mysql/config-hash': contentHash({ ...prefixKeys('config/', config), ...prefixKeys('scripts/', scripts) }),
              'kubectl.kubernetes.io/default-container': 'server',
            },
          },
          spec: {
            securityContext: POD_SECURITY,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: 60,
            ...placement(memberLabels, props.podAntiAffinity, props.spreadAcrossZones),
            initContainers: [...restoreContainers, init, ...metricsInit],
            containers,
            volumes: [
              { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'conf', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
              { name: 'config', configMap: { name: this.configMap.name } },
              { name: 'scripts', configMap: { name: this.scriptsConfigMap.name } },
              {
                name: 'credentials',
                secret: {
                  secretName: this.credentials.name,
                  defaultMode: 0o440,
                  items: [
                    MySqlReplicationCluster.ROOT_PASSWORD_KEY, MySqlReplicationCluster.REPLICATION_PASSWORD_KEY,
                    ...(monitoring.enabled ? [EXPORTER_PASSWORD_KEY] : []),
                  ].map((key) => ({ key, path: key })),
                },
              },
              ...restoreVolumes,
              ...(tls ? [tls.volume] : []),
            ],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels: selector },
          spec: {
            accessModes: accessModes.map((m) => `${m}`),
            ...(props.storageClassName ? { storageClassName: props.storageClassName } : {}),
            resources: { requests: { storage: k8s.Quantity.fromString(sizeQuantity(storage)) } },
          },
        }],
      },
    });
    this.node.defaultChild = this.statefulSet;

    // metrics: the exporters' Service, and optionally what the Prometheus Operator reads
    if (monitoring.enabled) {
      ({ metricsService: this.metricsService, serviceMonitor: this.serviceMonitor, alertRules: this.alertRules } =
        monitoringObjects(this, name, monitoring, labels, memberLabels, () => replicationAlerts(name, namespace, mariadb, maxLagSeconds)));
    }

    // drains and upgrades one pod at a time: the primary, or one replica of the read Service
    this.podDisruptionBudget = new k8s.KubePodDisruptionBudget(this, 'Pdb', {
      metadata: { name: `${name}-pdb`, labels },
      spec: { selector: { matchLabels: memberLabels }, maxUnavailable: k8s.IntOrString.fromNumber(1) },
    });
    if (props.networkPolicy ?? true) {
      this.networkPolicy = clusterNetworkPolicy(this, 'NetworkPolicy', {
        statefulSet: this.statefulSet,
        name,
        labels,
        memberLabels,
        jobLabels: componentSelector(recommendedLabels(engine, name, 'backup')),
        clients: props.allowedClients,
        metricsFrom: props.metricsFrom,
      });
    } else if (props.allowedClients !== undefined || props.metricsFrom !== undefined) {
      throw new Error('allowedClients and metricsFrom configure the NetworkPolicy, but networkPolicy is false: remove them, or turn networkPolicy on');
    }

    // MySQL physical backups: a percona-xtrabackup sidecar serves copies like the MariaDB donor
    this.enableXtrabackupSidecar = () => {
      const sidecarScripts = readScripts(['backup-mysql-donor.sh', 'backup-mysql-send.sh']);
      for (const [file, text] of Object.entries(sidecarScripts)) {
        this.scriptsConfigMap.addData(file, text);
      }
      const sidecar: k8s.Container = {
        name: 'backup',
        image: this.xtrabackupImage,
        imagePullPolicy: 'IfNotPresent',
        command: ['bash', `${SCRIPTS_DIR}/backup-mysql-donor.sh`],
        env: [...env, { name: 'SEED_PORT', value: `${SEED_PORT}` }],
        // the image runs as uid 1001; the datadir belongs to the mysql image's uid 999
        securityContext,
        resources: sidecarResources('512Mi'),
        volumeMounts: [data, run, tmp, scriptsMount, mount('credentials', CREDENTIALS_DIR, true)],
        ports: [{ name: 'seed', containerPort: SEED_PORT }],
      };
      // the L1 object renders its props again after applying patches: the patch carries props
      this.statefulSet.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/-', sidecar));
      this.statefulSet.addJsonPatch(JsonPatch.replace('/spec/template/metadata/annotations/cdk8s-mysql~1config-hash',
        contentHash({ ...prefixKeys('config/', config), ...prefixKeys('scripts/', { ...scripts, ...sidecarScripts }), sidecar: 'xtrabackup' })));
      this.headlessService.bind(SEED_PORT, { name: 'seed', targetPort: SEED_PORT });
    };
  }

  /**
   * Where the members serve physical copies (port 3307): MariaDB's donor sidecar, or for MySQL
   * a percona-xtrabackup sidecar that this call adds to every pod.
   */
  public physicalBackupStream(): PhysicalBackupStream {
    if (this.version.isMariaDb) {
      return { port: SEED_PORT, toolsImage: this.image };
    }
    // XtraBackup reads only the data files of its own release series (8.0 or 8.4)
    const tag = /:(\d+)\.(\d+)(?:[.-][^/]*)?$/.exec(this.xtrabackupImage);
    if (tag && `${tag[1]}.${tag[2]}` !== this.version.series) {
      throw new Error(
        `physical backups of MySQL ${this.version.version} need Percona XtraBackup of the ${this.version.series} series, but xtrabackupImage is ` +
        `'${this.xtrabackupImage}' (${tag[1]}.${tag[2]}): set xtrabackupImage to 'percona/percona-xtrabackup:${this.version.series}', or use method: BackupMethod.LOGICAL`,
      );
    }
    if (!this.xtrabackupSidecar) {
      this.xtrabackupSidecar = true;
      this.enableXtrabackupSidecar();
    }
    return { port: SEED_PORT, toolsImage: this.xtrabackupImage };
  }

  /**
   * Schedules backups of this cluster.
   */
  public addBackupSchedule(id: string, options: BackupScheduleOptions): BackupSchedule {
    return new BackupSchedule(this, id, { ...options, cluster: this });
  }
}

/** The ConfigMap data: server.cnf, primary.cnf and replica.cnf. */
function serverConfig(version: EngineVersion, semiSync: boolean, props: MySqlReplicationClusterProps): Record<string, string> {
  const mariadb = version.isMariaDb;
  const socketDir = mariadb ? '/run/mysqld' : '/var/run/mysqld';
  const common: Record<string, CnfValue> = {
    datadir: `${DATA_ROOT}/data`,
    socket: `${socketDir}/mysqld.sock`,
    pid_file: `${socketDir}/mysqld.pid`,
    port: MYSQL_PORT,
    skip_name_resolve: 'ON',
  };
  const replication: Record<string, CnfValue> = mariadb
    ? {
      // log_basename first: the binary and relay log names do not depend on the hostname
      log_basename: 'mariadb',
      log_bin: 'mariadb-bin',
      log_slave_updates: 'ON',
      gtid_strict_mode: 'ON',
      binlog_format: 'ROW',
      relay_log_recovery: 'ON',
      // MariaDB keeps binary logs forever by default; MySQL purges them after 30 days
      binlog_expire_logs_seconds: 7 * 24 * 3600,
    }
    : {
      mysqlx: 'OFF',
      gtid_mode: 'ON',
      enforce_gtid_consistency: 'ON',
      log_bin: 'mysql-bin',
      relay_log: 'relay-bin',
      log_replica_updates: 'ON',
      relay_log_recovery: 'ON',
      plugin_load_add: ['mysql_clone.so', ...(semiSync ? ['semisync_source.so', 'semisync_replica.so'] : [])].join(';'),
    };
  const user = userOptions(props);
  const tls = props.tls ? tlsServerOptions(props.requireSecureTransport ?? false) : {};
  if (user.plugin_load_add !== undefined && replication.plugin_load_add !== undefined) {
    user.plugin_load_add = `${replication.plugin_load_add};${user.plugin_load_add}`;
  }
  // MySQL's semi-sync variables exist only once the plugin is loaded: loose_ keeps them harmless before
  const primary: Record<string, CnfValue> = { read_only: 'OFF' };
  const replica: Record<string, CnfValue> = { read_only: 'ON' };
  if (semiSync) {
    Object.assign(primary, mariadb ? { rpl_semi_sync_master_enabled: 'ON' } : { loose_rpl_semi_sync_source_enabled: 'ON' });
    Object.assign(replica, mariadb ? { rpl_semi_sync_slave_enabled: 'ON' } : { loose_rpl_semi_sync_replica_enabled: 'ON' });
  }
  return {
    'server.cnf': renderCnf({ mysqld: { ...common, ...replication, ...tls, ...user } }),
    'primary.cnf': renderCnf({ mysqld: primary }),
    'replica.cnf': renderCnf({ mysqld: replica }),
  };
}

/** The typed and raw server options of the props, checked. */
function userOptions(props: MySqlReplicationClusterProps): Record<string, CnfValue> {
  const options: Record<string, CnfValue> = {};
  const given = new Map<string, string>();
  const add = (key: string, value: CnfValue, source: string) => {
    const normalized = guard.normalizeOption(key);
    const reason = guard.reservedReason(key, RESERVED_OPTIONS);
    if (reason !== undefined) {
      throw new Error(guard.reservedMessage(key, reason));
    }
    const earlier = given.get(normalized);
    if (earlier !== undefined) {
      throw new Error(`${source} sets ${key}, which ${earlier} sets already: give it once`);
    }
    given.set(normalized, source);
    options[key] = value;
  };
  if (props.innodbBufferPoolSize !== undefined) {
    if (props.innodbBufferPoolSize.toKibibytes() <= 0) {
      throw new Error(`innodbBufferPoolSize must be more than 0, got ${props.innodbBufferPoolSize.toKibibytes()} KiB: e.g. Size.mebibytes(512)`);
    }
    add('innodb_buffer_pool_size', cnfSize(props.innodbBufferPoolSize), 'innodbBufferPoolSize');
  }
  if (props.maxConnections !== undefined) {
    add('max_connections', props.maxConnections, 'maxConnections');
  }
  for (const [key, value] of Object.entries(props.serverOptions ?? {})) {
    add(key, value, `serverOptions.${key}`);
  }
  return options;
}

/** A Size as a Kubernetes quantity in the largest binary unit that keeps it whole. */
/** A Size as a my.cnf value (G, M or K suffix). */
function cnfSize(size: Size): string {
  return sizeQuantity(size).replace(/i$/, '');
}

function prefixKeys(prefix: string, record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}
