import * as kplus from 'cdk8s-plus-27';
import { BACKUP_PATHS, BoundBackupTarget } from './_backup';
import { validateImage } from './_common';

/** A relative directory of plain segments: `prod/db`, never `/x`, `a//b`, `..` or `x/`. */
const RELATIVE_PATH = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

/**
 * Options of a PersistentVolumeClaim target.
 */
export interface PersistentVolumeClaimTargetOptions {
  /**
   * The directory inside the volume that holds the cluster's backups, one sub-directory per
   * backup. Relative, e.g. `prod/orders`.
   *
   * @default - the cluster's name
   */
  readonly path?: string;
}

/**
 * Options of an S3-compatible object storage target.
 */
export interface S3TargetOptions {
  /** The bucket, which must exist. */
  readonly bucket: string;

  /**
   * The key prefix (a "directory" of the bucket) that holds the cluster's backups, one
   * sub-directory per backup. Relative, without a leading or trailing `/`, e.g. `prod/orders`.
   *
   * @default - the cluster's name
   */
  readonly prefix?: string;

  /**
   * The endpoint URL of an S3-compatible service, e.g. `http://minio.storage.svc:9000` or
   * `https://s3.eu-central-003.backblazeb2.com`.
   *
   * @default - Amazon S3 in `region`
   */
  readonly endpoint?: string;

  /**
   * The region of the bucket.
   *
   * @default 'us-east-1'
   */
  readonly region?: string;

  /**
   * A Secret with the access key under the key `access-key-id` and the secret key under
   * `secret-access-key` (see `BackupTarget.ACCESS_KEY_ID_KEY` and
   * `BackupTarget.SECRET_ACCESS_KEY_KEY`). It is mounted as files, never put in the environment.
   * Create it with `kubectl create secret generic <name> --from-literal=access-key-id=…
   * --from-literal=secret-access-key=…`.
   */
  readonly credentials: kplus.ISecret;

  /**
   * Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>`, as MinIO and
   * Ceph need.
   *
   * @default - true when `endpoint` is set, false for Amazon S3
   */
  readonly forcePathStyle?: boolean;

  /**
   * The rclone image whose `rclone` binary (static) and CA certificates the pods copy and use.
   *
   * @default 'rclone/rclone:1.69'
   */
  readonly rcloneImage?: string;
}

/**
 * Where backups are kept: a PersistentVolumeClaim (e.g. NFS or CephFS) or S3-compatible object
 * storage.
 *
 * Under the target's directory, every complete backup is a directory named after its start time
 * and method, e.g. `20250101T010100Z-physical/`, with the artifact (`backup.xbstream.zst` or
 * `backup.sql.zst`), its checksum (`<artifact>.sha256`) and `manifest.json`. A backup is written
 * under `.incomplete/` first and moved into place when it is complete, manifest last: a directory
 * without `manifest.json` is never a backup.
 */
export class BackupTarget {
  /** The key of the access key in an S3 target's credentials Secret. */
  public static readonly ACCESS_KEY_ID_KEY = 'access-key-id';
  /** The key of the secret key in an S3 target's credentials Secret. */
  public static readonly SECRET_ACCESS_KEY_KEY = 'secret-access-key';

  /**
   * An existing PersistentVolumeClaim. The backup Jobs, the restore and drill Jobs and, with
   * `restoreFrom`, every pod of a restored cluster mount it, so on a cluster of several nodes it
   * must be ReadWriteMany (NFS, CephFS, …).
   */
  public static persistentVolumeClaim(claim: kplus.IPersistentVolumeClaim, options: PersistentVolumeClaimTargetOptions = {}): BackupTarget {
    if (!claim) {
      throw new Error('BackupTarget.persistentVolumeClaim needs a claim: pass kplus.PersistentVolumeClaim.fromClaimName(this, \'Backups\', \'<claim name>\')');
    }
    if (options.path !== undefined) {
      checkRelativePath('BackupTarget.persistentVolumeClaim path', options.path);
    }
    return new BackupTarget('pvc', { claimName: claim.name, path: options.path });
  }

