import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { BackupTarget } from '../src';

function claim() {
  return kplus.PersistentVolumeClaim.fromClaimName(Testing.chart(), 'Backups', 'backups');
}

function secret() {
  return kplus.Secret.fromSecretName(Testing.chart(), 'S3', 's3-credentials');
}

describe('BackupTarget', () => {
  describe('persistentVolumeClaim()', () => {
    test('mounts the claim and keeps the backups in the cluster\'s directory', () => {
      // GIVEN
      const target = BackupTarget.persistentVolumeClaim(claim());
      // WHEN
      const bound = target._bind('orders');
      // THEN
      expect(target.kind).toEqual('pvc');
      expect(bound.env).toEqual({ TARGET_KIND: 'pvc', TARGET_DIR: '/var/backups/cdk8s-mysql/orders' });
      expect(bound.volumes).toEqual([{ name: 'backup-target', persistentVolumeClaim: { claimName: 'backups' } }]);
      expect(bound.mounts).toEqual([{ name: 'backup-target', mountPath: '/var/backups/cdk8s-mysql' }]);
      expect(bound.initContainers({}, {})).toEqual([]);
      expect(bound.description).toEqual('persistentvolumeclaim/backups:orders');
    });

    test('takes an explicit path inside the claim', () => {
      const bound = BackupTarget.persistentVolumeClaim(claim(), { path: 'prod/orders-v1' })._bind('orders');
      expect(bound.env.TARGET_DIR).toEqual('/var/backups/cdk8s-mysql/prod/orders-v1');
    });

    test.each(['/abs', 'a//b', 'a/../b', '..', 'trailing/', '.hidden', 'with space'])('fails for the path %p', (path) => {
      expect(() => BackupTarget.persistentVolumeClaim(claim(), { path })).toThrow(
        `BackupTarget.persistentVolumeClaim path '${path}' is not a relative directory: use segments of letters, digits, '.', '_' and '-' separated by '/', without a leading or trailing '/' or '..', e.g. 'prod/orders'`,
      );
    });
  });

  describe('s3()', () => {
    test('copies rclone out of its image and reads the credentials from the mounted Secret, never from the environment', () => {
      // GIVEN
      const target = BackupTarget.s3({ bucket: 'db-backups', endpoint: 'http://minio.storage.svc:9000', credentials: secret() });
      // WHEN
      const bound = target._bind('orders');
      // THEN
      expect(target.kind).toEqual('s3');
      expect(bound.description).toEqual('s3://db-backups/orders');
      expect(bound.env).toEqual({
        TARGET_KIND: 's3',
        S3_BUCKET: 'db-backups',
        S3_PREFIX: 'orders',
        S3_REGION: 'us-east-1',
        S3_ENDPOINT: 'http://minio.storage.svc:9000',
        S3_FORCE_PATH_STYLE: 'true',
        S3_SECRETS_DIR: '/etc/cdk8s-mysql/s3',
        RCLONE: '/opt/cdk8s-mysql/tools/rclone',
        RCLONE_CA_FILE: '/opt/cdk8s-mysql/tools/ca-certificates.crt',
      });
      expect(bound.volumes).toEqual([
        {
          name: 'backup-s3-credentials',
          secret: {
            secretName: 's3-credentials',
            defaultMode: 0o440,
            items: [{ key: 'access-key-id', path: 'access-key-id' }, { key: 'secret-access-key', path: 'secret-access-key' }],
          },
        },
        { name: 'backup-tools', emptyDir: {} },
      ]);
      expect(bound.mounts).toEqual([
        { name: 'backup-s3-credentials', mountPath: '/etc/cdk8s-mysql/s3', readOnly: true },
        { name: 'backup-tools', mountPath: '/opt/cdk8s-mysql/tools', readOnly: true },
      ]);
      const [rclone] = bound.initContainers({ runAsUser: 999 }, {});
      expect(rclone).toEqual({
        name: 'rclone',
        image: 'rclone/rclone:1.69',
        imagePullPolicy: 'IfNotPresent',
        command: ['sh', '-c', 'cp "$(command -v rclone)" /opt/cdk8s-mysql/tools/rclone && cp /etc/ssl/certs/ca-certificates.crt /opt/cdk8s-mysql/tools/ca-certificates.crt'],
        securityContext: { runAsUser: 999 },
        resources: {},
        volumeMounts: [{ name: 'backup-tools', mountPath: '/opt/cdk8s-mysql/tools' }],
      });
      expect(JSON.stringify(bound)).not.toMatch(/secretKeyRef|valueFrom/);
    });

    test('Amazon S3: virtual-hosted buckets and no endpoint unless given; prefix, region and rclone image are options', () => {
      const bound = BackupTarget.s3({ bucket: 'db.backups', prefix: 'prod/orders', region: 'eu-central-1', credentials: secret(), rcloneImage: 'mirror.example.com/rclone:1.69.1' })._bind('orders');
      expect(bound.env).toMatchObject({ S3_BUCKET: 'db.backups', S3_PREFIX: 'prod/orders', S3_REGION: 'eu-central-1', S3_FORCE_PATH_STYLE: 'false' });
      expect(bound.env.S3_ENDPOINT).toBeUndefined();
      expect(bound.initContainers({}, {})[0].image).toEqual('mirror.example.com/rclone:1.69.1');
    });

    test.each(['ab', 'Upper', 'under_score', '-dash', 'a..b', 'x'.repeat(64)])('fails for the bucket %p', (bucket) => {
      expect(() => BackupTarget.s3({ bucket, credentials: secret() })).toThrow(`BackupTarget.s3 bucket '${bucket}' is not a valid bucket name`);
    });
  });
});
