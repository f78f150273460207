import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { checkBackupName } from './_backup';
import { CnfValue, CONTAINER_SECURITY, kubeResources, POD_SECURITY, recommendedLabels, renderCnf, resourceName, sizeQuantity, validateImage, validateStatefulSetName } from './_common';
import * as guard from './_guardrails';
import {
  EXPORTER_PASSWORD_KEY, EXPORTER_SCRIPTS, exporterCnf, exporterContainers, galeraAlerts, monitoringObjects, resolveMonitoring,
} from './_metrics';
import { clusterNetworkPolicy, componentSelector } from './_network-policy';
import { placement } from './_scheduling';
import { contentHash, readScripts } from './_scripts';
import { BoundServerTls, galeraTlsProviderOptions, galeraTlsSstOptions, TLS_DIR, TLS_RESERVED_OPTIONS, tlsServerOptions, validateSecureTransport } from './_tls';
import { AllowedClients } from './allowed-clients';
import { BackupSchedule, BackupScheduleOptions } from './backup-schedule';
import { ClusterTopology, IDatabaseCluster, PhysicalBackupStream, RestoreFromBackup } from './database-cluster';
import { EngineVersion } from './engine-version';
import { PodAntiAffinity } from './pod-anti-affinity';
import { ServerTls } from './server-tls';

/**
 * How a joining node receives a full copy of the data (State Snapshot Transfer) when it cannot
 * catch up incrementally (IST): a new or empty node, or one that was down too long.
 *
 * @see https://mariadb.com/kb/en/introduction-to-state-snapshot-transfers-ssts/
 */
export class SstMethod {
  /**
   * `mariabackup`: a hot physical backup streamed to the joiner. The donor keeps serving
   * reads and writes (it only blocks DDL briefly). Needs the SST account of the credentials
   * Secret.
   */
  public static readonly MARIABACKUP = new SstMethod('mariabackup');

  /**
   * `rsync`: copies the data files. Usually faster than `mariabackup` (no 10-second pause on the
   * donor, no prepare step), but the donor holds a global read lock for the whole copy: it does
   * not accept writes meanwhile, and is not ready unless `readyWhenDonor` is set.
   */
  public static readonly RSYNC = new SstMethod('rsync');

  /**
   * The method of this name: `mariabackup` or `rsync`.
   */
  public static of(name: string): SstMethod {
    const known = [SstMethod.MARIABACKUP, SstMethod.RSYNC].find((m) => m.name === name);
    if (!known) {
      throw new Error(
        `sstMethod '${name}' is not supported: use SstMethod.MARIABACKUP (the default; the donor keeps accepting writes) ` +
        'or SstMethod.RSYNC (faster; the donor is read-only during the copy)',
      );
    }
    return known;
  }

  /** The value of `wsrep_sst_method`. */
  public readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }
}

/**
 * Properties of a `GaleraCluster`.
 */
export interface GaleraClusterProps {
  /**
   * The name of the StatefulSet and of the headless Service, and the prefix of every other
   * object's name (`<name>-client`, `<name>-config`, `<name>-scripts`, `<name>-credentials`,
   * `<name>-pdb`) and of the pods (`<name>-0`, `<name>-1`, …). At most 52 characters, a DNS label
   * that starts with a letter (it names Services).
   *
   * @default - derived from the construct path (stable, with a short hash)
   */
  readonly name?: string;

  /**
   * The number of nodes. Galera needs a majority of the nodes to accept writes, so use an odd
   * number of at least 3 (3 survives the loss of one node, 5 of two). Change it here, not with
   * `kubectl scale`: the pods' peer list, the PodDisruptionBudget and the full-outage recovery
   * rule (which waits for every declared node) follow this number.
   *
   * @default 3
   */
  readonly replicas?: number;

  /**
   * Allow `replicas: 1`, a single node that bootstraps itself: for development only, it has no
   * redundancy.
   *
   * @default false
   */
  readonly allowSingleNode?: boolean;

  /**
   * The MariaDB version (Galera clusters need MariaDB; MySQL versions are rejected).
   *
   * @default EngineVersion.MARIADB_11_4
   */
  readonly version?: EngineVersion;

  /**
   * The container image, e.g. a mirror of the official image. It must carry the binaries of the
   * official `mariadb` image of `version` (mariadbd, mariadb-backup, socat, the Galera library at
   * `/usr/lib/galera/libgalera_smm.so`, rsync); it must name a tag other than `latest`, or a digest.
   *
   * @default - the official image of `version`, e.g. `mariadb:11.4`
   */
  readonly image?: string;

  /**
   * CPU and memory of the database container.
   *
   * @default - requests 500m CPU and 1 GiB memory; limits 1 GiB memory and no CPU limit
   */
  readonly resources?: kplus.ContainerResources;

  /**
   * The size of each node's volume (one PersistentVolumeClaim per pod). At least 1 GiB.
   *
   * @default Size.gibibytes(10)
   */
  readonly storage?: Size;

