import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, Chart, Duration, JsonPatch, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupMethod, BackupTarget, ClusterTopology, EngineVersion, GaleraCluster, GaleraClusterProps, SstMethod } from '../src';
import { forSnapshot, Manifest, one, statefulSetPodSpec as podSpec, synth } from './util';

const SCRIPTS_DIR = path.join(__dirname, '..', 'src', 'scripts');

function cluster(props: GaleraClusterProps = {}, chart: Chart = Testing.chart()) {
  const db = new GaleraCluster(chart, 'db', { name: 'db', ...props });
  return { db, manifests: synth(chart) };
}

function container(manifests: Manifest[]): any {
  const containers = podSpec(manifests).containers;
  expect(containers).toHaveLength(1);
  return containers[0];
}

function env(manifests: Manifest[]): Record<string, string> {
  return Object.fromEntries(container(manifests).env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
}

function cnf(manifests: Manifest[]): string {
  return one(manifests, 'ConfigMap', 'db-config').data['galera.cnf'];
}

/** The value of an option in galera.cnf's [mariadbd] section (the last one wins, as in the server). */
function option(manifests: Manifest[], key: string): string | undefined {
  const section = cnf(manifests).split(/^\[sst\]$/m)[0];
  const values = [...section.matchAll(new RegExp(`^${key} = (.*)$`, 'gm'))].map((m) => m[1]);
  return values[values.length - 1];
}

describe('GaleraCluster', () => {
  describe('defaults', () => {
    test('a StatefulSet of 3 MariaDB 11.4 nodes, two Services, two ConfigMaps and a PodDisruptionBudget', () => {
      const chart = Testing.chart();
      new GaleraCluster(chart, 'db');
      expect(forSnapshot(synth(chart))).toMatchSnapshot();
    });

    test('are 3 pods of mariadb:11.4 with 10 GiB volumes, mariabackup SST, the name as cluster name', () => {
      const { db, manifests } = cluster();
      const sts = one(manifests, 'StatefulSet');
      expect(sts.spec.replicas).toBe(3);
      expect(db.replicas).toBe(3);
      expect(db.version).toBe(EngineVersion.MARIADB_11_4);
      expect(db.sstMethod).toBe(SstMethod.MARIABACKUP);
      expect(container(manifests).image).toEqual('mariadb:11.4');
      expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } });
      expect(option(manifests, 'wsrep_sst_method')).toEqual('mariabackup');
      expect(option(manifests, 'wsrep_cluster_name')).toEqual('db');
    });

    test('the name is derived from the construct path when none is given', () => {
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'orders');
      const manifests = synth(chart);
      expect(db.name).toMatch(/^test-orders-[0-9a-f]{8}$/);
      expect(one(manifests, 'StatefulSet').metadata.name).toEqual(db.name);
    });
  });

  describe('the StatefulSet', () => {
    test('starts all pods at once, so that a cluster that is entirely down can re-form', () => {
      const { manifests } = cluster();
      expect(one(manifests, 'StatefulSet').spec.podManagementPolicy).toEqual('Parallel');
    });

    test('uses the headless Service for the pods\' DNS names', () => {
      const { manifests } = cluster();
      expect(one(manifests, 'StatefulSet').spec.serviceName).toEqual('db');
    });

    test('gives each pod its own volume, mounted as the datadir', () => {
      const { manifests } = cluster({ storage: Size.gibibytes(50), storageClassName: 'fast' });
      const sts = one(manifests, 'StatefulSet');
      expect(sts.spec.volumeClaimTemplates).toHaveLength(1);
      expect(sts.spec.volumeClaimTemplates[0].metadata.name).toEqual('data');
      expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({
        accessModes: ['ReadWriteOnce'], storageClassName: 'fast', resources: { requests: { storage: '50Gi' } },
      });
      expect(container(manifests).volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/mysql' });
    });

    test('runs the images\' mysql user (999), unprivileged, with no capabilities and a read-only root filesystem', () => {
      const { manifests } = cluster();
      expect(podSpec(manifests).securityContext).toEqual({
        runAsUser: 999,
        runAsGroup: 999,
        runAsNonRoot: true,
        fsGroup: 999,
        fsGroupChangePolicy: 'OnRootMismatch',
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container(manifests).securityContext).toMatchObject({
        runAsUser: 999, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] },
      });
    });

    test('runs the start script of the library, with its settings in the environment only', () => {
      const { manifests } = cluster();
      const c = container(manifests);
      expect(c.command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/galera-start.sh']);
      expect(c.args).toBeUndefined();
      expect(env(manifests)).toEqual({
        DB_ENGINE: 'mariadb',
        DATADIR: '/var/lib/mysql',
        STATE_DIR: '/run/mysqld',
        DB_SOCKET: '/run/mysqld/mysqld.sock',
        CONFIG_FILE: '/etc/cdk8s-mysql/config/galera.cnf',
        SECRETS_DIR: '/etc/cdk8s-mysql/credentials',
        TMPDIR: '/tmp',
        PEERS: 'db-0.db db-1.db db-2.db',
        STATUS_PORT: '4569',
        SST_USER: 'sst',
        JOIN_TIMEOUT: '60',
        READY_WHEN_DONOR: 'false',
      });
    });

    test('tells each pod its own name and IP through the downward API', () => {
      const { manifests } = cluster();
      const fromField = container(manifests).env.filter((e: any) => e.valueFrom);
      expect(fromField).toEqual([
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      ]);
    });

    test('exposes the client, Galera replication, IST, SST and status ports', () => {
      const { manifests } = cluster();
      expect(container(manifests).ports).toEqual([
        { name: 'mysql', containerPort: 3306 },
        { name: 'galera', containerPort: 4567 },
        { name: 'ist', containerPort: 4568 },
        { name: 'sst', containerPort: 4444 },
        { name: 'galera-status', containerPort: 4569 },
      ]);
    });

    test('mounts the credentials Secret as files readable by the mysql group, never as environment variables', () => {
      const { manifests } = cluster();
      const volume = podSpec(manifests).volumes.find((v: any) => v.name === 'credentials');
      expect(volume.secret).toEqual({
        secretName: 'db-credentials',
        defaultMode: 0o440,
        items: [{ key: 'root-password', path: 'root-password' }, { key: 'sst-password', path: 'sst-password' }],
      });
      expect(container(manifests).volumeMounts).toContainEqual({ name: 'credentials', mountPath: '/etc/cdk8s-mysql/credentials', readOnly: true });
      expect(JSON.stringify(container(manifests).env)).not.toMatch(/secretKeyRef|password/i);
    });

    test('keeps the SST account out of the ConfigMaps, the command line and the environment', () => {
      const { manifests } = cluster();
      expect(cnf(manifests)).not.toMatch(/wsrep_sst_auth/);
      expect(JSON.stringify(container(manifests))).not.toMatch(/sst_auth/);
    });

    test('mounts the config and the scripts read-only, and writable emptyDirs for the socket and /tmp', () => {
      const { manifests } = cluster();
      expect(container(manifests).volumeMounts).toEqual(expect.arrayContaining([
        { name: 'run', mountPath: '/run/mysqld' },
        { name: 'tmp', mountPath: '/tmp' },
        { name: 'config', mountPath: '/etc/cdk8s-mysql/config', readOnly: true },
        { name: 'scripts', mountPath: '/etc/cdk8s-mysql/scripts', readOnly: true },
      ]));
      const volumes = podSpec(manifests).volumes;
      expect(volumes).toContainEqual({ name: 'config', configMap: { name: 'db-config' } });
      expect(volumes).toContainEqual({ name: 'scripts', configMap: { name: 'db-scripts' } });
    });

    test('keeps the pods on different nodes when possible, and spreads them across zones on request', () => {
      const selector = { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' };
      const onHost = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } };
      const spec = podSpec(cluster().manifests);
      expect(spec.affinity).toEqual({
        podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: onHost }] },
      });
      expect(spec.topologySpreadConstraints).toBeUndefined();
      expect(podSpec(cluster({ spreadAcrossZones: true }).manifests).topologySpreadConstraints).toEqual([{
        topologyKey: 'topology.kubernetes.io/zone',
        maxSkew: 1,
        whenUnsatisfiable: 'DoNotSchedule',
        nodeTaintsPolicy: 'Honor',
        labelSelector: { matchLabels: selector },
      }]);
    });

    test('gives the server two minutes to shut down cleanly', () => {
      const { manifests } = cluster();
      expect(podSpec(manifests).terminationGracePeriodSeconds).toBe(120);
    });

    test('rolls the pods when a script or the configuration changes', () => {
      const hash = (props: GaleraClusterProps) => one(cluster(props).manifests, 'StatefulSet').spec.template.metadata.annotations['cdk8s-mysql/config-hash'];
      expect(hash({})).toMatch(/^[0-9a-f]{16}$/);
      expect(hash({})).toEqual(hash({}));
      expect(hash({ serverOptions: { max_connections: '500' } })).not.toEqual(hash({}));
    });
  });

  describe('galera.cnf', () => {
    test('turns Galera on with the image\'s provider, ROW binary log format, InnoDB and interleaved auto-increment locks', () => {
      const { manifests } = cluster();
      expect(option(manifests, 'wsrep_on')).toEqual('ON');
      expect(option(manifests, 'wsrep_provider')).toEqual('/usr/lib/galera/libgalera_smm.so');
      expect(option(manifests, 'binlog_format')).toEqual('ROW');
      expect(option(manifests, 'default_storage_engine')).toEqual('InnoDB');
      expect(option(manifests, 'innodb_autoinc_lock_mode')).toEqual('2');
    });

    test('lists every peer by its stable DNS name', () => {
      const { manifests } = cluster({ replicas: 5 });
      expect(option(manifests, 'wsrep_cluster_address')).toEqual('gcomm://db-0.db,db-1.db,db-2.db,db-3.db,db-4.db');
      expect(env(manifests).PEERS).toEqual('db-0.db db-1.db db-2.db db-3.db db-4.db');
    });

    test('leaves the node\'s own name and address to the start script, which knows the pod', () => {
      const { manifests } = cluster();
      expect(cnf(manifests)).not.toMatch(/wsrep_node_(name|address)/);
      expect(fs.readFileSync(path.join(SCRIPTS_DIR, 'galera-start.sh'), 'utf8')).toMatch(/wsrep_node_name = \$POD_NAME/);
    });

    test('keeps the SST scripts\' logs in the container output (no syslog in the image)', () => {
      const { manifests } = cluster();
      expect(cnf(manifests)).toMatch(/^\[sst\]\nsst-syslog = -1$/m);
    });

    test('appends serverOptions after the library\'s settings', () => {
      const { manifests } = cluster({ serverOptions: { innodb_buffer_pool_size: '512M', wsrep_provider_options: 'gcache.size=1G' } });
      expect(option(manifests, 'innodb_buffer_pool_size')).toEqual('512M');
      expect(option(manifests, 'wsrep_provider_options')).toEqual('gcache.size=1G');
    });
  });

  describe('probes', () => {
    test('readiness: in a Primary Component and Synced, checked every 5 s', () => {
      const { manifests } = cluster();
      expect(container(manifests).readinessProbe).toEqual({
        exec: { command: ['bash', '/etc/cdk8s-mysql/scripts/galera-probe.sh', 'readiness'] }, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 2,
      });
      expect(env(manifests).READY_WHEN_DONOR).toEqual('false');
      expect(env(cluster({ readyWhenDonor: true }).manifests).READY_WHEN_DONOR).toEqual('true');
    });

    test('startup: one hour by default for the wait for peers, crash recovery and SST, checked every 2 s; liveness only afterwards', () => {
      const c = container(cluster().manifests);
      expect(c.startupProbe).toEqual({
        exec: { command: ['bash', '/etc/cdk8s-mysql/scripts/galera-probe.sh', 'startup'] }, periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 1800,
      });
      expect(c.livenessProbe).toEqual({
        exec: { command: ['bash', '/etc/cdk8s-mysql/scripts/galera-probe.sh', 'liveness'] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6,
      });
    });

    test('the startup budget follows startupTimeout', () => {
      const c = container(cluster({ startupTimeout: Duration.hours(6) }).manifests);
      expect(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds).toBe(6 * 3600);
    });

    test('primaryComponentTimeout bounds how long a started node may take to join a Primary Component', () => {
      expect(env(cluster({ primaryComponentTimeout: Duration.minutes(3) }).manifests).JOIN_TIMEOUT).toEqual('180');
    });
  });

  describe('Services', () => {
    test('a headless Service <name> that publishes not-ready pods, for the peers', () => {
      const { db, manifests } = cluster();
      const svc = one(manifests, 'Service', 'db');
      expect(svc.spec.clusterIP).toEqual('None');
      expect(svc.spec.publishNotReadyAddresses).toBe(true);
      expect(svc.spec.selector).toEqual({ 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' });
      expect(svc.spec.ports.map((p: any) => p.port)).toEqual([3306, 4567, 4568, 4444, 4569]);
      expect(db.headlessService.name).toEqual('db');
    });

    test('a client Service <name>-client on port 3306 that reaches the ready pods', () => {
      const { db, manifests } = cluster();
      const svc = one(manifests, 'Service', 'db-client');
      expect(svc.spec.clusterIP).toBeUndefined();
      expect(svc.spec.publishNotReadyAddresses).toBeUndefined();
      expect(svc.spec.selector).toEqual({ 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' });
      expect(svc.spec.ports).toEqual([{ name: 'mysql', port: 3306, targetPort: 3306 }]);
      expect(db.service.name).toEqual('db-client');
      expect(db.host).toEqual('db-client');
      expect(db.port).toBe(3306);
    });

    test('host is fully qualified when the chart has a namespace', () => {
      const chart = new Chart(Testing.app(), 'test', { namespace: 'shop' });
      const { db } = cluster({}, chart);
      expect(db.host).toEqual('db-client.shop.svc.cluster.local');
    });
  });

  describe('the PodDisruptionBudget', () => {
    test.each([[3, 2], [5, 3], [7, 4]])('keeps a majority of %i nodes available: %i', (replicas, minAvailable) => {
      const { db, manifests } = cluster({ replicas });
      const pdb = one(manifests, 'PodDisruptionBudget', 'db-pdb');
      expect(pdb.spec).toEqual({
        minAvailable,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' } },
      });
      expect(db.podDisruptionBudget.name).toEqual('db-pdb');
    });

    test('does not block drains of a single development node', () => {
      const { manifests } = cluster({ replicas: 1, allowSingleNode: true });
      expect(one(manifests, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
      expect(one(manifests, 'PodDisruptionBudget').spec.minAvailable).toBeUndefined();
    });
  });

  describe('props', () => {
    test('version: MariaDB 10.11 uses mariadb:10.11', () => {
      const { manifests } = cluster({ version: EngineVersion.MARIADB_10_11 });
      expect(container(manifests).image).toEqual('mariadb:10.11');
    });

    test('image: overrides the image', () => {
      const { db, manifests } = cluster({ image: 'registry.example.com/mariadb:11.4.5' });
      expect(container(manifests).image).toEqual('registry.example.com/mariadb:11.4.5');
      expect(db.image).toEqual('registry.example.com/mariadb:11.4.5');
    });

    test('resources: default requests 500m CPU and 1 GiB, a 1 GiB memory limit', () => {
      expect(container(cluster().manifests).resources).toEqual({ limits: { memory: '1Gi' }, requests: { cpu: '500m', memory: '1Gi' } });
    });

    test('resources: given ones replace the defaults', () => {
      const { manifests } = cluster({
        resources: {
          cpu: { request: kplus.Cpu.units(2), limit: kplus.Cpu.units(4) },
          memory: { request: Size.gibibytes(8), limit: Size.gibibytes(8) },
        },
      });
      expect(container(manifests).resources).toEqual({ limits: { cpu: '4', memory: '8Gi' }, requests: { cpu: '2', memory: '8Gi' } });
    });

    test('sstMethod: rsync', () => {
      const { db, manifests } = cluster({ sstMethod: SstMethod.RSYNC });
      expect(option(manifests, 'wsrep_sst_method')).toEqual('rsync');
      expect(db.sstMethod).toBe(SstMethod.RSYNC);
    });

    test('SstMethod.of finds the known methods by name', () => {
      expect(SstMethod.of('mariabackup')).toBe(SstMethod.MARIABACKUP);
      expect(SstMethod.of('rsync')).toBe(SstMethod.RSYNC);
    });

    test('clusterName: sets wsrep_cluster_name', () => {
      expect(option(cluster({ clusterName: 'orders-eu' }).manifests, 'wsrep_cluster_name')).toEqual('orders-eu');
    });

    test('credentials: a Secret of your own', () => {
      const chart = Testing.chart();
      const secret = kplus.Secret.fromSecretName(chart, 'Mine', 'galera-passwords');
      const { db, manifests } = cluster({ credentials: secret }, chart);
      expect(podSpec(manifests).volumes.find((v: any) => v.name === 'credentials').secret.secretName).toEqual('galera-passwords');
      expect(db.credentials).toBe(secret);
    });

    test('allowSingleNode: a single node for development', () => {
      const { manifests } = cluster({ replicas: 1, allowSingleNode: true });
      expect(one(manifests, 'StatefulSet').spec.replicas).toBe(1);
      expect(option(manifests, 'wsrep_cluster_address')).toEqual('gcomm://db-0.db');
    });
  });

  describe('escape hatches', () => {
    test('ApiObject.of(cluster) is the StatefulSet, so that any field can be patched', () => {
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'db', { name: 'db' });
      ApiObject.of(db).addJsonPatch(JsonPatch.add('/spec/template/spec/priorityClassName', 'databases'));
      expect(ApiObject.of(db)).toBe(db.statefulSet);
      expect(one(synth(chart), 'StatefulSet').spec.template.spec.priorityClassName).toEqual('databases');
    });

    test('the ConfigMaps are exposed', () => {
      const { db } = cluster();
      expect(db.configMap.name).toEqual('db-config');
      expect(db.scriptsConfigMap.name).toEqual('db-scripts');
    });
  });

  describe('the scripts', () => {
    test('ships every Galera script of src/scripts byte for byte, and lib.sh that they source', () => {
      const { manifests } = cluster();
      const data = one(manifests, 'ConfigMap', 'db-scripts').data;
      // galera-restore.sh only ships with restoreFrom
      const expected = fs.readdirSync(SCRIPTS_DIR).filter((f) => f === 'lib.sh' || (f.startsWith('galera-') && f !== 'galera-restore.sh')).sort();
      expect(Object.keys(data).sort()).toEqual(expected);
      for (const file of expected) {
        expect(data[file]).toEqual(fs.readFileSync(path.join(SCRIPTS_DIR, file), 'utf8'));
      }
    });
  });

  describe('backups (IDatabaseCluster)', () => {
    function claim(chart: Chart) {
      return BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups'));
    }

    test('writes go to the client Service; backups come from every node, highest ordinal first', () => {
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'db', { name: 'db', replicas: 5 });
      expect(db.writeHost).toEqual('db-client');
      expect(db.topology).toEqual(ClusterTopology.GALERA);
      expect(db.backupMembers).toEqual(['db-4.db', 'db-3.db', 'db-2.db', 'db-1.db', 'db-0.db']);
    });

    test('a cluster without a physical schedule has no backup sidecar and no stream port', () => {
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'db', { name: 'db' });
      db.addBackupSchedule('Dump', { target: claim(chart), method: BackupMethod.LOGICAL });
      const manifests = synth(chart);
      expect(podSpec(manifests).containers.map((c: any) => c.name)).toEqual(['mariadb']);
      expect(one(manifests, 'Service', 'db').spec.ports.map((p: any) => p.name)).not.toContain('backup');
      expect(one(manifests, 'CronJob', 'db-dump').spec.jobTemplate.spec.template.spec.initContainers.find((c: any) => c.name === 'backup').image).toEqual('mariadb:11.4');
    });

    test('a physical schedule adds the backup sidecar: the donor script on port 3307, as the mysql user, with explicit resources', () => {
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'db', { name: 'db' });
      const schedule = db.addBackupSchedule('Nightly', { target: claim(chart) });
      expect(schedule.method).toEqual(BackupMethod.PHYSICAL);
      expect(db.physicalBackupStream()).toEqual({ port: 3307, toolsImage: 'mariadb:11.4' });
      const manifests = synth(chart);
      const containers = podSpec(manifests).containers;
      expect(containers.map((c: any) => c.name)).toEqual(['mariadb', 'backup']);
      const sidecar = containers[1];
      expect(sidecar.image).toEqual('mariadb:11.4');
      expect(sidecar.command).toEqual(['bash', '/etc/cdk8s-mysql/scripts/backup-galera-donor.sh']);
      expect(Object.fromEntries(sidecar.env.map((e: any) => [e.name, e.value]))).toEqual({
        DB_ENGINE: 'mariadb',
        DB_SOCKET: '/run/mysqld/mysqld.sock',
        DB_CNF: '/run/mysqld/my.cnf',
        SECRETS_DIR: '/etc/cdk8s-mysql/credentials',
        TMPDIR: '/tmp',
        STREAM_PORT: '3307',
      });
      expect(sidecar.ports).toEqual([{ name: 'backup', containerPort: 3307 }]);
      expect(sidecar.securityContext).toEqual(containers[0].securityContext);
      expect(sidecar.securityContext).toMatchObject({ runAsUser: 999, runAsNonRoot: true, readOnlyRootFilesystem: true });
      expect(sidecar.resources).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '512Mi' } });
      expect(sidecar.volumeMounts).toEqual([
        { name: 'data', mountPath: '/var/lib/mysql' },
        { name: 'run', mountPath: '/run/mysqld' },
        { name: 'tmp', mountPath: '/tmp' },
        { name: 'config', mountPath: '/etc/cdk8s-mysql/config', readOnly: true },
        { name: 'scripts', mountPath: '/etc/cdk8s-mysql/scripts', readOnly: true },
        { name: 'credentials', mountPath: '/etc/cdk8s-mysql/credentials', readOnly: true },
      ]);
      expect(one(manifests, 'Service', 'db').spec.ports).toContainEqual({ name: 'backup', port: 3307, targetPort: 3307 });
      const data = one(manifests, 'ConfigMap', 'db-scripts').data;
      for (const file of ['backup-lib.sh', 'backup-galera-donor.sh', 'backup-galera-send.sh']) {
        expect(data[file]).toEqual(fs.readFileSync(path.join(SCRIPTS_DIR, file), 'utf8'));
      }
      const job = one(manifests, 'CronJob', 'db-nightly').spec.jobTemplate.spec.template.spec;
      expect(Object.fromEntries(job.initContainers[0].env.map((e: any) => [e.name, e.value]))).toMatchObject({
        TOPOLOGY: 'galera', MEMBERS: 'db-2.db db-1.db db-0.db', WRITE_HOST: 'db-client', STREAM_PORT: '3307', METHOD: 'physical',
      });
    });

    test('two physical schedules add one sidecar, and the sidecar rolls the pods', () => {
      const hash = (chart: Chart) => one(synth(chart), 'StatefulSet').spec.template.metadata.annotations['cdk8s-mysql/config-hash'];
      const plain = Testing.chart();
      new GaleraCluster(plain, 'db', { name: 'db' });
      const chart = Testing.chart();
      const db = new GaleraCluster(chart, 'db', { name: 'db' });
      db.addBackupSchedule('A', { target: claim(chart) });
      db.addBackupSchedule('B', { target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Other', 'other')) });
      expect(podSpec(synth(chart)).containers.map((c: any) => c.name)).toEqual(['mariadb', 'backup']);
      expect(hash(chart)).not.toEqual(hash(plain));
    });
  });

  describe('restoreFrom', () => {
    function restoring(backup?: string) {
      const chart = Testing.chart();
      const target = BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups'), { path: 'old' });
      return cluster({ restoreFrom: { target, ...(backup ? { backup } : {}) } }, chart);
    }

    test('fetches the backup, then builds ordinal 0\'s datadir from it, before the server starts', () => {
      const { manifests } = restoring('20250101T010100Z-physical');
      const spec = podSpec(manifests);
      expect(spec.initContainers.map((c: any) => [c.name, c.command[1]])).toEqual([
        ['restore', '/etc/cdk8s-mysql/scripts/restore-fetch.sh'],
        ['restore-datadir', '/etc/cdk8s-mysql/scripts/galera-restore.sh'],
      ]);
      const fetchEnv = Object.fromEntries(spec.initContainers[0].env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      expect(fetchEnv).toMatchObject({
        BACKUP: '20250101T010100Z-physical',
        DATA_ROOT: '/var/lib/mysql',
        RESTORE_DIR: '/var/lib/mysql/.cdk8s-mysql-restore',
        RUN_DIR: '/run/mysqld',
        TARGET_KIND: 'pvc',
        TARGET_DIR: '/var/backups/cdk8s-mysql/old',
      });
      expect(spec.initContainers[0].volumeMounts).toContainEqual({ name: 'backup-target', mountPath: '/var/backups/cdk8s-mysql' });
      // only the datadir builder reads the passwords
      expect(spec.initContainers[0].volumeMounts.map((m: any) => m.name)).not.toContain('credentials');
      expect(spec.initContainers[1].volumeMounts).toContainEqual({ name: 'credentials', mountPath: '/etc/cdk8s-mysql/credentials', readOnly: true });
      for (const c of spec.initContainers) {
        expect(c.image).toEqual('mariadb:11.4');
        expect(c.securityContext).toEqual(spec.containers[0].securityContext);
        expect(c.resources).toEqual(spec.containers[0].resources);
      }
      expect(spec.volumes).toContainEqual({ name: 'backup-target', persistentVolumeClaim: { claimName: 'backups' } });
      const data = one(manifests, 'ConfigMap', 'db-scripts').data;
      for (const file of ['backup-lib.sh', 'restore-fetch.sh', 'galera-restore.sh']) {
        expect(data[file]).toEqual(fs.readFileSync(path.join(SCRIPTS_DIR, file), 'utf8'));
      }
    });

    test('restores the latest backup by default', () => {
      const spec = podSpec(restoring().manifests);
      expect(spec.initContainers[0].env).toContainEqual({ name: 'BACKUP', value: 'latest' });
    });

    test('fails if the backup is not a backup name', () => {
      expect(() => restoring('yesterday')).toThrow("restoreFrom.backup 'yesterday' is not a backup name: give 'latest' or the name of a backup directory, e.g. '20250101T010100Z-physical'");
    });

    test('fails without a target', () => {
      expect(() => cluster({ restoreFrom: {} as any })).toThrow(/restoreFrom needs a target: pass the BackupTarget the backups were written to/);
    });
  });
});
