import { k8s } from 'cdk8s-plus-27';

/** Paths inside the pods of backups, restores and restoring clusters. */
export const BACKUP_PATHS = {
  /** Where a PersistentVolumeClaim target is mounted. */
  target: '/var/backups/cdk8s-mysql',
  /** Where the S3 credentials Secret is mounted. */
  s3Credentials: '/etc/cdk8s-mysql/s3',
  /** Where the rclone binary and its CA bundle are copied from the rclone image. */
  tools: '/opt/cdk8s-mysql/tools',
};

/** What a bound `BackupTarget` adds to a pod. */
export interface BoundBackupTarget {
  /** `pvc` or `s3`. */
  readonly kind: string;
  /** A short description for logs and docs, e.g. `s3://bucket/prefix`. */
  readonly description: string;
  /** Environment variables that tell the scripts where the target is (never a secret). */
  readonly env: Record<string, string>;
  /** Volumes of the pod. */
  readonly volumes: k8s.Volume[];
  /** Mounts of every container that reads or writes the target. */
  readonly mounts: k8s.VolumeMount[];
  /** Init containers to run first (the rclone binary is copied out of its image). */
  initContainers(securityContext: k8s.SecurityContext, resources: k8s.ResourceRequirements): k8s.Container[];
}

/** The scripts every backup, restore and drill Job runs (and a restoring cluster's pods). */
export const BACKUP_SCRIPTS = [
  'lib.sh',
  'backup-lib.sh',
  'backup-take.sh',
  'backup-verify.sh',
  'backup-store.sh',
  'restore-fetch.sh',
  'restore-drill.sh',
  'restore-load.sh',
];

/** Checks a backup name: `latest` or the name of a backup directory of a target. */
export function checkBackupName(prop: string, backup: string): void {
  if (typeof backup !== 'string' || !/^(latest|[0-9]{8}T[0-9]{6}Z-(physical|logical))$/.test(backup)) {
    throw new Error(`${prop} '${backup}' is not a backup name: give 'latest' or the name of a backup directory, e.g. '20250101T010100Z-physical'`);
  }
}