  /**
   * The StorageClass of the nodes' volumes.
   *
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;

  /**
   * Further server options for the `[mariadbd]` section of galera.cnf, by option name, e.g.
   * `{ innodb_buffer_pool_size: '512M', wsrep_provider_options: 'gcache.size=1G' }`. They come
   * after the library's settings, so they also override its defaults at your own risk; Galera's
   * mandatory settings keep their values (`binlog_format` ROW, `innodb_autoinc_lock_mode` 2,
   * `default_storage_engine` InnoDB). Options the start logic depends on (the wsrep addresses and
   * names, the SST method and account, datadir, socket, port) are set by the construct and cannot
   * be given here, nor the provider options `pc.recovery`, `pc.bootstrap`, `gmcast.listen_addr`,
   * `ist.recv_addr` and `base_port`.
   *
   * @default - none
   */
  readonly serverOptions?: { [name: string]: string };

  /**
   * How a node that cannot catch up incrementally receives a full copy of the data.
   *
   * @default SstMethod.MARIABACKUP
   */
  readonly sstMethod?: SstMethod;

  /**
   * `wsrep_cluster_name`: nodes only join a cluster of the same name.
   *
   * @default - the name
   */
  readonly clusterName?: string;

  /**
   * The Secret with the cluster's passwords, under the keys `root-password` (the `root`
   * account, also used by the probes) and `sst-password` (the `sst` account that
   * `mariabackup` state transfers log in with). Both must be non-empty. The accounts are created
   * with them when the cluster is first bootstrapped; changing the Secret later does not change
   * the accounts (change them with `ALTER USER` first, then the Secret, then roll the pods).
   *
   * @default - a Secret named `<name>-credentials` that you create, e.g. with
   * `kubectl create secret generic <name>-credentials --from-literal=root-password=… --from-literal=sst-password=…`
   */
  readonly credentials?: kplus.ISecret;

  /**
   * Also spread the pods evenly across zones (`topology.kubernetes.io/zone`, at most one pod
   * more in one zone than in another; a pod that would break that stays Pending). Use it with
   * 3 or more zones.
   *
   * @default false
   */
  readonly spreadAcrossZones?: boolean;

  /**
   * How strictly the pods are kept on different nodes.
   *
   * @default PodAntiAffinity.PREFERRED
   */
  readonly podAntiAffinity?: PodAntiAffinity;

  /**
   * Synthesize a NetworkPolicy `<name>` that admits to the pods only what the cluster needs:
   * `allowedClients` to the SQL port (3306); only the cluster's own pods to Galera's ports
   * (4567 group communication, 4568 IST, 4444 SST, which carries a full copy of the data) and
   * to the status port 4569; the cluster's own pods and its backup Jobs to a backup stream port
   * and to 3306; `metricsFrom` to a port named `metrics`. It restricts ingress only: egress stays
   * open, because backups and restores reach S3 or NFS and names are resolved through the
   * cluster's DNS, whose addresses differ between clusters. It needs a network plugin that
   * enforces NetworkPolicies (without one, it has no effect).
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
   * Keep a node ready (in the client Service) while it is a state-transfer donor. A
   * `mariabackup` donor serves current data; an `rsync` donor does not accept writes. (A node
   * that a backup desynchronized stays ready anyway while it keeps up: while no more write sets
   * wait to be applied on it than flow control allows, `gcs.fc_limit`.)
   *
   * @default false
   */
  readonly readyWhenDonor?: boolean;

  /**
   * How long a pod may take from its start to a server that answers: waiting for its peers
   * after a full outage, crash recovery and a full state transfer of all its data (size it for
   * your largest SST). The startup probe restarts a pod that takes longer; the liveness probe
   * only applies afterwards, so it never kills a node during SST or recovery. Longer than
   * `primaryComponentTimeout`.
   *
   * @default Duration.hours(1)
   */
  readonly startupTimeout?: Duration;

  /**
   * How long a node started to join (or re-form) a cluster may take to become a member of a
   * Primary Component. A node that is not a member by then has changed no data: it is stopped
   * and its pod decides again how to start (e.g. takes part in a full-outage recovery).
   *
   * @default Duration.seconds(60)
   */
  readonly primaryComponentTimeout?: Duration;

  /**
   * Adds a Prometheus mysqld_exporter sidecar (container `metrics`, port 9104 named `metrics`)
   * to every pod, and a headless Service `<name>-metrics` that reaches the exporters of all pods,
   * ready or not. The exporter logs in over the pod-local socket as `exporter@localhost`, an
   * account limited to 3 connections with PROCESS, REPLICA MONITOR and SELECT on
   * performance_schema only, which the first synced node creates (Galera replicates it). Its
   * password is the key `exporter-password` of `credentials` (no `$`, `%` or backquote: the
   * exporter's option file parser changes them), written into an option file at pod start; it
   * never appears in the manifests, environment, command lines or logs.
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
   * answer its exporter (`mysql_up` 0), an exporter cannot be scraped, a node is not Synced
   * (unless a backup desynchronized it), the cluster has fewer nodes than `replicas`. Needs
   * `metrics`.
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
   * TLS with a server certificate: client connections (`ssl_cert`, `ssl_key`, `ssl_ca`),
   * Galera group communication and IST (`socket.ssl_*`, peers verify each other's certificate
   * against the CA) and mariabackup state transfers (socat with TLS, both ends verified against
   * the CA) are encrypted. Needs `SstMethod.MARIABACKUP`: `wsrep_sst_rsync` encrypts with stunnel,
   * which the mariadb image lacks. Turning TLS on or off in a running cluster cannot be rolled
   * out pod by pod (nodes with and without TLS cannot talk): apply, then delete all pods at once.
   *
   * @default - no TLS
   */
  readonly tls?: ServerTls;

