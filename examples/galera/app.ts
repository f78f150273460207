import { App, Chart, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { EngineVersion, GaleraCluster, SstMethod } from '../../src';

/**
 * A 3-node MariaDB 11.4 Galera cluster (every node accepts writes) and a small client Deployment
 * that reads the connection details from the construct.
 *
 * Before `kubectl apply`, create the Secret with the passwords:
 *   kubectl create secret generic inventory-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=sst-password="$(openssl rand -base64 24)"
 */
export function buildApp(app: App): void {
  const chart = new Chart(app, 'galera');

  const db = new GaleraCluster(chart, 'Inventory', {
    name: 'inventory',
    version: EngineVersion.MARIADB_11_4,
    replicas: 3,
    storage: Size.gibibytes(20),
    sstMethod: SstMethod.MARIABACKUP,
    resources: {
      cpu: { request: kplus.Cpu.millis(500) },
      memory: { request: Size.gibibytes(2), limit: Size.gibibytes(2) },
    },
    serverOptions: {
      innodb_buffer_pool_size: '1G',
      // a larger write-set cache lets a node that was down longer catch up by IST, not SST
      wsrep_provider_options: 'gcache.size=1G',
      max_connections: '300',
    },
  });

  // an application that reads and writes through the client Service (any ready node)
  const appDeployment = new kplus.Deployment(chart, 'App', {
    replicas: 1,
    containers: [{
      name: 'app',
      image: 'mariadb:11.4',
      command: ['sleep', 'infinity'],
      envVariables: {
        DB_HOST: kplus.EnvValue.fromValue(db.host),
        DB_PORT: kplus.EnvValue.fromValue(`${db.port}`),
      },
      securityContext: { user: 999, group: 999 },
      resources: { cpu: { request: kplus.Cpu.millis(10) }, memory: { request: Size.mebibytes(64), limit: Size.mebibytes(128) } },
    }],
  });
  appDeployment.node.addDependency(db);
}