  /**
   * S3-compatible object storage (Amazon S3, MinIO, Ceph RGW, …), used through rclone.
   */
  public static s3(options: S3TargetOptions): BackupTarget {
    if (!options || !options.credentials) {
      throw new Error(
        `BackupTarget.s3 needs credentials (bucket '${options?.bucket}'): create a Secret with the keys '${BackupTarget.ACCESS_KEY_ID_KEY}' and ` +
        `'${BackupTarget.SECRET_ACCESS_KEY_KEY}' and pass it as credentials: kplus.Secret.fromSecretName(this, 'S3', '<secret name>')`,
      );
    }
    if (typeof options.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket) || options.bucket.includes('..')) {
      throw new Error(`BackupTarget.s3 bucket '${options.bucket}' is not a valid bucket name: use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit`);
    }
    if (options.prefix !== undefined) {
      checkRelativePath('BackupTarget.s3 prefix', options.prefix);
    }
    if (options.endpoint !== undefined && !/^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[^\s]*)?$/.test(options.endpoint)) {
      throw new Error(`BackupTarget.s3 endpoint '${options.endpoint}' is not an http(s) URL: give e.g. 'https://s3.example.com' or 'http://minio.storage.svc:9000'`);
    }
    const region = options.region ?? 'us-east-1';
    if (!/^[a-z0-9][a-z0-9-]*$/.test(region)) {
      throw new Error(`BackupTarget.s3 region '${region}' is not a region name: give e.g. 'us-east-1'`);
    }
    const rcloneImage = options.rcloneImage ?? 'rclone/rclone:1.69';
    validateImage('BackupTarget.s3 rcloneImage', rcloneImage, '1.69');
    return new BackupTarget('s3', {
      bucket: options.bucket,
      path: options.prefix,
      endpoint: options.endpoint,
      region,
      credentialsName: options.credentials.name,
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      rcloneImage,
    });
  }

  /** `pvc` or `s3`. */
  public readonly kind: string;
  private readonly config: TargetConfig;

  private constructor(kind: string, config: TargetConfig) {
    this.kind = kind;
    this.config = config;
  }

  /**
   * What a pod needs to reach this target, with `defaultPath` (the cluster's name) as the
   * directory when none was given.
   *
   * @internal
   */
  public _bind(defaultPath: string): BoundBackupTarget {
    const path = this.config.path ?? defaultPath;
    checkRelativePath('the directory of a backup target', path);
    const c = this.config;
    if (this.kind === 'pvc') {
      return {
        kind: 'pvc',
        description: `persistentvolumeclaim/${c.claimName}:${path}`,
        env: { TARGET_KIND: 'pvc', TARGET_DIR: `${BACKUP_PATHS.target}/${path}` },
        volumes: [{ name: 'backup-target', persistentVolumeClaim: { claimName: c.claimName! } }],
        mounts: [{ name: 'backup-target', mountPath: BACKUP_PATHS.target }],
        initContainers: () => [],
      };
    }
    return {
      kind: 's3',
      description: `s3://${c.bucket}/${path}`,
      env: {
        TARGET_KIND: 's3',
        S3_BUCKET: c.bucket!,
        S3_PREFIX: path,
        S3_REGION: c.region!,
        ...(c.endpoint ? { S3_ENDPOINT: c.endpoint } : {}),
        S3_FORCE_PATH_STYLE: c.forcePathStyle ? 'true' : 'false',
        S3_SECRETS_DIR: BACKUP_PATHS.s3Credentials,
        RCLONE: `${BACKUP_PATHS.tools}/rclone`,
        RCLONE_CA_FILE: `${BACKUP_PATHS.tools}/ca-certificates.crt`,
      },
      volumes: [
        {
          name: 'backup-s3-credentials',
          secret: {
            secretName: c.credentialsName!,
            defaultMode: 0o440,
            items: [BackupTarget.ACCESS_KEY_ID_KEY, BackupTarget.SECRET_ACCESS_KEY_KEY].map((key) => ({ key, path: key })),
          },
        },
        { name: 'backup-tools', emptyDir: {} },
      ],
      mounts: [
        { name: 'backup-s3-credentials', mountPath: BACKUP_PATHS.s3Credentials, readOnly: true },
        { name: 'backup-tools', mountPath: BACKUP_PATHS.tools, readOnly: true },
      ],
      initContainers: (securityContext, resources) => [{
        name: 'rclone',
        image: c.rcloneImage!,
        imagePullPolicy: 'IfNotPresent',
        // the image's rclone is a static binary: the scripts run it from the database image
        command: ['sh', '-c', `cp "$(command -v rclone)" ${BACKUP_PATHS.tools}/rclone && cp /etc/ssl/certs/ca-certificates.crt ${BACKUP_PATHS.tools}/ca-certificates.crt`],
        securityContext,
        resources,
        volumeMounts: [{ name: 'backup-tools', mountPath: BACKUP_PATHS.tools }],
      }],
    };
  }
}

interface TargetConfig {
  readonly claimName?: string;
  readonly path?: string;
  readonly bucket?: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentialsName?: string;
  readonly forcePathStyle?: boolean;
  readonly rcloneImage?: string;
}

function checkRelativePath(prop: string, path: string): void {
  if (typeof path !== 'string' || !RELATIVE_PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..') || path.length > 200) {
    throw new Error(`${prop} '${path}' is not a relative directory: use segments of letters, digits, '.', '_' and '-' separated by '/', without a leading or trailing '/' or '..', e.g. 'prod/orders'`);
  }
}