  /**
   * Refuse TCP client connections without TLS (`require_secure_transport`); connections over
   * the server's unix socket (the probes, the start logic, mariabackup) are not affected. Needs `tls`.
   *
   * @default false
   */
  readonly requireSecureTransport?: boolean;

  /**
   * Start a new cluster from a backup of a `BackupSchedule` (physical or logical). Ordinal 0
   * alone restores it, and only onto an empty volume while every peer answers and none holds
   * data: an init container fetches the backup and checks its checksum, then the copy is
   * prepared (or a new data directory is loaded with the dump), given the passwords of
   * `credentials`, and its tables must match the backup's manifest. A physical backup keeps the
   * backup's Galera position (its `grastate.dat` says uuid:seqno of the copy, safe to
   * bootstrap), so that ordinal 0 bootstraps the cluster from it; the other nodes join by SST.
   * It has no effect once the node has data (a marker file records the restore); remove it
   * once the cluster runs.
   *
   * @default - a new, empty cluster
   */
  readonly restoreFrom?: RestoreFromBackup;
}

/** Paths inside the pods (the same layout as the other clusters of this library). */
const SCRIPTS_DIR = '/etc/cdk8s-mysql/scripts';
const CONFIG_DIR = '/etc/cdk8s-mysql/config';
const CREDENTIALS_DIR = '/etc/cdk8s-mysql/credentials';
const DATA_DIR = '/var/lib/mysql';
const RUN_DIR = '/run/mysqld';
const TMP_DIR = '/tmp';

const MYSQL_PORT = 3306;
const GALERA_PORT = 4567;
const IST_PORT = 4568;
const SST_PORT = 4444;
/** Where every pod publishes its state to its peers (see galera-start.sh). */
const STATUS_PORT = 4569;
/** Where the backup sidecar serves physical copies (the port of the replication donors). */
const STREAM_PORT = 3307;
/** Where a restoring ordinal 0 fetches its backup: on its volume, removed once restored. */
const RESTORE_DIR = `${DATA_DIR}/.cdk8s-mysql-restore`;
/** uid and gid of the `mysql` user of the official images. */
const SST_USER = 'sst';
const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';

const SCRIPTS = ['lib.sh', 'galera-lib.sh', 'galera-start.sh', 'galera-status.sh', 'galera-probe.sh'];
/** The scripts of the backup sidecar, shipped once a physical backup needs it. */
const SIDECAR_SCRIPTS = ['backup-lib.sh', 'backup-galera-donor.sh', 'backup-galera-send.sh'];
/** The scripts of the restoring init containers (restoreFrom). */
const RESTORE_SCRIPTS = ['backup-lib.sh', 'restore-fetch.sh', 'galera-restore.sh'];

/** Options the construct sets itself, with the way to get what the user wanted instead. */
const RESERVED_OPTIONS: Record<string, string> = {
  wsrep_on: 'a GaleraCluster always replicates with Galera',
  wsrep_provider: 'it is the Galera library of the image',
  wsrep_cluster_address: 'it lists every pod of the StatefulSet: set replicas',
  wsrep_cluster_name: 'set clusterName',
  wsrep_node_name: 'it is each pod\'s name',
  wsrep_node_address: 'it is each pod\'s IP',
  wsrep_node_incoming_address: 'it is each pod\'s IP',
  wsrep_sst_method: 'set sstMethod',
  wsrep_sst_auth: 'it comes from the credentials Secret (key sst-password)',
  wsrep_sst_receive_address: 'it is each pod\'s IP',
  wsrep_notify_cmd: 'the start logic does not use it, and a slow command blocks the server',
  wsrep_new_cluster: 'the start logic bootstraps by itself, exactly one node and only when needed',
  datadir: 'the datadir is the pod\'s volume',
  socket: 'the probes and the start logic use the socket in the run directory',
  pid_file: 'it is in the run directory',
  port: 'the Services and the peers use port 3306',
  skip_networking: 'the peers and the Services connect over the pod network',
  bind_address: 'the peers and the Services connect over the pod network',
  user: 'the pods run as the images\' mysql user (uid 999)',
  log_error: 'the server logs to the container\'s output (kubectl logs)',
  skip_grant_tables: 'the server checks every login against its accounts',
  wsrep_recover: 'the start logic recovers the position itself; set in a file, every start would only recover and exit',
  wsrep_start_position: 'the start logic passes each node\'s recovered position',
  ...TLS_RESERVED_OPTIONS,
};

