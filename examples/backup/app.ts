import { App, Chart, Cron, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupMethod, BackupTarget, EngineVersion, GaleraCluster, MySqlReplicationCluster } from '../../src';

/**
 * Scheduled backups of a MariaDB 11.4 replication cluster:
 * - physical backups twice a day (01:01 and 13:01 Shanghai time) to an NFS/CephFS claim, the
 *   last 14 kept and everything younger than 7 days, with a weekly restore drill;
 * - a nightly logical dump to S3-compatible storage (MinIO), kept for 30 days;
 * - nightly physical backups of a 3-node Galera cluster to the same claim, each streamed from a
 *   node desynchronized for the duration (the `inventory/` directory of the claim).
 * Two more charts, `orders-restored` and `inventory-restored`, show new clusters started from
 * the newest backups.
 *
 * Before `kubectl apply`, create the claim (ReadWriteMany) and the Secrets:
 *   kubectl create secret generic orders-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=replication-password="$(openssl rand -base64 24)"
 *   kubectl create secret generic inventory-credentials \
 *     --from-literal=root-password="$(openssl rand -base64 24)" \
 *     --from-literal=sst-password="$(openssl rand -base64 24)"
 *   kubectl create secret generic orders-s3 \
 *     --from-literal=access-key-id=… --from-literal=secret-access-key=…
 */
export function buildApp(app: App): void {
  const chart = new Chart(app, 'backup');

  const db = new MySqlReplicationCluster(chart, 'Orders', {
    name: 'orders',
    version: EngineVersion.MARIADB_11_4,
    replicas: 3,
    storage: Size.gibibytes(20),
  });

  // an existing ReadWriteMany claim (NFS, CephFS): the backup Jobs and restores mount it
  const claim = kplus.PersistentVolumeClaim.fromClaimName(chart, 'BackupClaim', 'db-backups');
  db.addBackupSchedule('Physical', {
    target: BackupTarget.persistentVolumeClaim(claim),
    times: '01:01,13:01',
    timeZone: 'Asia/Shanghai',
    keepLast: 14,
    keepFor: Duration.days(7),
    restoreDrill: { schedules: [Cron.schedule({ minute: '30', hour: '4', weekDay: 'SUN' })] },
  });

  db.addBackupSchedule('Dump', {
    method: BackupMethod.LOGICAL,
    target: BackupTarget.s3({
      bucket: 'db-backups',
      prefix: 'prod/orders',
      endpoint: 'http://minio.storage.svc:9000',
      credentials: kplus.Secret.fromSecretName(chart, 'S3', 'orders-s3'),
    }),
    schedules: [Cron.schedule({ minute: '15', hour: '2' })],
    keepFor: Duration.days(30),
  });

  // Galera: the physical schedule adds a `backup` sidecar to every node
  const inventory = new GaleraCluster(chart, 'Inventory', { name: 'inventory', storage: Size.gibibytes(20) });
  inventory.addBackupSchedule('Nightly', {
    target: BackupTarget.persistentVolumeClaim(claim),
    times: '00:45',
    keepLast: 7,
    restoreDrill: {},
  });

  // a NEW cluster from the newest backup of `orders` (its directory on the claim); remove
  // restoreFrom once it runs
  const restored = new Chart(app, 'orders-restored');
  new MySqlReplicationCluster(restored, 'Orders', {
    name: 'orders-restored',
    version: EngineVersion.MARIADB_11_4,
    replicas: 3,
    storage: Size.gibibytes(20),
    credentials: kplus.Secret.fromSecretName(restored, 'Credentials', 'orders-credentials'),
    restoreFrom: {
      target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(restored, 'BackupClaim', 'db-backups'), { path: 'orders' }),
      backup: 'latest',
    },
  });

  // a NEW Galera cluster from a backup of `inventory`: ordinal 0 restores it and bootstraps the
  // cluster at the backup's position; the other nodes join by SST
  const inventoryRestored = new Chart(app, 'inventory-restored');
  new GaleraCluster(inventoryRestored, 'Inventory', {
    name: 'inventory-restored',
    storage: Size.gibibytes(20),
    credentials: kplus.Secret.fromSecretName(inventoryRestored, 'Credentials', 'inventory-credentials'),
    restoreFrom: {
      target: BackupTarget.persistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(inventoryRestored, 'BackupClaim', 'db-backups'), { path: 'inventory' }),
      backup: 'latest',
    },
  });
}
