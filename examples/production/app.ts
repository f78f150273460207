import { App, Chart, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  AllowedClients, BackupTarget, EngineVersion, GaleraCluster, MySqlReplicationCluster, PodAntiAffinity, ServerTls,
} from '../../src';

/**
 * Both clusters with every hardening option on, in the namespace `shop`:
 * - TLS from cert-manager (an existing ClusterIssuer `internal-ca`), with secure transport
 *   required: replication, Galera group communication, IST and SST are encrypted;
 * - NetworkPolicies that admit SQL clients only from the pods labelled `app.kubernetes.io/part-of:
 *   shop` and the namespace `reporting`, and metrics only from Prometheus in `monitoring`;
 * - one pod per node (required anti-affinity) spread over the zones;
 * - a mysqld_exporter sidecar, a ServiceMonitor and alert rules, and an alert when the nightly
 *   backup is older than its schedule allows.
 *
 * Before `kubectl apply`: cert-manager with the ClusterIssuer, the Prometheus Operator, the
 * claim `db-backups`, and the Secrets (every password also needs `exporter-password`):
 *   kubectl -n shop create secret generic orders-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=replication-password="$(openssl rand -base64 24)" \
 *     --from-literal=exporter-password="$(openssl rand -base64 24)"
 *   kubectl -n shop create secret generic inventory-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=sst-password="$(openssl rand -base64 24)" \
 *     --from-literal=exporter-password="$(openssl rand -base64 24)"
 */
export function buildApp(app: App): void {
  const chart = new Chart(app, 'production', { namespace: 'shop' });
  const monitoringLabels = { release: 'kube-prometheus-stack' };
  const hardening = {
    version: EngineVersion.MARIADB_11_4,
    storage: Size.gibibytes(50),
    resources: {
      cpu: { request: kplus.Cpu.units(1) },
      memory: { request: Size.gibibytes(4), limit: Size.gibibytes(4) },
    },
    innodbBufferPoolSize: Size.gibibytes(3),
    tls: ServerTls.certManager({ issuerName: 'internal-ca', issuerKind: 'ClusterIssuer', duration: Duration.days(90) }),
    requireSecureTransport: true,
    allowedClients: [AllowedClients.pods({ 'app.kubernetes.io/part-of': 'shop' }), AllowedClients.namespaceNamed('reporting')],
    metricsFrom: [AllowedClients.podsInNamespaces({ 'app.kubernetes.io/name': 'prometheus' }, { 'kubernetes.io/metadata.name': 'monitoring' })],
    podAntiAffinity: PodAntiAffinity.REQUIRED,
    spreadAcrossZones: true,
    metrics: true,
    serviceMonitor: true,
    alertRules: true,
    monitoringLabels,
  };

  const orders = new MySqlReplicationCluster(chart, 'Orders', { name: 'orders', replicas: 3, ...hardening });
  const inventory = new GaleraCluster(chart, 'Inventory', { name: 'inventory', replicas: 3, ...hardening });

  const claim = kplus.PersistentVolumeClaim.fromClaimName(chart, 'BackupClaim', 'db-backups');
  for (const cluster of [orders, inventory]) {
    cluster.addBackupSchedule('Nightly', {
      target: BackupTarget.persistentVolumeClaim(claim),
      times: '01:30',
      timeZone: 'Europe/Berlin',
      keepLast: 14,
      alertRules: true,
      monitoringLabels,
    });
  }
}