/**
 * A highly available, multi-primary MariaDB Galera cluster in one StatefulSet, that bootstraps,
 * heals and recovers from a full outage by itself (no operator, no human step).
 *
 * Synthesizes:
 * - a StatefulSet `<name>` (Parallel pod management, so that a cluster that is entirely down can
 *   re-form; pods on different nodes, see `podAntiAffinity`) whose pods each have a PersistentVolumeClaim. Each pod's
 *   container runs `galera-start.sh`, which publishes the node's state on port 4569 and decides
 *   how the node starts: join a running Primary Component (with `--wsrep-start-position` after a
 *   crash, so that it catches up by IST), let Galera re-form the last Primary Component after a
 *   crash of every node (pc.recovery), or, when every node answers and none runs a server,
 *   bootstrap from exactly one node: the one with the most advanced position (highest seqno,
 *   then safe_to_bootstrap, then lowest ordinal; ordinal 0 for a brand-new cluster);
 * - a headless Service `<name>` that publishes not-ready pods (stable DNS `<name>-<i>.<name>`
 *   for the Galera peers), and a client Service `<name>-client` that reaches the ready nodes:
 *   those in a Primary Component and Synced;
 * - ConfigMaps `<name>-config` (galera.cnf) and `<name>-scripts`;
 * - a PodDisruptionBudget `<name>-pdb` that keeps a majority of the nodes up during voluntary
 *   disruptions (drains, upgrades);
 * - unless `networkPolicy` is false, an ingress NetworkPolicy `<name>` (see `allowedClients`);
 * - with `tls: ServerTls.certManager(…)`, a cert-manager Certificate; with `metrics`, an exporter
 *   sidecar and a Service `<name>-metrics`, and optionally a ServiceMonitor and a PrometheusRule.
 *
 * The passwords come from a Secret (see `credentials`).
 *
 * Backups: `addBackupSchedule()` (a physical schedule adds a `backup` sidecar that streams a
 * desynchronized node's copy); a new cluster starts from a backup with `restoreFrom`.
 *
 * Recovery needs no human step. A node that crashed rejoins by IST. When every node is down
 * (kill -9 of all, or all pods deleted), the pods restart together: either Galera re-forms the
 * last Primary Component by itself (all of its members back, pc.recovery), or every pod publishes
 * its recovered position and the single most advanced one bootstraps while the others wait and
 * then join. A bootstrap needs an answer from every pod of the StatefulSet, because a missing pod
 * may hold the newest transactions; a pod whose volume was lost answers "no data" and receives a
 * full state transfer. A pod that cannot be scheduled at all therefore holds up a full-outage
 * recovery until it is back. Nothing is bootstrapped while any node runs in a Primary Component.
 * A node cut off from the others stops being ready and rejoins when the network heals.
 */
export class GaleraCluster extends Construct implements IDatabaseCluster {
  /** The key of the root password in the credentials Secret. */
  public static readonly ROOT_PASSWORD_KEY = 'root-password';
  /** The key of the SST account's password in the credentials Secret. */
  public static readonly SST_PASSWORD_KEY = 'sst-password';
  /** The key of the metrics exporter's password in the credentials Secret (with `metrics`). */
  public static readonly EXPORTER_PASSWORD_KEY = EXPORTER_PASSWORD_KEY;

  /** The name of the StatefulSet and the headless Service, the prefix of the other objects' names. */
  public readonly name: string;
  /** The number of nodes. */
  public readonly replicas: number;
  /** The MariaDB version. */
  public readonly version: EngineVersion;
  /** The image of the pods' container. */
  public readonly image: string;
  /** How joining nodes receive a full copy of the data. */
  public readonly sstMethod: SstMethod;
  /** The in-cluster DNS name of the client Service (every ready node accepts reads and writes). */
  public readonly host: string;
  /** The port of the server in the Services. */
  public readonly port: number;
  /** The StatefulSet (an L1 object, so that every field can be patched). */
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** The headless Service that gives every pod a stable DNS name, ready or not. */
  public readonly headlessService: kplus.Service;
  /** The client Service that reaches the ready nodes. */
  public readonly service: kplus.Service;
  /** The ConfigMap with the server configuration (galera.cnf). */
  public readonly configMap: kplus.ConfigMap;
  /** The ConfigMap with the scripts the pods run. */
  public readonly scriptsConfigMap: kplus.ConfigMap;
  /** The Secret the passwords are read from. */
  public readonly credentials: kplus.ISecret;
  /** The PodDisruptionBudget that keeps a majority of the nodes up. */
  public readonly podDisruptionBudget: k8s.KubePodDisruptionBudget;
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
  /** The Secret with the server certificate and its CA (`ca.crt`), when the cluster has TLS. */
  public readonly tlsSecretName?: string;
  /** The cert-manager Certificate, when `tls` is `ServerTls.certManager(…)`. */
  public readonly certificate?: ApiObject;
  /** Where backups are restored: the client Service (the same as `host`). */
  public readonly writeHost: string;
  /** Always `ClusterTopology.GALERA`. */
  public readonly topology: ClusterTopology = ClusterTopology.GALERA;
  /** The members backups are taken from, most preferred first: every node, highest ordinal first. */
  public readonly backupMembers: string[];

