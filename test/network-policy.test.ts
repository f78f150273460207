import { ApiObject, Chart, JsonPatch, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Cluster, Destination, evaluate, NetworkPolicy, selects, Source } from './network-policy-evaluator';
import { Manifest, ofKind, one, synth } from './util';
import {
  AllowedClients, BackupMethod, BackupTarget, EngineVersion, GaleraCluster, GaleraClusterProps, MySqlReplicationCluster,
  MySqlReplicationClusterProps, PodAntiAffinity,
} from '../src';

describe('the NetworkPolicy evaluator (Kubernetes semantics)', () => {
  const web = { namespace: 'shop', labels: { app: 'web' } };
  const db: Destination = { namespace: 'shop', labels: { app: 'db' }, ports: [{ name: 'mysql', containerPort: 3306 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] };
  const policy = (spec: Partial<NetworkPolicy['spec']>, namespace = 'shop', name = 'p'): NetworkPolicy =>
    ({ metadata: { name, namespace }, spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'], ...spec } });
  const allowed = (policies: NetworkPolicy[], source: Source, port = 3306, extra: Partial<Cluster> = {}, protocol = 'TCP') =>
    evaluate({ policies, ...extra }, source, db, port, protocol).allowed;

  test('a pod that no policy selects accepts everything', () => {
    expect(allowed([], web)).toBe(true);
    expect(allowed([policy({ podSelector: { matchLabels: { app: 'other' } }, ingress: [] })], web)).toBe(true);
    // a policy of another namespace never selects the pod
    expect(allowed([policy({ ingress: [] }, 'elsewhere')], web)).toBe(true);
  });

  test('a policy with no ingress rule isolates the pods it selects and admits nothing', () => {
    expect(allowed([policy({ ingress: [] })], web)).toBe(false);
    expect(allowed([policy({})], { ip: '192.0.2.1' })).toBe(false);
  });

  test('an Egress-only policy does not isolate for ingress; without policyTypes a policy is always of type Ingress', () => {
    expect(allowed([policy({ policyTypes: ['Egress'], egress: [] })], web)).toBe(true);
    expect(allowed([policy({ policyTypes: undefined, egress: [] })], web)).toBe(false);
  });

  test('a rule without from admits every source, one without ports every port', () => {
    expect(allowed([policy({ ingress: [{ ports: [{ port: 3306 }] }] })], { ip: '192.0.2.1' })).toBe(true);
    expect(allowed([policy({ ingress: [{ from: [{ podSelector: {} }] }] })], web, 9999)).toBe(true);
    expect(allowed([policy({ ingress: [{ from: [{ podSelector: {} }] }] })], web, 53, {}, 'UDP')).toBe(true);
  });

  test('a podSelector alone selects pods of the policy\'s namespace only', () => {
    const p = policy({ ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] });
    expect(allowed([p], web)).toBe(true);
    expect(allowed([p], { namespace: 'other', labels: { app: 'web' } })).toBe(false);
    expect(allowed([p], { namespace: 'shop', labels: { app: 'worker' } })).toBe(false);
    expect(allowed([p], { ip: '10.0.0.1' })).toBe(false);
  });

  test('podSelector and namespaceSelector in one peer both must hold; in two peers either may', () => {
    const both = policy({ ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'a' } }, podSelector: { matchLabels: { app: 'web' } } }] }] });
    const either = policy({ ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'a' } } }, { podSelector: { matchLabels: { app: 'web' } } }] }] });
    const namespaces = { namespaces: { tools: { team: 'a' } } };
    expect(allowed([both], { namespace: 'tools', labels: { app: 'web' } }, 3306, namespaces)).toBe(true);
    expect(allowed([both], { namespace: 'tools', labels: { app: 'cron' } }, 3306, namespaces)).toBe(false);
    expect(allowed([both], web, 3306, namespaces)).toBe(false);
    expect(allowed([either], { namespace: 'tools', labels: { app: 'cron' } }, 3306, namespaces)).toBe(true);
    expect(allowed([either], web, 3306, namespaces)).toBe(true);
    expect(allowed([either], { namespace: 'shop', labels: {} }, 3306, namespaces)).toBe(false);
  });

  test('an empty namespaceSelector selects every namespace; every namespace is labelled with its name', () => {
    const all = policy({ ingress: [{ from: [{ namespaceSelector: {} }] }] });
    expect(allowed([all], { namespace: 'anything', labels: {} })).toBe(true);
    expect(allowed([all], { ip: '192.0.2.1' })).toBe(false);
    const byName = policy({ ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] }] });
    expect(allowed([byName], { namespace: 'monitoring', labels: {} })).toBe(true);
    expect(allowed([byName], { namespace: 'monitoring-2', labels: {} })).toBe(false);
  });

  test('policies add up: any rule of any selecting policy admits', () => {
    const denyAll = policy({ podSelector: {}, ingress: [] }, 'shop', 'deny-all');
    const fromWeb = policy({ ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] }, 'shop', 'from-web');
    expect(allowed([denyAll], web)).toBe(false);
    expect(allowed([denyAll, fromWeb], web)).toBe(true);
    expect(allowed([denyAll, fromWeb], { namespace: 'shop', labels: { app: 'x' } })).toBe(false);
  });

  test('a port and its source must be admitted by the same rule', () => {
    const p = policy({
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 3306 }] },
        { from: [{ podSelector: { matchLabels: { app: 'admin' } } }], ports: [{ port: 3307 }] },
      ],
    });
    expect(allowed([p], web, 3306)).toBe(true);
    expect(allowed([p], web, 3307)).toBe(false);
    expect(allowed([p], { namespace: 'shop', labels: { app: 'admin' } }, 3306)).toBe(false);
  });

  test('ports: numbers with endPort ranges, names resolved against the destination\'s container ports, protocols (default TCP)', () => {
    const open = (ports: NetworkPolicy['spec']['ingress']) => policy({ ingress: ports });
    expect(allowed([open([{ ports: [{ port: 3300, endPort: 3310 }] }])], web, 3306)).toBe(true);
    expect(allowed([open([{ ports: [{ port: 3300, endPort: 3305 }] }])], web, 3306)).toBe(false);
    expect(allowed([open([{ ports: [{ port: 'mysql' }] }])], web, 3306)).toBe(true);
    expect(allowed([open([{ ports: [{ port: 'mysql' }] }])], web, 3307)).toBe(false);
    expect(allowed([open([{ ports: [{ port: 'metrics' }] }])], web, 3306)).toBe(false);
    expect(allowed([open([{ ports: [{ port: 'dns', protocol: 'UDP' }] }])], web, 53, {}, 'UDP')).toBe(true);
    expect(allowed([open([{ ports: [{ port: 'dns' }] }])], web, 53, {}, 'UDP')).toBe(false);
    expect(allowed([open([{ ports: [{ port: 3306 }] }])], web, 3306, {}, 'UDP')).toBe(false);
    expect(allowed([open([{ ports: [{ protocol: 'TCP' }] }])], web, 1234)).toBe(true);
  });

  test('ipBlock admits addresses in its CIDR except the excepted ones', () => {
    const p = policy({ ingress: [{ from: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.2.0/24'] } }] }] });
    expect(allowed([p], { ip: '10.1.3.4' })).toBe(true);
    expect(allowed([p], { ip: '10.1.2.4' })).toBe(false);
    expect(allowed([p], { ip: '10.2.0.1' })).toBe(false);
  });

  test('label selectors: matchLabels and the In, NotIn, Exists and DoesNotExist expressions', () => {
    expect(selects({}, { a: '1' })).toBe(true);
    expect(selects({ matchLabels: { a: '1' } }, { a: '1', b: '2' })).toBe(true);
    expect(selects({ matchLabels: { a: '1', c: '3' } }, { a: '1' })).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '2' })).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, {})).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {})).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' })).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' })).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '' })).toBe(false);
  });
});

