import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, Chart, Duration, JsonPatch, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { EngineVersion, MySqlReplicationCluster, MySqlReplicationClusterProps } from '../src';
import { forSnapshot, Manifest, ofKind, one, statefulSetPodSpec as podSpec, synth } from './util';

const SCRIPTS_DIR = path.join(__dirname, '..', 'src', 'scripts');

function cluster(props: MySqlReplicationClusterProps = {}, chart: Chart = Testing.chart()) {
  const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', ...props });
  return { db, manifests: synth(chart) };
}

function container(manifests: Manifest[], name: string): any {
  const spec = podSpec(manifests);
  const found = [...spec.initContainers, ...spec.containers].filter((c: any) => c.name === name);
  expect(found).toHaveLength(1);
  return found[0];
}

function env(manifests: Manifest[], containerName = 'init'): Record<string, string> {
  return Object.fromEntries(container(manifests, containerName).env.map((e: any) => [e.name, e.value]));
}

function cnf(manifests: Manifest[], file = 'server.cnf'): string {
  return one(manifests, 'ConfigMap', 'db-config').data[file];
}

describe('MySqlReplicationCluster', () => {
  describe('defaults', () => {
    test('MySQL 8.4: a StatefulSet of 3, three Services, two ConfigMaps', () => {
      const chart = Testing.chart();
      new MySqlReplicationCluster(chart, 'db');
      expect(forSnapshot(synth(chart))).toMatchSnapshot();
    });

    test('MariaDB 11.4', () => {
      const chart = Testing.chart();
      new MySqlReplicationCluster(chart, 'db', { version: EngineVersion.MARIADB_11_4 });
      expect(forSnapshot(synth(chart))).toMatchSnapshot();
    });

    test('are 3 pods of mysql:8.4 with 10 GiB volumes, server ids from 100, a 30 s lag limit, no semi-sync', () => {
      const { db, manifests } = cluster();
      const sts = one(manifests, 'StatefulSet');
      expect(sts.spec.replicas).toBe(3);
      expect(db.replicas).toBe(3);
      expect(db.version).toBe(EngineVersion.MYSQL_8_4);
      expect(container(manifests, 'server').image).toEqual('mysql:8.4');
      expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } });
      expect(env(manifests)).toMatchObject({ SERVER_ID_BASE: '100', MAX_LAG_SECONDS: '30', REPLICAS: '3' });
      expect(cnf(manifests, 'primary.cnf') + cnf(manifests, 'replica.cnf')).not.toMatch(/semi_sync/);
    });

    test('the name is derived from the construct path when none is given', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'orders');
      const manifests = synth(chart);
      expect(db.name).toMatch(/^test-orders-[0-9a-f]{8}$/);
      expect(one(manifests, 'StatefulSet').metadata.name).toEqual(db.name);
    });

    test('synthesis is deterministic', () => {
      expect(cluster().manifests).toEqual(cluster().manifests);
    });
  });

  describe('the StatefulSet', () => {
    test('is named after the cluster, starts pods in order and keeps their volumes when scaled down or deleted', () => {
      const sts = one(cluster({ name: 'orders' }).manifests, 'StatefulSet', 'orders');
      expect(sts.spec).toMatchObject({
        serviceName: 'orders',
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        selector: { matchLabels: { 'app.kubernetes.io/name': 'mysql', 'app.kubernetes.io/instance': 'orders' } },
      });
    });

    test('has an init container and the server and agent containers; MariaDB adds the donor sidecar', () => {
      const names = (m: Manifest[]) => [...podSpec(m).initContainers, ...podSpec(m).containers].map((c: any) => c.name);
      expect(names(cluster().manifests)).toEqual(['init', 'server', 'agent']);
      expect(names(cluster({ version: EngineVersion.MARIADB_10_11 }).manifests)).toEqual(['init', 'server', 'agent', 'donor']);
    });

    test('every container runs one of the library\'s scripts, never the image\'s entrypoint', () => {
      const { manifests } = cluster({ version: EngineVersion.MARIADB_11_4 });
      const spec = podSpec(manifests);
      const scripts = one(manifests, 'ConfigMap', 'db-scripts').data;
      for (const c of [...spec.initContainers, ...spec.containers]) {
        expect(c.command).toEqual(['bash', expect.stringMatching(/^\/etc\/cdk8s-mysql\/scripts\/replication-[a-z]+\.sh$/)]);
        expect(c.args).toBeUndefined();
        expect(Object.keys(scripts)).toContain(path.basename(c.command[1]));
      }
    });

    test('the scripts ConfigMap holds the scripts byte for byte, mounted read-only in every container', () => {
      const { manifests } = cluster();
      const scripts = one(manifests, 'ConfigMap', 'db-scripts').data;
      const files = fs.readdirSync(SCRIPTS_DIR).filter((f) => f === 'lib.sh' || f.startsWith('replication-'));
      expect(Object.keys(scripts).sort()).toEqual(files.sort());
      for (const f of files) expect(scripts[f]).toEqual(fs.readFileSync(path.join(SCRIPTS_DIR, f), 'utf8'));
      for (const c of [...podSpec(manifests).initContainers, ...podSpec(manifests).containers]) {
        expect(c.volumeMounts).toContainEqual({ name: 'scripts', mountPath: '/etc/cdk8s-mysql/scripts', readOnly: true });
      }
    });

    test('a hash of the scripts and the configuration rolls the pods when either changes', () => {
      const hash = (props: MySqlReplicationClusterProps) => one(cluster(props).manifests, 'StatefulSet').spec.template.metadata.annotations['cdk8s-mysql/config-hash'];
      expect(hash({})).toMatch(/^[0-9a-f]{16}$/);
      expect(hash({})).toEqual(hash({}));
      expect(hash({ maxConnections: 500 })).not.toEqual(hash({}));
      expect(hash({ version: EngineVersion.MARIADB_11_4 })).not.toEqual(hash({}));
    });

    test('pods run as the images\' mysql user (999), without privileges, on a read-only root filesystem', () => {
      const { manifests } = cluster({ version: EngineVersion.MARIADB_11_4 });
      const spec = podSpec(manifests);
      expect(spec.securityContext).toEqual({
        runAsUser: 999, runAsGroup: 999, runAsNonRoot: true, fsGroup: 999, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of [...spec.initContainers, ...spec.containers]) {
        expect(c.securityContext).toEqual({
          runAsUser: 999, runAsGroup: 999, runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] },
        });
      }
    });

    test('the socket directory is a memory-backed volume shared by all containers, at the image\'s socket path', () => {
      for (const [version, dir] of [[EngineVersion.MYSQL_8_4, '/var/run/mysqld'], [EngineVersion.MARIADB_10_11, '/run/mysqld']] as const) {
        const { manifests } = cluster({ version });
        expect(podSpec(manifests).volumes).toContainEqual({ name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } });
        for (const c of [...podSpec(manifests).initContainers, ...podSpec(manifests).containers]) {
          expect(c.volumeMounts).toContainEqual({ name: 'run', mountPath: dir });
          expect(c.env).toContainEqual({ name: 'DB_SOCKET', value: `${dir}/mysqld.sock` });
        }
      }
    });

    test('the server starts on the option file that the init container writes into a shared volume', () => {
      const { manifests } = cluster();
      expect(container(manifests, 'init').volumeMounts).toContainEqual({ name: 'conf', mountPath: '/etc/mysql/conf.d' });
      expect(container(manifests, 'server').volumeMounts).toContainEqual({ name: 'conf', mountPath: '/etc/mysql/conf.d', readOnly: true });
      expect(env(manifests, 'server').DB_CNF).toEqual('/etc/mysql/conf.d/my.cnf');
      expect(fs.readFileSync(path.join(SCRIPTS_DIR, 'replication-server.sh'), 'utf8')).toMatch(/exec "\$\(db_server\)" --defaults-file="\$DB_CNF"\n/);
    });

    test('the pods are spread over nodes when possible, by default not across zones', () => {
      const spec = podSpec(cluster().manifests);
      expect(spec.affinity.podAntiAffinity).toEqual({
        preferredDuringSchedulingIgnoredDuringExecution: [{
          weight: 100,
          podAffinityTerm: {
            topologyKey: 'kubernetes.io/hostname',
            labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'mysql', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' } },
          },
        }],
      });
      expect(spec.topologySpreadConstraints).toBeUndefined();
    });
  });

  describe('probes', () => {
    test('startup tolerates a 30-minute recovery and looks every 2 s; liveness only checks that the server answers', () => {
      const server = container(cluster().manifests, 'server');
      const alive = { exec: { command: ['bash', '/etc/cdk8s-mysql/scripts/replication-alive.sh'] }, timeoutSeconds: 5 };
      expect(server.startupProbe).toEqual({ ...alive, periodSeconds: 2, failureThreshold: 900 });
      expect(server.livenessProbe).toEqual({ ...alive, periodSeconds: 10, failureThreshold: 6 });
      expect(fs.readFileSync(path.join(SCRIPTS_DIR, 'replication-alive.sh'), 'utf8')).toMatch(/ping\n$/);
    });

    test('readiness checks the role: the primary accepts writes, a replica replicates within maxLag', () => {
      const server = container(cluster().manifests, 'server');
      expect(server.readinessProbe).toEqual({
        exec: { command: ['bash', '/etc/cdk8s-mysql/scripts/replication-ready.sh'] }, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 2,
      });
    });

    test('the probes and sidecars never need the Secret in their environment: they read the client option files', () => {
      const { manifests } = cluster({ version: EngineVersion.MARIADB_11_4 });
      const spec = podSpec(manifests);
      for (const c of [...spec.initContainers, ...spec.containers]) {
        expect(c.envFrom).toBeUndefined();
        for (const e of c.env) {
          expect(e.valueFrom).toBeUndefined();
          expect(e.name).not.toMatch(/PASS/);
        }
      }
      // only the containers that create accounts or log in to peers mount the Secret
      const withSecret = [...spec.initContainers, ...spec.containers].filter((c: any) => c.volumeMounts.some((m: any) => m.name === 'credentials')).map((c: any) => c.name);
      expect(withSecret).toEqual(['init', 'agent']);
    });
  });

  describe('Services', () => {
    test('a headless Service gives every pod, ready or not, a stable DNS name', () => {
      const { db, manifests } = cluster({ version: EngineVersion.MARIADB_11_4 });
      const svc = one(manifests, 'Service', 'db');
      expect(svc.spec).toMatchObject({
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db' },
        ports: [{ name: 'mysql', port: 3306, targetPort: 3306 }, { name: 'seed', port: 3307, targetPort: 3307 }],
      });
      expect(db.headlessService.name).toEqual('db');
    });

    test('MySQL has no seed port: replicas clone over the MySQL port', () => {
      expect(one(cluster().manifests, 'Service', 'db').spec.ports).toEqual([{ name: 'mysql', port: 3306, targetPort: 3306 }]);
    });

    test('the write Service reaches only the primary, pod 0', () => {
      const svc = one(cluster().manifests, 'Service', 'db-write');
      expect(svc.spec.clusterIP).toBeUndefined();
      expect(svc.spec.selector).toEqual({
        'app.kubernetes.io/name': 'mysql', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database', 'statefulset.kubernetes.io/pod-name': 'db-0',
      });
      expect(svc.spec.ports).toEqual([{ name: 'mysql', port: 3306, targetPort: 3306 }]);
    });

    test('the read Service reaches every ready pod of the cluster, and no pod of its backup Jobs', () => {
      const svc = one(cluster().manifests, 'Service', 'db-read');
      expect(svc.spec.selector).toEqual({ 'app.kubernetes.io/name': 'mysql', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' });
      expect(svc.spec.publishNotReadyAddresses).toBeUndefined();
      expect(svc.spec.ports).toEqual([{ name: 'mysql', port: 3306, targetPort: 3306 }]);
    });

    test('writeHost, readHost and port say where to connect', () => {
      const { db } = cluster();
      expect([db.writeHost, db.readHost, db.port]).toEqual(['db-write', 'db-read', 3306]);
      const inNamespace = new MySqlReplicationCluster(new Chart(Testing.app(), 'c', { namespace: 'shop' }), 'db', { name: 'orders' });
      expect([inNamespace.writeHost, inNamespace.readHost]).toEqual(['orders-write.shop.svc.cluster.local', 'orders-read.shop.svc.cluster.local']);
    });
  });

  describe('props', () => {
    test('replicas sets the number of pods', () => {
      const { manifests } = cluster({ replicas: 5 });
      expect(one(manifests, 'StatefulSet').spec.replicas).toBe(5);
      expect(env(manifests).REPLICAS).toEqual('5');
    });

    test('replicas 1 is a primary alone', () => {
      expect(one(cluster({ replicas: 1 }).manifests, 'StatefulSet').spec.replicas).toBe(1);
    });

    test('version selects the image, the engine and its paths', () => {
      const { manifests } = cluster({ version: EngineVersion.MARIADB_10_11 });
      expect(container(manifests, 'server').image).toEqual('mariadb:10.11');
      expect(env(manifests)).toMatchObject({ DB_ENGINE: 'mariadb', SEED_PORT: '3307', RUN_DIR: '/run/mysqld' });
      expect(container(cluster({ version: EngineVersion.MYSQL_8_0 }).manifests, 'server').image).toEqual('mysql:8.0');
      expect(container(cluster({ version: EngineVersion.mysql('8.4.3') }).manifests, 'init').image).toEqual('mysql:8.4.3');
      expect(env(cluster().manifests).SEED_PORT).toBeUndefined();
    });

    test('image replaces the image of every container', () => {
      const { db, manifests } = cluster({ version: EngineVersion.MARIADB_11_4, image: 'registry.example.com/mirror/mariadb:11.4.5' });
      const spec = podSpec(manifests);
      expect(new Set([...spec.initContainers, ...spec.containers].map((c: any) => c.image))).toEqual(new Set(['registry.example.com/mirror/mariadb:11.4.5']));
      expect(db.image).toEqual('registry.example.com/mirror/mariadb:11.4.5');
    });

    test('resources apply to the server and the init container; the sidecars keep small fixed ones', () => {
      const { manifests } = cluster({
        version: EngineVersion.MARIADB_11_4,
        resources: {
          cpu: { request: kplus.Cpu.units(2), limit: kplus.Cpu.units(4) },
          memory: { request: Size.gibibytes(4), limit: Size.mebibytes(4608) },
        },
      });
      const expected = { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '4608Mi' } };
      expect(container(manifests, 'server').resources).toEqual(expected);
      expect(container(manifests, 'init').resources).toEqual(expected);
      expect(container(manifests, 'agent').resources).toEqual({ requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } });
      expect(container(manifests, 'donor').resources).toEqual({ requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '512Mi' } });
    });

    test('the default resources request 500m CPU and 1 GiB, limited to 1 GiB of memory', () => {
      expect(container(cluster().manifests, 'server').resources).toEqual({ requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } });
    });

    test('storage, storageClassName and accessModes shape each pod\'s volume claim', () => {
      const { manifests } = cluster({ storage: Size.mebibytes(1536), storageClassName: 'fast-ssd', accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE_POD] });
      const template = one(manifests, 'StatefulSet').spec.volumeClaimTemplates[0];
      expect(template.metadata).toEqual({ name: 'data', labels: { 'app.kubernetes.io/name': 'mysql', 'app.kubernetes.io/instance': 'db' } });
      expect(template.spec).toEqual({ accessModes: ['ReadWriteOncePod'], storageClassName: 'fast-ssd', resources: { requests: { storage: '1536Mi' } } });
      for (const c of [...podSpec(manifests).initContainers, ...podSpec(manifests).containers]) {
        expect(c.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/mysql' });
      }
    });

    test('maxLag is the replicas\' readiness limit, in whole seconds rounded up', () => {
      expect(env(cluster({ maxLag: Duration.minutes(2) }).manifests).MAX_LAG_SECONDS).toEqual('120');
      expect(env(cluster({ maxLag: Duration.millis(1500) }).manifests).MAX_LAG_SECONDS).toEqual('2');
    });

    test('serverIdBase is the primary\'s server_id', () => {
      expect(env(cluster({ serverIdBase: 5000 }).manifests).SERVER_ID_BASE).toEqual('5000');
    });

    test('innodbBufferPoolSize and maxConnections are written to server.cnf', () => {
      const text = cnf(cluster({ innodbBufferPoolSize: Size.mebibytes(768), maxConnections: 400 }).manifests);
      expect(text).toMatch(/^innodb_buffer_pool_size = 768M$/m);
      expect(text).toMatch(/^max_connections = 400$/m);
    });

    test('serverOptions are written after the library\'s settings', () => {
      const text = cnf(cluster({ serverOptions: { 'long_query_time': '2', 'slow-query-log': 'ON', 'skip_name_resolve': 'OFF' } }).manifests);
      expect(text).toMatch(/^long_query_time = 2\nslow-query-log = ON$/m);
      expect(text).toMatch(/^skip_name_resolve = OFF$/m);
      expect(text.indexOf('long_query_time')).toBeGreaterThan(text.indexOf('log_bin'));
    });

    test('a plugin_load_add of serverOptions is added to the clone plugin, not instead of it', () => {
      expect(cnf(cluster({ serverOptions: { plugin_load_add: 'audit_log.so' } }).manifests)).toMatch(/^plugin_load_add = mysql_clone\.so;audit_log\.so$/m);
    });

    test('the replication settings: MySQL with GTIDs, binary logs and the clone plugin', () => {
      const { manifests } = cluster();
      const text = cnf(manifests);
      for (const line of ['gtid_mode = ON', 'enforce_gtid_consistency = ON', 'log_bin = mysql-bin', 'log_replica_updates = ON', 'relay_log_recovery = ON', 'plugin_load_add = mysql_clone.so', 'skip_name_resolve = ON']) {
        expect(text).toContain(`\n${line}\n`);
      }
      expect(cnf(manifests, 'primary.cnf')).toEqual('[mysqld]\nread_only = OFF\n');
      // super_read_only is set at run time by the agent: in a file it would block initialization
      expect(cnf(manifests, 'replica.cnf')).toEqual('[mysqld]\nread_only = ON\n');
      expect(text).not.toMatch(/super_read_only/);
    });

    test('the replication settings: MariaDB with GTIDs in strict mode and fixed log names', () => {
      const text = cnf(cluster({ version: EngineVersion.MARIADB_11_4 }).manifests);
      expect(text).toMatch(/^log_basename = mariadb\nlog_bin = mariadb-bin\nlog_slave_updates = ON\ngtid_strict_mode = ON\nbinlog_format = ROW\nrelay_log_recovery = ON$/m);
      expect(text).not.toMatch(/gtid_mode|clone/);
      // binary logs do not fill the volume: kept 7 days unless serverOptions says otherwise
      expect(text).toMatch(/^binlog_expire_logs_seconds = 604800$/m);
      expect(cnf(cluster({ version: EngineVersion.MARIADB_11_4, serverOptions: { binlog_expire_logs_seconds: '86400' } }).manifests))
        .toMatch(/^binlog_expire_logs_seconds = 86400$/m);
    });

    test('semiSync loads and enables semi-synchronous replication per role (MySQL)', () => {
      const { manifests } = cluster({ semiSync: true });
      expect(cnf(manifests)).toMatch(/^plugin_load_add = mysql_clone\.so;semisync_source\.so;semisync_replica\.so$/m);
      expect(cnf(manifests, 'primary.cnf')).toMatch(/^loose_rpl_semi_sync_source_enabled = ON$/m);
      expect(cnf(manifests, 'replica.cnf')).toMatch(/^loose_rpl_semi_sync_replica_enabled = ON$/m);
    });

    test('semiSync enables the built-in semi-synchronous replication per role (MariaDB)', () => {
      const { manifests } = cluster({ semiSync: true, version: EngineVersion.MARIADB_10_11 });
      expect(cnf(manifests, 'primary.cnf')).toMatch(/^rpl_semi_sync_master_enabled = ON$/m);
      expect(cnf(manifests, 'replica.cnf')).toMatch(/^rpl_semi_sync_slave_enabled = ON$/m);
      expect(cnf(manifests)).not.toMatch(/plugin_load_add/);
    });

    test('credentials default to a Secret <name>-credentials that the user creates', () => {
      const { db, manifests } = cluster({ name: 'orders' });
      expect(db.credentials.name).toEqual('orders-credentials');
      expect(ofKind(manifests, 'Secret')).toEqual([]);
      expect(podSpec(manifests).volumes).toContainEqual({
        name: 'credentials',
        secret: { secretName: 'orders-credentials', defaultMode: 0o440, items: [{ key: 'root-password', path: 'root-password' }, { key: 'replication-password', path: 'replication-password' }] },
      });
      expect([MySqlReplicationCluster.ROOT_PASSWORD_KEY, MySqlReplicationCluster.REPLICATION_PASSWORD_KEY]).toEqual(['root-password', 'replication-password']);
    });

    test('credentials can be any Secret, e.g. one managed elsewhere', () => {
      const chart = Testing.chart();
      const secret = kplus.Secret.fromSecretName(chart, 'Vault', 'db-passwords-from-vault');
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', credentials: secret });
      const manifests = synth(chart);
      expect(db.credentials).toBe(secret);
      expect(podSpec(manifests).volumes.find((v: any) => v.name === 'credentials').secret.secretName).toEqual('db-passwords-from-vault');
    });
  });

  describe('escape hatches', () => {
    test('expose every object for patching', () => {
      const { db } = cluster();
      expect(ApiObject.of(db)).toBe(db.statefulSet);
      expect([db.headlessService.name, db.writeService.name, db.readService.name]).toEqual(['db', 'db-write', 'db-read']);
      expect([db.configMap.name, db.scriptsConfigMap.name]).toEqual(['db-config', 'db-scripts']);
    });

    test('a JSON patch on the StatefulSet reaches the output', () => {
      const chart = Testing.chart();
      const db = new MySqlReplicationCluster(chart, 'db', { name: 'db' });
      db.statefulSet.addJsonPatch(JsonPatch.add('/spec/template/spec/priorityClassName', 'database'));
      expect(podSpec(synth(chart)).priorityClassName).toEqual('database');
    });
  });
});