  private readonly enableBackupSidecar: () => void;
  private backupSidecar = false;

  public constructor(scope: Construct, id: string, props: GaleraClusterProps = {}) {
    super(scope, id);

    const replicas = props.replicas ?? 3;
    validateReplicas(replicas, props.allowSingleNode ?? false);
    const name = resourceName(this, props.name);
    validateStatefulSetName('name', name, replicas);
    const version = props.version ?? EngineVersion.MARIADB_11_4;
    if (!version.isMariaDb) {
      throw new Error(
        `version ${version.engine} ${version.version} cannot run a GaleraCluster: Galera clusters need MariaDB; ` +
        'use EngineVersion.MARIADB_11_4 or EngineVersion.MARIADB_10_11 (or MySqlReplicationCluster for MySQL)',
      );
    }
    const image = props.image ?? version.image;
    validateImage('image', image, version.version);
    const storage = props.storage ?? Size.gibibytes(10);
    const clusterName = props.clusterName ?? name;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(clusterName)) {
      throw new Error(`clusterName '${clusterName}' is not valid: use 1 to 64 letters, digits, '_', '.' or '-'`);
    }
    const startupSeconds = wholeSeconds('startupTimeout', props.startupTimeout ?? Duration.hours(1), 30);
    const primarySeconds = wholeSeconds('primaryComponentTimeout', props.primaryComponentTimeout ?? Duration.seconds(60), 10);
    const sstMethod = props.sstMethod ?? SstMethod.MARIABACKUP;
    // guardrails: what Kubernetes or the server would reject later, or run badly (see _guardrails.ts)
    guard.checkServiceName('name', name);
    guard.checkStorage('storage', storage);
    guard.checkStorageClassName('storageClassName', props.storageClassName);
    guard.checkResources('resources', props.resources);
    // without resources, the default memory limit is 1 GiB
    guard.checkBufferPool(props.resources ? props.resources.memory?.limit : Size.gibibytes(1), props.serverOptions);
    guard.checkGaleraServerOptions(props.serverOptions ?? {});
    guard.checkStartupOutlastsJoin(startupSeconds, primarySeconds);
    const monitoring = resolveMonitoring(props);
    validateSecureTransport(props.tls, props.requireSecureTransport ?? false);
    if (props.tls && sstMethod === SstMethod.RSYNC) {
      throw new Error(
        'sstMethod SstMethod.RSYNC cannot encrypt state transfers with tls: wsrep_sst_rsync encrypts with stunnel, which the mariadb image does not have; ' +
        'use SstMethod.MARIABACKUP (the default), whose transfers are encrypted with socat',
      );
    }

    this.name = name;
    this.replicas = replicas;
    this.version = version;
    this.image = image;
    this.sstMethod = sstMethod;
    this.port = MYSQL_PORT;
    const namespace = Chart.of(this).namespace;
    this.host = namespace ? `${name}-client.${namespace}.svc.cluster.local` : `${name}-client`;
    this.writeHost = this.host;
    this.backupMembers = Array.from({ length: replicas }, (_, i) => `${name}-${replicas - 1 - i}.${name}`);

    const labels = recommendedLabels('mariadb', name, 'database');
    const selector = { 'app.kubernetes.io/name': labels['app.kubernetes.io/name'], 'app.kubernetes.io/instance': name };
    // the backup Jobs' pods share name and instance: these select the database pods only
    const memberLabels = componentSelector(labels);

    this.credentials = props.credentials ?? kplus.Secret.fromSecretName(this, 'Credentials', `${name}-credentials`);

    // every pod's stable address, in ordinal order: the Galera peers and the start logic's peers
    const pods = Array.from({ length: replicas }, (_, i) => `${name}-${i}`);
    const peers = pods.map((pod) => `${pod}.${name}`);

    // TLS: the certificate's Secret (cert-manager: a Certificate for every name of the cluster)
    let tls: BoundServerTls | undefined;
    if (props.tls) {
      tls = props.tls._bind(this, { cluster: name, headlessService: name, clientServices: [`${name}-client`], pods, namespace, labels });
      this.tlsSecretName = tls.secretName;
      this.certificate = tls.certificate;
    }