/** The connections of a synthesized chart: pods by their template labels and ports. */
class World {
  public readonly manifests: Manifest[];
  public readonly cluster: Cluster;

  public constructor(chart: Chart, namespaces: Record<string, Record<string, string>> = {}) {
    this.manifests = synth(chart);
    this.cluster = { policies: ofKind(this.manifests, 'NetworkPolicy') as unknown as NetworkPolicy[], namespaces, defaultNamespace: 'default' };
  }

  /** The destination: a pod of the StatefulSet. */
  public member(statefulSet: string): Destination {
    const template = one(this.manifests, 'StatefulSet', statefulSet).spec.template;
    const ports = [...(template.spec.initContainers ?? []), ...template.spec.containers].flatMap((c: any) => c.ports ?? []);
    return { namespace: 'default', labels: { ...template.metadata.labels, 'statefulset.kubernetes.io/pod-name': `${statefulSet}-1` }, ports };
  }

  /** A source pod with the labels of a CronJob's pods. */
  public jobPod(cronJob: string): Source {
    return { namespace: 'default', labels: one(this.manifests, 'CronJob', cronJob).spec.jobTemplate.spec.template.metadata.labels };
  }

  public allowed(source: Source, destination: Destination, port: number): boolean {
    return evaluate(this.cluster, source, destination, port).allowed;
  }
}

