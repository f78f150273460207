import { Chart, Duration, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupTarget, EngineVersion, GaleraCluster, MySqlReplicationCluster, ServerTls, SstMethod } from '../src';
import { Manifest, ofKind, one, synth } from './util';

const TLS_DIR = '/etc/cdk8s-mysql/tls';

function namespaced(): Chart {
  return new Chart(Testing.app(), 'test', { namespace: 'shop' });
}

function podSpec(manifests: Manifest[]): any {
  return one(manifests, 'StatefulSet').spec.template.spec;
}

function containers(manifests: Manifest[]): any[] {
  const spec = podSpec(manifests);
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function envOf(c: any): Record<string, string> {
  return Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
}

function secret(chart: Chart): kplus.ISecret {
  return kplus.Secret.fromSecretName(chart, 'Tls', 'orders-tls');
}

describe('MySqlReplicationCluster with tls from a Secret', () => {
  const chart = Testing.chart();
  const db = new MySqlReplicationCluster(chart, 'db', {
    name: 'orders', version: EngineVersion.MARIADB_11_4, tls: ServerTls.fromSecret(secret(chart)), requireSecureTransport: true,
  });
  const manifests = synth(chart);

  test('the server options point at the mounted certificate files and require secure transport', () => {
    const cnf = one(manifests, 'ConfigMap', 'orders-config').data['server.cnf'];
    expect(cnf).toContain(`ssl_cert = ${TLS_DIR}/tls.crt`);
    expect(cnf).toContain(`ssl_key = ${TLS_DIR}/tls.key`);
    expect(cnf).toContain(`ssl_ca = ${TLS_DIR}/ca.crt`);
    expect(cnf).toContain('require_secure_transport = ON');
  });

  test('the Secret is mounted read-only, readable by the mysql group only, with exactly the three keys', () => {
    const volume = podSpec(manifests).volumes.find((v: any) => v.name === 'tls');
    expect(volume).toEqual({
      name: 'tls',
      secret: {
        secretName: 'orders-tls',
        defaultMode: 0o440,
        items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }],
      },
    });
    expect(podSpec(manifests).securityContext.fsGroup).toBe(999);
  });

  test('the init, server and agent containers mount the certificate and know where it is', () => {
    const byName = Object.fromEntries(containers(manifests).map((c: any) => [c.name, c]));
    for (const name of ['init', 'server', 'agent']) {
      expect(byName[name].volumeMounts).toContainEqual({ name: 'tls', mountPath: TLS_DIR, readOnly: true });
      expect(envOf(byName[name]).TLS_DIR).toBe(TLS_DIR);
    }
    // the donor sidecar only streams copies and never reads the key
    expect(byName.donor.volumeMounts.map((m: any) => m.name)).not.toContain('tls');
  });

  test('no Certificate is synthesized, and the cluster names its Secret', () => {
    expect(ofKind(manifests, 'Certificate')).toHaveLength(0);
    expect(db.tlsSecretName).toBe('orders-tls');
    expect(db.certificate).toBeUndefined();
  });
});

describe('MySqlReplicationCluster without tls', () => {
  test('has no TLS option, volume or variable', () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'orders', version: EngineVersion.MARIADB_11_4 });
    const manifests = synth(chart);
    expect(one(manifests, 'ConfigMap', 'orders-config').data['server.cnf']).not.toMatch(/ssl|secure_transport/);
    expect(podSpec(manifests).volumes.map((v: any) => v.name)).not.toContain('tls');
    for (const c of containers(manifests)) {
      expect(envOf(c).TLS_DIR).toBeUndefined();
    }
    expect(db.tlsSecretName).toBeUndefined();
  });
});