    const config = {
      'galera.cnf': galeraCnf(clusterName, peers, sstMethod, props.serverOptions ?? {}, tls ? props.requireSecureTransport ?? false : undefined),
    };
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: { name: `${name}-config`, labels }, data: config });
    const scripts = readScripts([...SCRIPTS, ...(monitoring.enabled ? EXPORTER_SCRIPTS : []), ...(props.restoreFrom ? RESTORE_SCRIPTS : [])]);
    this.scriptsConfigMap = new kplus.ConfigMap(this, 'Scripts', { metadata: { name: `${name}-scripts`, labels }, data: scripts });

    // Services
    const port = (portName: string, number: number): kplus.ServicePort => ({ name: portName, port: number, targetPort: number });
    this.headlessService = new kplus.Service(this, 'HeadlessService', {
      metadata: { name, labels },
      clusterIP: 'None',
      ports: [
        port('mysql', MYSQL_PORT), port('galera', GALERA_PORT), port('ist', IST_PORT), port('sst', SST_PORT),
        port('galera-status', STATUS_PORT),
      ],
    });
    // peers reach each other by name before they are ready, and while the cluster is down
    ApiObject.of(this.headlessService).addJsonPatch(JsonPatch.add('/spec/publishNotReadyAddresses', true));
    this.service = new kplus.Service(this, 'Service', { metadata: { name: `${name}-client`, labels }, ports: [port('mysql', MYSQL_PORT)] });
    // not `selector`: the pods of the backup Jobs carry its labels too
    for (const [key, value] of Object.entries(memberLabels)) {
      this.headlessService.selectLabel(key, value);
      this.service.selectLabel(key, value);
    }

    // the pods
    const env: k8s.EnvVar[] = [
      ...Object.entries({
        DB_ENGINE: 'mariadb',
        DATADIR: DATA_DIR,
        STATE_DIR: RUN_DIR,
        DB_SOCKET: `${RUN_DIR}/mysqld.sock`,
        CONFIG_FILE: `${CONFIG_DIR}/galera.cnf`,
        SECRETS_DIR: CREDENTIALS_DIR,
        TMPDIR: TMP_DIR,
        PEERS: peers.join(' '),
        STATUS_PORT: `${STATUS_PORT}`,
        SST_USER,
        JOIN_TIMEOUT: `${primarySeconds}`,
        READY_WHEN_DONOR: `${props.readyWhenDonor ?? false}`,
        ...(monitoring.enabled ? { EXPORTER_CNF: exporterCnf(RUN_DIR) } : {}),
        ...(tls ? { TLS_DIR } : {}),
      }).map(([envName, value]) => ({ name: envName, value })),
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ];
    const mount = (volume: string, mountPath: string, readOnly = false): k8s.VolumeMount => (
      { name: volume, mountPath, ...(readOnly ? { readOnly } : {}) }
    );
    // what the server and the backup sidecar both mount
    const nodeMounts = [
      mount('data', DATA_DIR),
      mount('run', RUN_DIR),
      mount('tmp', TMP_DIR),
      mount('config', CONFIG_DIR, true),
      mount('scripts', SCRIPTS_DIR, true),
      mount('credentials', CREDENTIALS_DIR, true),
    ];
    const probe = (kind: string, periodSeconds: number, failureThreshold: number): k8s.Probe => ({
      exec: { command: ['bash', `${SCRIPTS_DIR}/galera-probe.sh`, kind] },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
    });
    const sidecarResources = (memoryLimit: string): k8s.ResourceRequirements => ({
      requests: { cpu: k8s.Quantity.fromString('10m'), memory: k8s.Quantity.fromString('64Mi') },
      limits: { memory: k8s.Quantity.fromString(memoryLimit) },
    });
    const container: k8s.Container = {
      name: 'mariadb',
      image,
      imagePullPolicy: 'IfNotPresent',
      command: ['bash', `${SCRIPTS_DIR}/galera-start.sh`],
      env,
      ports: [
        { name: 'mysql', containerPort: MYSQL_PORT },
        { name: 'galera', containerPort: GALERA_PORT },
        { name: 'ist', containerPort: IST_PORT },
        { name: 'sst', containerPort: SST_PORT },
        { name: 'galera-status', containerPort: STATUS_PORT },
      ],
      securityContext: CONTAINER_SECURITY,
      resources: kubeResources(props.resources ?? {
        cpu: { request: kplus.Cpu.millis(500) },
        memory: { request: Size.gibibytes(1), limit: Size.gibibytes(1) },
      }),
      volumeMounts: [
        ...nodeMounts,
        ...(tls ? [mount('tls', TLS_DIR, true)] : []),
      ],
      // the startup probe covers the wait for peers, crash recovery and SST; every 2 s, so that a
      // node that rejoined (IST) turns ready within about 2 s of answering, not up to 10 s later
      startupProbe: probe('startup', 2, Math.ceil(startupSeconds / 2)),
      livenessProbe: probe('liveness', 10, 6),
      readinessProbe: probe('readiness', 5, 2),
    };

    const exporter = monitoring.enabled
      ? exporterContainers({
        serverImage: image, exporterImage: monitoring.image, runDir: RUN_DIR, scriptsDir: SCRIPTS_DIR, credentialsDir: CREDENTIALS_DIR, env,
      })
      : undefined;

    // restoreFrom: ordinal 0's first start fetches and checks the backup, then builds its datadir
    const restoreContainers: k8s.Container[] = [];
    const restoreVolumes: k8s.Volume[] = [];
    if (props.restoreFrom) {
      if (!props.restoreFrom.target) {
        throw new Error('restoreFrom needs a target: pass the BackupTarget the backups were written to, e.g. restoreFrom: { target, backup: \'latest\' }');
      }
      const backup = props.restoreFrom.backup ?? 'latest';
      checkBackupName('restoreFrom.backup', backup);
      const target = props.restoreFrom.target._bind(name);
      const restoreEnv: k8s.EnvVar[] = [
        ...env,
        ...Object.entries({ DATA_ROOT: DATA_DIR, RESTORE_DIR, RUN_DIR, BACKUP: backup, ...target.env })
          .map(([envName, value]) => ({ name: envName, value })),
      ];
      const restoreMounts = [
        mount('data', DATA_DIR), mount('run', RUN_DIR), mount('tmp', TMP_DIR), mount('scripts', SCRIPTS_DIR, true),
      ];
      const restoreContainer = (containerName: string, script: string, mounts: k8s.VolumeMount[]): k8s.Container => ({
        name: containerName,
        image,
        imagePullPolicy: 'IfNotPresent',
        command: ['bash', `${SCRIPTS_DIR}/${script}`],
        env: restoreEnv,
        securityContext: CONTAINER_SECURITY,
        // preparing a copy and checksumming it with a throwaway server: the server's resources
        resources: container.resources,
        volumeMounts: mounts,
      });
      restoreContainers.push(
        ...target.initContainers(CONTAINER_SECURITY, sidecarResources('128Mi')),
        restoreContainer('restore', 'restore-fetch.sh', [...restoreMounts, ...target.mounts]),
        restoreContainer('restore-datadir', 'galera-restore.sh', [...restoreMounts, mount('credentials', CREDENTIALS_DIR, true)]),
      );
      restoreVolumes.push(...target.volumes);
    }


    this.statefulSet = new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        serviceName: name,
        replicas,
        // a cluster that is entirely down must start all its pods at once to re-form
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels,
            annotations: {
              'cdk8s-mysql/config-hash': contentHash({ ...prefixKeys('config/', config), ...prefixKeys('scripts/', scripts) }),
              'kubectl.kubernetes.io/default-container': 'mariadb',
            },
          },
          spec: {
            securityContext: POD_SECURITY,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: 120,
            ...placement(memberLabels, props.podAntiAffinity, props.spreadAcrossZones),
            ...(restoreContainers.length > 0 || exporter ? { initContainers: [...restoreContainers, ...(exporter ? [exporter.init] : [])] } : {}),
            containers: exporter ? [container, exporter.sidecar] : [container],
            volumes: [
              { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'tmp', emptyDir: {} },
              { name: 'config', configMap: { name: this.configMap.name } },
              { name: 'scripts', configMap: { name: this.scriptsConfigMap.name } },
              {
                name: 'credentials',
                secret: {
                  secretName: this.credentials.name,
                  defaultMode: 0o440,
                  items: [GaleraCluster.ROOT_PASSWORD_KEY, GaleraCluster.SST_PASSWORD_KEY, ...(exporter ? [EXPORTER_PASSWORD_KEY] : [])]
                    .map((key) => ({ key, path: key })),
                },
              },
              ...(tls ? [tls.volume] : []),
              ...restoreVolumes,
            ],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels: selector },
          spec: {
            accessModes: ['ReadWriteOnce'],
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
        monitoringObjects(this, name, monitoring, labels, memberLabels, () => galeraAlerts(name, namespace, replicas)));
    }

    // a voluntary disruption (drain, upgrade) may never take the majority away
    this.podDisruptionBudget = new k8s.KubePodDisruptionBudget(this, 'Pdb', {
      metadata: { name: `${name}-pdb`, labels },
      spec: {
        selector: { matchLabels: memberLabels },
        ...(replicas === 1
          // a single development node has no majority to protect: do not block drains
          ? { maxUnavailable: k8s.IntOrString.fromNumber(1) }
          : { minAvailable: k8s.IntOrString.fromNumber(Math.floor(replicas / 2) + 1) }),
      },
    });
    if (props.networkPolicy ?? true) {
      this.networkPolicy = clusterNetworkPolicy(this, 'NetworkPolicy', {
        statefulSet: this.statefulSet,
        name,
        labels,
        memberLabels,
        jobLabels: componentSelector(recommendedLabels('mariadb', name, 'backup')),
        clients: props.allowedClients,
        metricsFrom: props.metricsFrom,
      });
    } else if (props.allowedClients !== undefined || props.metricsFrom !== undefined) {
      throw new Error('allowedClients and metricsFrom configure the NetworkPolicy, but networkPolicy is false: remove them, or turn networkPolicy on');
    }

    // physical backups: a sidecar that serves a desynchronized copy of its node (added on demand)
    this.enableBackupSidecar = () => {
      const sidecarScripts = readScripts(SIDECAR_SCRIPTS);
      for (const [file, text] of Object.entries(sidecarScripts)) {
        if (scripts[file] === undefined) this.scriptsConfigMap.addData(file, text);
      }
      const sidecar: k8s.Container = {
        name: 'backup',
        image,
        imagePullPolicy: 'IfNotPresent',
        command: ['bash', `${SCRIPTS_DIR}/backup-galera-donor.sh`],
        env: Object.entries({
          DB_ENGINE: 'mariadb',
          DB_SOCKET: `${RUN_DIR}/mysqld.sock`,
          // the option file galera-start.sh writes: the datadir and InnoDB settings for mariadb-backup
          DB_CNF: `${RUN_DIR}/my.cnf`,
          SECRETS_DIR: CREDENTIALS_DIR,
          TMPDIR: TMP_DIR,
          STREAM_PORT: `${STREAM_PORT}`,
        }).map(([envName, value]) => ({ name: envName, value })),
        ports: [{ name: 'backup', containerPort: STREAM_PORT }],
        securityContext: CONTAINER_SECURITY,
        resources: sidecarResources('512Mi'),
        // the server's volumes (my.cnf includes galera.cnf from the config volume)
        volumeMounts: nodeMounts,
      };
      // the L1 object renders its props again after applying patches: the patch carries props
      this.statefulSet.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/-', sidecar));
      this.statefulSet.addJsonPatch(JsonPatch.replace('/spec/template/metadata/annotations/cdk8s-mysql~1config-hash',
        contentHash({ ...prefixKeys('config/', config), ...prefixKeys('scripts/', { ...scripts, ...sidecarScripts }) })));
      this.headlessService.bind(STREAM_PORT, { name: 'backup', targetPort: STREAM_PORT });
    };
  }

  /**
   * Where the nodes serve physical copies (port 3307): adds the `backup` sidecar, which desyncs
   * its node while it streams a `mariadb-backup` copy, to every pod.
   */
  public physicalBackupStream(): PhysicalBackupStream {
    if (!this.backupSidecar) {
      this.backupSidecar = true;
      this.enableBackupSidecar();
    }
    return { port: STREAM_PORT, toolsImage: this.image };
  }

  /**
   * Schedules backups of this cluster.
   */
  public addBackupSchedule(id: string, options: BackupScheduleOptions): BackupSchedule {
    return new BackupSchedule(this, id, { ...options, cluster: this });
  }
}