function replicationChart(props: MySqlReplicationClusterProps = {}, schedule?: BackupMethod): Chart {
  const chart = Testing.chart();
  const db = new MySqlReplicationCluster(chart, 'db', { name: 'db', version: EngineVersion.MARIADB_11_4, ...props });
  if (schedule) {
    db.addBackupSchedule('Nightly', { method: schedule, target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups')) });
  }
  return chart;
}

function galeraChart(props: GaleraClusterProps = {}): Chart {
  const chart = Testing.chart();
  new GaleraCluster(chart, 'db', { name: 'db', ...props });
  return chart;
}

const app = { namespace: 'default', labels: { app: 'orders-api' } };
const unlabelled = { namespace: 'default', labels: {} };
const elsewhere = { namespace: 'other', labels: { app: 'orders-api' } };
const monitoring = { namespace: 'monitoring', labels: { app: 'prometheus' } };

describe('the synthesized NetworkPolicies', () => {
  test('replication: clients of the namespace reach 3306 only; the seed stream 3307 only the members and the backup Jobs', () => {
    const w = new World(replicationChart({}, BackupMethod.PHYSICAL));
    const member = w.member('db');
    const job = w.jobPod('db-nightly');
    const restore = w.jobPod('db-nightly-restore');
    const peer = { namespace: 'default', labels: member.labels };
    expect(member.ports.map((p) => p.containerPort).sort()).toEqual([3306, 3307]);
    expect([w.allowed(app, member, 3306), w.allowed(unlabelled, member, 3306), w.allowed(elsewhere, member, 3306)]).toEqual([true, true, false]);
    expect([w.allowed(app, member, 3307), w.allowed(unlabelled, member, 3307), w.allowed(elsewhere, member, 3307)]).toEqual([false, false, false]);
    expect([w.allowed(peer, member, 3306), w.allowed(peer, member, 3307)]).toEqual([true, true]);
    expect([w.allowed(job, member, 3306), w.allowed(job, member, 3307)]).toEqual([true, true]);
    expect([w.allowed(restore, member, 3306), w.allowed(restore, member, 3307)]).toEqual([true, true]);
    // a port nothing listens on is closed to everyone
    expect(w.allowed(peer, member, 22)).toBe(false);
  });

  test('Galera: 4567, 4568, 4444 and 4569 from the members only; 3306 from the namespace, the members and the backup Jobs', () => {
    const w = new World(galeraChart());
    const member = w.member('db');
    const peer = { namespace: 'default', labels: member.labels };
    const backupJob = { namespace: 'default', labels: { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'backup' } };
    for (const port of [4567, 4568, 4444, 4569]) {
      expect([port, w.allowed(peer, member, port)]).toEqual([port, true]);
      for (const source of [app, unlabelled, elsewhere, backupJob]) {
        expect([port, source.labels, w.allowed(source, member, port)]).toEqual([port, source.labels, false]);
      }
    }
    expect([app, unlabelled, peer, backupJob].map((s) => w.allowed(s, member, 3306))).toEqual([true, true, true, true]);
    expect(w.allowed(elsewhere, member, 3306)).toBe(false);
    expect(w.cluster.policies[0].spec.policyTypes).toEqual(['Ingress']);
    expect(w.cluster.policies[0].spec.egress).toBeUndefined();
  });

  test('a pod of another cluster in the namespace is an ordinary client: 3306 only', () => {
    const chart = replicationChart({}, BackupMethod.PHYSICAL);
    new MySqlReplicationCluster(chart, 'other', { name: 'other', version: EngineVersion.MARIADB_11_4 });
    const w = new World(chart);
    const other = { namespace: 'default', labels: w.member('other').labels };
    expect([w.allowed(other, w.member('db'), 3306), w.allowed(other, w.member('db'), 3307)]).toEqual([true, false]);
  });

  test('the policy selects the database pods, not the backup Jobs\' pods', () => {
    const w = new World(replicationChart({}, BackupMethod.PHYSICAL));
    const policy = w.cluster.policies[0];
    expect(selects(policy.spec.podSelector, w.member('db').labels)).toBe(true);
    expect(selects(policy.spec.podSelector, (w.jobPod('db-nightly') as any).labels)).toBe(false);
    expect(policy.metadata.name).toEqual('db');
  });

  test('a MySQL physical BackupSchedule opens the xtrabackup sidecar\'s 3307 to the members and backup Jobs, added after the policy', () => {
    const chart = Testing.chart();
    const db = new MySqlReplicationCluster(chart, 'db', { name: 'db' });
    const target = BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'backups'));
    expect(new World(chart).member('db').ports.map((p) => p.containerPort)).toEqual([3306]);
    expect(new World(chart).cluster.policies[0].spec.ingress!.flatMap((r) => r.ports!.map((p) => p.port))).toEqual([3306]);
    db.addBackupSchedule('Nightly', { method: BackupMethod.PHYSICAL, target });
    const w = new World(chart);
    const member = w.member('db');
    expect(member.ports.map((p) => p.containerPort)).toEqual([3306, 3307]);
    expect([w.allowed(w.jobPod('db-nightly'), member, 3307), w.allowed(app, member, 3307)]).toEqual([true, false]);
  });

  test('a port named metrics is open to the monitoring namespace only, by default', () => {
    const chart = galeraChart();
    ApiObject.of(chart.node.findChild('db')).addJsonPatch(JsonPatch.add('/spec/template/spec/containers/-', {
      name: 'exporter', image: 'prom/mysqld-exporter:v0.15.1', ports: [{ name: 'metrics', containerPort: 9104 }],
    }));
    const w = new World(chart);
    const member = w.member('db');
    expect([w.allowed(monitoring, member, 9104), w.allowed(app, member, 9104), w.allowed(monitoring, member, 3306)]).toEqual([true, false, false]);
  });

  test('metricsFrom chooses who scrapes the metrics port', () => {
    const chart = replicationChart({ metricsFrom: [AllowedClients.podsInNamespaces({ app: 'prometheus' }, { team: 'observability' })] });
    ApiObject.of(chart.node.findChild('db')).addJsonPatch(JsonPatch.add('/spec/template/spec/containers/-', {
      name: 'exporter', image: 'prom/mysqld-exporter:v0.15.1', ports: [{ name: 'metrics', containerPort: 9104 }],
    }));
    const w = new World(chart, { obs: { team: 'observability' } });
    const member = w.member('db');
    expect(w.allowed({ namespace: 'obs', labels: { app: 'prometheus' } }, member, 9104)).toBe(true);
    expect(w.allowed({ namespace: 'obs', labels: { app: 'grafana' } }, member, 9104)).toBe(false);
    expect(w.allowed(monitoring, member, 9104)).toBe(false);
  });

  test('allowedClients: pods by label, namespaces by name or label, every namespace, anywhere', () => {
    const member = (clients: AllowedClients[]) => {
      const w = new World(replicationChart({ allowedClients: clients }, BackupMethod.PHYSICAL), { tools: { team: 'a' } });
      return (source: Source, port = 3306) => w.allowed(source, w.member('db'), port);
    };
    const byPods = member([AllowedClients.pods({ app: 'orders-api' })]);
    expect([byPods(app), byPods(unlabelled), byPods(elsewhere)]).toEqual([true, false, false]);
    const byNamespace = member([AllowedClients.namespaceNamed('other'), AllowedClients.namespaces({ team: 'a' })]);
    expect([byNamespace(app), byNamespace(elsewhere), byNamespace({ namespace: 'tools', labels: {} })]).toEqual([false, true, true]);
    const everyNamespace = member([AllowedClients.allNamespaces()]);
    expect([everyNamespace(elsewhere), everyNamespace({ ip: '192.0.2.1' })]).toEqual([true, false]);
    const anywhere = member([AllowedClients.anywhere()]);
    expect([anywhere({ ip: '192.0.2.1' }), anywhere(elsewhere), anywhere({ ip: '192.0.2.1' }, 3307), anywhere(elsewhere, 3307)]).toEqual([true, true, false, false]);
  });

  test('a chart namespace puts the policy in it; its podSelector peers mean that namespace', () => {
    const chart = new Chart(Testing.app(), 'c', { namespace: 'shop' });
    new GaleraCluster(chart, 'db', { name: 'db' });
    const manifests = synth(chart);
    const policy = one(manifests, 'NetworkPolicy') as unknown as NetworkPolicy;
    expect(policy.metadata.namespace).toEqual('shop');
    const labels = one(manifests, 'StatefulSet').spec.template.metadata.labels;
    const member: Destination = { namespace: 'shop', labels, ports: [{ name: 'galera', containerPort: 4567 }] };
    expect(evaluate({ policies: [policy] }, { namespace: 'shop', labels }, member, 4567).allowed).toBe(true);
    expect(evaluate({ policies: [policy] }, { namespace: 'default', labels }, member, 4567).allowed).toBe(false);
  });

  test('networkPolicy: false synthesizes none', () => {
    expect(ofKind(synth(replicationChart({ networkPolicy: false })), 'NetworkPolicy')).toEqual([]);
    expect(ofKind(synth(galeraChart({ networkPolicy: false })), 'NetworkPolicy')).toEqual([]);
    const chart = Testing.chart();
    expect(new GaleraCluster(chart, 'db', { networkPolicy: false }).networkPolicy).toBeUndefined();
    expect(new MySqlReplicationCluster(chart, 'r').networkPolicy?.name).toEqual(expect.stringMatching(/^test-r-/));
  });

  describe('rejects', () => {
    test('a container port of a name the policy does not know, naming the container, port and fix', () => {
      for (const chart of [replicationChart(), galeraChart()]) {
        ApiObject.of(chart.node.findChild('db')).addJsonPatch(JsonPatch.add('/spec/template/spec/containers/-', {
          name: 'proxy', image: 'proxysql/proxysql:2.6.0', ports: [{ name: 'admin', containerPort: 6032 }],
        }));
        expect(() => Testing.synth(chart)).toThrow(
          /container 'proxy' of StatefulSet 'db' has the port 'admin' \(6032\), which NetworkPolicy 'db' cannot classify.*name it after what it serves \(mysql, seed, .*metrics\), or set networkPolicy: false/,
        );
      }
    });

    test('an unnamed container port', () => {
      const chart = galeraChart();
      ApiObject.of(chart.node.findChild('db')).addJsonPatch(JsonPatch.add('/spec/template/spec/containers/0/ports/-', { containerPort: 8080 }));
      expect(() => Testing.synth(chart)).toThrow(/container 'mariadb' of StatefulSet 'db' has an unnamed port \(8080\)/);
    });

    test('an empty allowedClients or metricsFrom', () => {
      expect(() => replicationChart({ allowedClients: [] })).toThrow(
        'allowedClients is empty, which would admit no client to the SQL port: give at least one, e.g. [AllowedClients.sameNamespace()], or set networkPolicy: false',
      );
      expect(() => galeraChart({ metricsFrom: [] })).toThrow(/^metricsFrom is empty, which would admit no client to the metrics port: give at least one, e.g. \[AllowedClients.namespaceNamed\('monitoring'\)\]/);
    });

    test('allowedClients or metricsFrom with networkPolicy: false', () => {
      expect(() => galeraChart({ networkPolicy: false, allowedClients: [AllowedClients.anywhere()] })).toThrow(
        'allowedClients and metricsFrom configure the NetworkPolicy, but networkPolicy is false: remove them, or turn networkPolicy on',
      );
      expect(() => replicationChart({ networkPolicy: false, metricsFrom: [AllowedClients.allNamespaces()] })).toThrow(/but networkPolicy is false/);
    });

    test('a namespace name that is not a DNS label', () => {
      for (const name of ['Monitoring', 'monitoring_ns', '-monitoring', '', 'a'.repeat(64)]) {
        expect(() => AllowedClients.namespaceNamed(name)).toThrow(`AllowedClients.namespaceNamed('${name}'): '${name}' is not a namespace name: a namespace name is a DNS label`);
      }
    });

    test('empty label sets, which would select everything, and malformed labels', () => {
      expect(() => AllowedClients.pods({})).toThrow('AllowedClients.pods got no labels, which would select everything: give at least one label, or use AllowedClients.sameNamespace()');
      expect(() => AllowedClients.namespaces({})).toThrow(/AllowedClients.namespaces got no labels.*AllowedClients.allNamespaces\(\)/);
      expect(() => AllowedClients.podsInNamespaces({ app: 'x' }, {})).toThrow(/AllowedClients.podsInNamespaces \(namespaceLabels\) got no labels/);
      expect(() => AllowedClients.pods({ 'bad key!': 'x' })).toThrow(/AllowedClients.pods: 'bad key!' is not a label key/);
      expect(() => AllowedClients.pods({ 'Example.com/app': 'x' })).toThrow(/'Example.com\/app' is not a label key/);
      expect(() => AllowedClients.pods({ app: 'has space' })).toThrow(/the value 'has space' of label 'app' is not a label value/);
      expect(AllowedClients.pods({ 'example.com/app': '' }).description).toEqual('the pods labelled example.com/app=');
    });

    test('a list entry that is not an AllowedClients', () => {
      expect(() => replicationChart({ allowedClients: [{} as AllowedClients] })).toThrow(/allowedClients\[0\] is not an AllowedClients/);
    });
  });
});