describe('ServerTls.certManager', () => {
  test('synthesizes a valid Certificate for every Service and pod name of a replication cluster', () => {
    const chart = namespaced();
    const db = new MySqlReplicationCluster(chart, 'db', {
      name: 'orders', tls: ServerTls.certManager({ issuerName: 'db-ca', issuerKind: 'ClusterIssuer', duration: Duration.days(30), renewBefore: Duration.days(10) }),
    });
    const manifests = synth(chart);
    const cert = one(manifests, 'Certificate', 'orders');
    expect(cert.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.metadata.namespace).toBe('shop');
    expect(cert.spec.secretName).toBe('orders-tls');
    expect(cert.spec.issuerRef).toEqual({ name: 'db-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(cert.spec.duration).toBe('720h');
    expect(cert.spec.renewBefore).toBe('240h');
    expect(cert.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
    expect(cert.spec.privateKey.rotationPolicy).toBe('Always');
    expect(cert.spec.dnsNames).toEqual([
      'orders-write', 'orders-write.shop', 'orders-write.shop.svc', 'orders-write.shop.svc.cluster.local',
      'orders-read', 'orders-read.shop', 'orders-read.shop.svc', 'orders-read.shop.svc.cluster.local',
      'orders-0.orders', 'orders-1.orders', 'orders-2.orders',
      '*.orders.shop', '*.orders.shop.svc', '*.orders.shop.svc.cluster.local',
    ]);
    // the scripts connect to <pod>.<headless>, which are listed one by one: OpenSSL never matches
    // a wildcard with a single label after it ('*.orders')
    expect(cert.spec.dnsNames).not.toContain('*.orders');
    // the Certificate and the Secret cert-manager writes carry the cluster's recommended labels
    const labels = { 'app.kubernetes.io/instance': 'orders', 'app.kubernetes.io/part-of': 'orders', 'app.kubernetes.io/component': 'tls', 'app.kubernetes.io/managed-by': 'cdk8s-mysql' };
    expect(cert.metadata.labels).toMatchObject(labels);
    expect(cert.spec.secretTemplate.labels).toMatchObject(labels);
    expect(db.tlsSecretName).toBe('orders-tls');
    expect(db.certificate).toBeDefined();
    expect(podSpec(manifests).volumes.find((v: any) => v.name === 'tls').secret.secretName).toBe('orders-tls');
  });

  test('covers a Galera cluster\'s client Service and peers, and takes extra names, a Secret name and a cluster domain', () => {
    const chart = namespaced();
    new GaleraCluster(chart, 'db', {
      name: 'inventory',
      tls: ServerTls.certManager({ issuerName: 'db-ca', secretName: 'inventory-certs', extraDnsNames: ['db.example.com'], clusterDomain: 'corp.local' }),
    });
    const cert = one(synth(chart), 'Certificate', 'inventory');
    expect(cert.spec.secretName).toBe('inventory-certs');
    expect(cert.spec.issuerRef.kind).toBe('Issuer');
    expect(cert.spec.duration).toBe('2160h');
    expect(cert.spec.renewBefore).toBeUndefined();
    expect(cert.spec.dnsNames).toEqual([
      'inventory-client', 'inventory-client.shop', 'inventory-client.shop.svc', 'inventory-client.shop.svc.corp.local',
      'inventory-0.inventory', 'inventory-1.inventory', 'inventory-2.inventory',
      '*.inventory.shop', '*.inventory.shop.svc', '*.inventory.shop.svc.corp.local',
      'db.example.com',
    ]);
  });

  test('without a namespace on the chart, covers the short names only', () => {
    const chart = Testing.chart();
    new MySqlReplicationCluster(chart, 'db', { name: 'orders', tls: ServerTls.certManager({ issuerName: 'db-ca' }) });
    expect(one(synth(chart), 'Certificate').spec.dnsNames).toEqual(['orders-write', 'orders-read', 'orders-0.orders', 'orders-1.orders', 'orders-2.orders']);
  });

  test.each([
    ['an issuer name that is not a Kubernetes name', { issuerName: 'DB CA' }, /issuerName 'DB CA' is not a valid Kubernetes name/],
    ['an unknown kind of a cert-manager issuer', { issuerName: 'db-ca', issuerKind: 'Vault' }, /issuerKind 'Vault' is not a cert-manager issuer kind/],
    ['a duration under an hour', { issuerName: 'db-ca', duration: Duration.minutes(30) }, /duration must be at least 1 hour/],
    ['a renewBefore as long as the duration', { issuerName: 'db-ca', duration: Duration.days(10), renewBefore: Duration.days(10) }, /renewBefore \(240h\) must be shorter than duration \(240h\)/],
    ['an extra name that is not a DNS name', { issuerName: 'db-ca', extraDnsNames: ['Not A Name'] }, /extraDnsNames has 'Not A Name', which is not a DNS name/],
  ])('rejects %s', (_what, options, message) => {
    const chart = Testing.chart();
    expect(() => new MySqlReplicationCluster(chart, 'db', { name: 'orders', tls: ServerTls.certManager(options) })).toThrow(message);
  });

  test('accepts another kind of an external issuer', () => {
    const chart = Testing.chart();
    new MySqlReplicationCluster(chart, 'db', {
      name: 'orders', tls: ServerTls.certManager({ issuerName: 'vault', issuerKind: 'VaultIssuer', issuerGroup: 'vault.example.com' }),
    });
    expect(one(synth(chart), 'Certificate').spec.issuerRef).toEqual({ name: 'vault', kind: 'VaultIssuer', group: 'vault.example.com' });
  });
});

describe('GaleraCluster with tls', () => {
  const chart = Testing.chart();
  new GaleraCluster(chart, 'db', {
    name: 'inventory',
    tls: ServerTls.fromSecret(kplus.Secret.fromSecretName(chart, 'Tls', 'inventory-tls')),
    requireSecureTransport: true,
    serverOptions: { wsrep_provider_options: 'gcache.size=1G' },
  });
  const manifests = synth(chart);
  const cnf: string = one(manifests, 'ConfigMap', 'inventory-config').data['galera.cnf'];

  test('encrypts group communication and IST with the certificate, before the user\'s provider options', () => {
    const lines = cnf.split('\n').filter((l) => l.startsWith('wsrep_provider_options'));
    expect(lines).toEqual([
      `wsrep_provider_options = socket.ssl_key=${TLS_DIR}/tls.key;socket.ssl_cert=${TLS_DIR}/tls.crt;socket.ssl_ca=${TLS_DIR}/ca.crt;gcache.size=1G`,
    ]);
  });

  test('encrypts mariabackup state transfers with mutual TLS verified against the CA', () => {
    const sst = cnf.slice(cnf.indexOf('[sst]'));
    expect(sst).toContain('encrypt = 4');
    expect(sst).toContain(`tkey = ${TLS_DIR}/tls.key`);
    expect(sst).toContain(`tcert = ${TLS_DIR}/tls.crt`);
    expect(sst).toContain(`tca = ${TLS_DIR}/ca.crt`);
  });

  test('offers TLS to clients and requires it', () => {
    const server = cnf.slice(cnf.indexOf('[mariadbd]'), cnf.indexOf('[sst]'));
    expect(server).toContain(`ssl_cert = ${TLS_DIR}/tls.crt`);
    expect(server).toContain('require_secure_transport = ON');
  });

  test('mounts the certificate in the container', () => {
    const c = podSpec(manifests).containers[0];
    expect(c.volumeMounts).toContainEqual({ name: 'tls', mountPath: TLS_DIR, readOnly: true });
    expect(envOf(c).TLS_DIR).toBe(TLS_DIR);
    expect(podSpec(manifests).volumes.find((v: any) => v.name === 'tls').secret.secretName).toBe('inventory-tls');
  });
});

describe('bad TLS input', () => {
  test('requireSecureTransport without tls is an error naming both properties, on both clusters', () => {
    expect(() => new MySqlReplicationCluster(Testing.chart(), 'db', { requireSecureTransport: true }))
      .toThrow(/requireSecureTransport is true but tls is not set/);
    expect(() => new GaleraCluster(Testing.chart(), 'db', { requireSecureTransport: true }))
      .toThrow(/requireSecureTransport is true but tls is not set/);
  });

  test('a Galera cluster with tls refuses rsync state transfers, which the image cannot encrypt', () => {
    const chart = Testing.chart();
    expect(() => new GaleraCluster(chart, 'db', { sstMethod: SstMethod.RSYNC, tls: ServerTls.fromSecret(secret(chart)) }))
      .toThrow(/sstMethod SstMethod.RSYNC cannot encrypt state transfers with tls: .*stunnel/);
  });

  test.each(['ssl_cert', 'ssl-key', 'ssl_ca', 'require_secure_transport'])('serverOptions.%s is managed by the construct', (option) => {
    const message = new RegExp(`serverOptions.${option} sets an option the construct manages: set (tls|requireSecureTransport); remove it from serverOptions`);
    expect(() => new MySqlReplicationCluster(Testing.chart(), 'db', { serverOptions: { [option]: 'x' } })).toThrow(message);
    expect(() => new GaleraCluster(Testing.chart(), 'db', { serverOptions: { [option]: 'x' } })).toThrow(message);
  });
});

describe('backups of a cluster with tls', () => {
  test('every Job container verifies the servers against the CA, and only the CA is mounted', () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', {
      name: 'orders', version: EngineVersion.MARIADB_11_4, tls: ServerTls.fromSecret(secret(chart)),
    });
    db.addBackupSchedule('Nightly', {
      target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups')),
      restoreDrill: {},
    });
    const manifests = synth(chart);
    const cronJobs = ofKind(manifests, 'CronJob');
    expect(cronJobs.length).toBeGreaterThanOrEqual(3);
    for (const cronJob of cronJobs) {
      const spec = cronJob.spec.jobTemplate.spec.template.spec;
      expect(spec.volumes).toContainEqual({
        name: 'tls-ca', secret: { secretName: 'orders-tls', defaultMode: 0o444, items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      });
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        expect(c.volumeMounts).toContainEqual({ name: 'tls-ca', mountPath: TLS_DIR, readOnly: true });
        expect(envOf(c).TLS_DIR).toBe(TLS_DIR);
      }
    }
  });
});
