import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { CnfValue, CONTAINER_SECURITY, kubeResources, POD_SECURITY, recommendedLabels, renderCnf, resourceName, sizeQuantity, validateImage, validateStatefulSetName } from './_common';
import { contentHash, readScripts } from './_scripts';
import { EngineVersion } from './engine-version';

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
   * `<name>-pdb`) and of the pods (`<name>-0`, `<name>-1`, …). At most 52 characters, a DNS label.
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
   * `/usr/lib/galera/libgalera_smm.so`, rsync); it must name a tag or a digest.
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
   * The size of each node's volume (one PersistentVolumeClaim per pod).
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
   * after the library's settings, so they also override its defaults (`binlog_format`,
   * `innodb_autoinc_lock_mode`, …) at your own risk. Options the start logic depends on (the
   * wsrep addresses and names, the SST method and account, datadir, socket, port) are set by
   * the construct and cannot be given here, nor `pc.recovery`/`pc.bootstrap`.
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
   * Also spread the pods evenly across zones (`topology.kubernetes.io/zone`), not only across
   * nodes. Use it with 3 or more zones.
   *
   * @default false
   */
  readonly spreadAcrossZones?: boolean;

  /**
   * Keep a node ready (in the client Service) while it is a state-transfer donor or desynced.
   * A `mariabackup` donor serves current data; an `rsync` donor does not accept writes.
   *
   * @default false
   */
  readonly readyWhenDonor?: boolean;

  /**
   * How long a pod may take from its start to a server that answers: waiting for its peers
   * after a full outage, crash recovery and a full state transfer of all its data (size it for
   * your largest SST). The startup probe restarts a pod that takes longer; the liveness probe
   * only applies afterwards, so it never kills a node during SST or recovery.
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
/** uid and gid of the `mysql` user of the official images. */
const SST_USER = 'sst';
const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';

const SCRIPTS = ['lib.sh', 'galera-lib.sh', 'galera-start.sh', 'galera-status.sh', 'galera-probe.sh'];

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
};