describe('PodDisruptionBudget and placement', () => {
  const database = { 'app.kubernetes.io/name': 'mariadb', 'app.kubernetes.io/instance': 'db', 'app.kubernetes.io/component': 'database' };

  test('the replication cluster may lose at most one pod to a drain or upgrade', () => {
    const chart = replicationChart();
    const pdb = one(synth(chart), 'PodDisruptionBudget', 'db-pdb');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: database } });
    expect((chart.node.findChild('db') as MySqlReplicationCluster).podDisruptionBudget.name).toEqual('db-pdb');
  });

  test('required anti-affinity keeps every pod on its own node, for both clusters', () => {
    const term = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: database } };
    const required = { podAntiAffinity: PodAntiAffinity.REQUIRED };
    for (const chart of [replicationChart(required), galeraChart(required)]) {
      expect(one(synth(chart), 'StatefulSet').spec.template.spec.affinity).toEqual({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } });
    }
  });

  test('the anti-affinity, the PodDisruptionBudget and the Services never count the backup Jobs\' pods', () => {
    const manifests = synth(replicationChart({ podAntiAffinity: PodAntiAffinity.REQUIRED }, BackupMethod.PHYSICAL));
    const jobLabels = one(manifests, 'CronJob', 'db-nightly').spec.jobTemplate.spec.template.metadata.labels;
    const sts = one(manifests, 'StatefulSet');
    const selectors = [
      sts.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector,
      one(manifests, 'PodDisruptionBudget').spec.selector,
      ...ofKind(manifests, 'Service').map((s) => ({ matchLabels: s.spec.selector })),
    ];
    expect(selectors).toHaveLength(5);
    for (const selector of selectors) {
      expect(selects(selector, jobLabels)).toBe(false);
    }
    expect(selects(selectors[0], sts.spec.template.metadata.labels)).toBe(true);
  });

  test('the replication cluster spreads across zones on request, as Galera does', () => {
    const zone = (chart: Chart) => one(synth(chart), 'StatefulSet').spec.template.spec.topologySpreadConstraints;
    expect(zone(replicationChart({ spreadAcrossZones: true }))).toEqual(zone(galeraChart({ spreadAcrossZones: true })));
    expect(zone(replicationChart({ spreadAcrossZones: true }))).toEqual([{
      topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule', nodeTaintsPolicy: 'Honor', labelSelector: { matchLabels: database },
    }]);
  });

  test('rejects an unknown anti-affinity', () => {
    expect(() => galeraChart({ podAntiAffinity: 'sometimes' as PodAntiAffinity })).toThrow(
      "podAntiAffinity 'sometimes' is not supported: use PodAntiAffinity.PREFERRED (the default) or PodAntiAffinity.REQUIRED",
    );
  });
});