function validateReplicas(replicas: number, allowSingleNode: boolean): void {
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new Error(`replicas must be a whole number of at least 1, got ${replicas}: use 3, 5 or 7`);
  }
  if (replicas === 1 && !allowSingleNode) {
    throw new Error(
      'replicas 1 is a single node with no redundancy: use 3, 5 or 7 nodes, or set allowSingleNode: true for development',
    );
  }
  if (replicas % 2 === 0) {
    throw new Error(
      `replicas ${replicas} is even: an even number of nodes can split into two halves with no majority, ` +
      `and then no half accepts writes; use ${replicas === 2 ? 3 : `${replicas - 1} or ${replicas + 1}`} (3, 5 or 7)`,
    );
  }
}

function wholeSeconds(prop: string, duration: Duration, minimum: number): number {
  const seconds = Math.ceil(duration.toMilliseconds() / 1000);
  if (seconds < minimum) {
    throw new Error(`${prop} must be at least ${minimum} seconds, got ${duration.toMilliseconds()} ms: e.g. Duration.seconds(${minimum * 2})`);
  }
  return seconds;
}

/** galera.cnf: the library's settings, then the user's; `requireSecureTransport` is undefined without TLS. */
function galeraCnf(
  clusterName: string, peers: string[], sstMethod: SstMethod, serverOptions: { [name: string]: string }, requireSecureTransport?: boolean,
): string {
  const tls = requireSecureTransport !== undefined;
  const server: Record<string, CnfValue> = {
    // Galera replicates InnoDB row events
    binlog_format: 'ROW',
    default_storage_engine: 'InnoDB',
    innodb_autoinc_lock_mode: 2,
    skip_name_resolve: 'ON',
    wsrep_on: 'ON',
    wsrep_provider: GALERA_PROVIDER,
    wsrep_cluster_name: clusterName,
    // every peer by its stable DNS name (a node listing itself is fine)
    wsrep_cluster_address: `gcomm://${peers.join(',')}`,
    wsrep_sst_method: sstMethod.name,
    ...(tls ? { ...tlsServerOptions(requireSecureTransport), wsrep_provider_options: galeraTlsProviderOptions() } : {}),
  };
  for (const [key, value] of Object.entries(serverOptions)) {
    const reason = guard.reservedReason(key, RESERVED_OPTIONS);
    if (reason !== undefined) {
      throw new Error(guard.reservedMessage(key, reason));
    }
    // the user's provider options come after the TLS ones
    server[key] = tls && guard.normalizeOption(key) === 'wsrep_provider_options' ? `${galeraTlsProviderOptions()};${value}` : value;
  }
  return [
    '# galera.cnf of a GaleraCluster (cdk8s-mysql). galera-start.sh includes it in the server\'s',
    '# option file and adds each node\'s own settings (name, address, datadir, SST account).',
    renderCnf({
      mariadbd: server,
      // the SST scripts log to the server's output (not to a syslog that the image lacks)
      sst: { 'sst-syslog': -1, ...(tls ? galeraTlsSstOptions() : {}) },
    }),
  ].join('\n');
}

function prefixKeys(prefix: string, record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}