/**
 * A highly available, multi-primary MariaDB Galera cluster in one StatefulSet, that bootstraps,
 * heals and recovers from a full outage by itself (no operator, no human step).
 *
 * Synthesizes:
 * - a StatefulSet `<name>` (Parallel pod management, so that a cluster that is entirely down can
 *   re-form; pods spread across nodes) whose pods each have a PersistentVolumeClaim. Each pod's
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
 *   disruptions (drains, upgrades).
 *
 * The passwords come from a Secret (see `credentials`).
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
export class GaleraCluster extends Construct {
  /** The key of the root password in the credentials Secret. */
  public static readonly ROOT_PASSWORD_KEY = 'root-password';
  /** The key of the SST account's password in the credentials Secret. */
  public static readonly SST_PASSWORD_KEY = 'sst-password';

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
    validateImage('image', image);
    const storage = props.storage ?? Size.gibibytes(10);
    if (storage.toKibibytes() <= 0) {
      throw new Error(`storage must be more than 0, got ${storage.toKibibytes()} KiB: give each node's volume a size, e.g. Size.gibibytes(10)`);
    }
    const clusterName = props.clusterName ?? name;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(clusterName)) {
      throw new Error(`clusterName '${clusterName}' is not valid: use 1 to 64 letters, digits, '_', '.' or '-'`);
    }
    const startupSeconds = wholeSeconds('startupTimeout', props.startupTimeout ?? Duration.hours(1), 30);
    const primarySeconds = wholeSeconds('primaryComponentTimeout', props.primaryComponentTimeout ?? Duration.seconds(60), 10);
    const sstMethod = props.sstMethod ?? SstMethod.MARIABACKUP;

    this.name = name;
    this.replicas = replicas;
    this.version = version;
    this.image = image;
    this.sstMethod = sstMethod;
    this.port = MYSQL_PORT;
    const namespace = Chart.of(this).namespace;
    this.host = namespace ? `${name}-client.${namespace}.svc.cluster.local` : `${name}-client`;

    const labels = recommendedLabels('mariadb', name, 'database');
    const selector = { 'app.kubernetes.io/name': labels['app.kubernetes.io/name'], 'app.kubernetes.io/instance': name };

    this.credentials = props.credentials ?? kplus.Secret.fromSecretName(this, 'Credentials', `${name}-credentials`);

    // every pod's stable address, in ordinal order: the Galera peers and the start logic's peers
    const peers = Array.from({ length: replicas }, (_, i) => `${name}-${i}.${name}`);
    const config = { 'galera.cnf': galeraCnf(clusterName, peers, sstMethod, props.serverOptions ?? {}) };
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: { name: `${name}-config`, labels }, data: config });
    const scripts = readScripts(SCRIPTS);
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
    for (const [key, value] of Object.entries(selector)) {
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
      }).map(([envName, value]) => ({ name: envName, value })),
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ];
    const mount = (volume: string, mountPath: string, readOnly = false): k8s.VolumeMount => (
      { name: volume, mountPath, ...(readOnly ? { readOnly } : {}) }
    );
    const probe = (kind: string, periodSeconds: number, failureThreshold: number): k8s.Probe => ({
      exec: { command: ['bash', `${SCRIPTS_DIR}/galera-probe.sh`, kind] },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
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
        mount('data', DATA_DIR),
        mount('run', RUN_DIR),
        mount('tmp', TMP_DIR),
        mount('config', CONFIG_DIR, true),
        mount('scripts', SCRIPTS_DIR, true),
        mount('credentials', CREDENTIALS_DIR, true),
      ],
      // the startup probe covers the wait for peers, crash recovery and SST; every 2 s, so that a
      // node that rejoined (IST) turns ready within about 2 s of answering, not up to 10 s later
      startupProbe: probe('startup', 2, Math.ceil(startupSeconds / 2)),
      livenessProbe: probe('liveness', 10, 6),
      readinessProbe: probe('readiness', 5, 2),
    };

    const spread = (topologyKey: string): k8s.TopologySpreadConstraint => ({
      topologyKey,
      maxSkew: 1,
      whenUnsatisfiable: 'DoNotSchedule',
      nodeTaintsPolicy: 'Honor',
      labelSelector: { matchLabels: selector },
    });

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
            topologySpreadConstraints: [
              spread('kubernetes.io/hostname'),
              ...(props.spreadAcrossZones ? [spread('topology.kubernetes.io/zone')] : []),
            ],
            containers: [container],
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
                  items: [GaleraCluster.ROOT_PASSWORD_KEY, GaleraCluster.SST_PASSWORD_KEY].map((key) => ({ key, path: key })),
                },
              },
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

    // a voluntary disruption (drain, upgrade) may never take the majority away
    this.podDisruptionBudget = new k8s.KubePodDisruptionBudget(this, 'Pdb', {
      metadata: { name: `${name}-pdb`, labels },
      spec: {
        selector: { matchLabels: selector },
        ...(replicas === 1
          // a single development node has no majority to protect: do not block drains
          ? { maxUnavailable: k8s.IntOrString.fromNumber(1) }
          : { minAvailable: k8s.IntOrString.fromNumber(Math.floor(replicas / 2) + 1) }),
      },
    });
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
      `and then no half accepts writes; use ${replicas - 1} or ${replicas + 1} (3, 5 or 7)`,
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

/** galera.cnf: the library's settings, then the user's. */
function galeraCnf(clusterName: string, peers: string[], sstMethod: SstMethod, serverOptions: { [name: string]: string }): string {
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
  };
  for (const [key, value] of Object.entries(serverOptions)) {
    const normalized = key.toLowerCase().replace(/-/g, '_').replace(/^loose_/, '');
    const reason = RESERVED_OPTIONS[normalized];
    if (reason !== undefined) {
      throw new Error(`serverOptions sets ${key}, which the construct manages: ${reason}`);
    }
    if (normalized === 'wsrep_provider_options' && /(^|;)\s*pc\.(recovery|bootstrap)\s*=/.test(value)) {
      throw new Error(`serverOptions.${key} sets pc.recovery or pc.bootstrap, which the start logic depends on: remove them`);
    }
    server[key] = value;
  }
  return [
    '# galera.cnf of a GaleraCluster (cdk8s-mysql). galera-start.sh includes it in the server\'s',
    '# option file and adds each node\'s own settings (name, address, datadir, SST account).',
    renderCnf({
      mariadbd: server,
      // the SST scripts log to the server's output (not to a syslog that the image lacks)
      sst: { 'sst-syslog': -1 },
    }),
  ].join('\n');
}

function prefixKeys(prefix: string, record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}
