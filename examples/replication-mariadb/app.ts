import { App, Chart, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { EngineVersion, MySqlReplicationCluster } from '../../src';

/**
 * A MariaDB 11.4 cluster in its own namespace: one primary and three read replicas with
 * semi-synchronous replication, on a chosen StorageClass, with its passwords in a Secret that
 * is managed elsewhere (for example by an external secrets operator).
 *
 * Before `kubectl apply`, create the namespace and the Secret:
 *   kubectl create namespace catalog
 *   kubectl -n catalog create secret generic catalog-db-passwords \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=replication-password="$(openssl rand -base64 24)"
 */
export function buildApp(app: App): void {
  const chart = new Chart(app, 'replication-mariadb', { namespace: 'catalog' });

  new MySqlReplicationCluster(chart, 'Catalog', {
    name: 'catalog',
    version: EngineVersion.MARIADB_11_4,
    replicas: 4,
    semiSync: true,
    storage: Size.gibibytes(50),
    storageClassName: 'fast-ssd',
    credentials: kplus.Secret.fromSecretName(chart, 'Passwords', 'catalog-db-passwords'),
    resources: {
      cpu: { request: kplus.Cpu.units(1) },
      memory: { request: Size.gibibytes(2), limit: Size.gibibytes(2) },
    },
    innodbBufferPoolSize: Size.gibibytes(1),
    serverOptions: { character_set_server: 'utf8mb4', collation_server: 'utf8mb4_unicode_ci' },
  });
}
