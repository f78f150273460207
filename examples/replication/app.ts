import { App, Chart, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { EngineVersion, MySqlReplicationCluster } from '../../src';

/**
 * A MySQL 8.4 cluster: one primary and two read replicas, and a small client Deployment that
 * reads the connection details from the construct.
 *
 * Before `kubectl apply`, create the Secret with the passwords:
 *   kubectl create secret generic orders-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=replication-password="$(openssl rand -base64 24)"
 */
export function buildApp(app: App): void {
  const chart = new Chart(app, 'replication');

  const db = new MySqlReplicationCluster(chart, 'Orders', {
    name: 'orders',
    version: EngineVersion.MYSQL_8_4,
    replicas: 3,
    storage: Size.gibibytes(20),
    innodbBufferPoolSize: Size.mebibytes(512),
    maxConnections: 300,
    serverOptions: { slow_query_log: 'ON', long_query_time: '2' },
    maxLag: Duration.seconds(10),
  });

  // an application that writes to the primary and reads from the replicas (with an account of
  // its own, created with the root password: see the README)
  const appDeployment = new kplus.Deployment(chart, 'App', {
    replicas: 1,
    containers: [{
      name: 'app',
      image: 'mysql:8.4',
      command: ['sleep', 'infinity'],
      envVariables: {
        DB_WRITE_HOST: kplus.EnvValue.fromValue(db.writeHost),
        DB_READ_HOST: kplus.EnvValue.fromValue(db.readHost),
        DB_PORT: kplus.EnvValue.fromValue(`${db.port}`),
      },
      securityContext: { user: 999, group: 999 },
      resources: { cpu: { request: kplus.Cpu.millis(10) }, memory: { request: Size.mebibytes(64), limit: Size.mebibytes(128) } },
    }],
  });
  appDeployment.node.addDependency(db);
}
