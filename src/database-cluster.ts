import * as kplus from 'cdk8s-plus-27';
import { IConstruct } from 'constructs';
import type { BackupSchedule, BackupScheduleOptions } from './backup-schedule';
import type { BackupTarget } from './backup-target';
import { EngineVersion } from './engine-version';

/**
 * How the members of a database cluster relate, which decides how a backup is taken without
 * slowing the cluster down.
 */
export enum ClusterTopology {
  /**
   * One primary and read replicas (`MySqlReplicationCluster`): backups come from a ready
   * replica; a logical backup pauses that replica's SQL thread for its duration.
   */
  REPLICATION = 'replication',
  /**
   * Multi-primary Galera: backups come from one node, desynchronized (`wsrep_desync`) for the
   * duration so that flow control never slows the cluster down.
   */
  GALERA = 'galera',
}

/**
 * Where a cluster serves physical copies of its members' data: every member listed in
 * `IDatabaseCluster.backupMembers` answers each TCP connection on `port` with one copy, as an
 * xbstream (MariaDB: `mariadb-backup --backup --stream=xbstream`; MySQL: `xtrabackup`) whose last
 * file is the end mark `cdk8s-mysql-seed-complete`, or closes the connection without sending
 * anything when it is not a healthy member.
 */
export interface PhysicalBackupStream {
  /** The TCP port of the stream on every member. */
  readonly port: number;
  /**
   * An image with the tools that extract and prepare the stream: `mbstream` and
   * `mariadb-backup` for MariaDB, `xbstream` and `xtrabackup` for MySQL. It must match the
   * server's release series.
   */
  readonly toolsImage: string;
}

/**
 * A backup to start a new cluster from (see `restoreFrom` of the cluster constructs).
 */
export interface RestoreFromBackup {
  /**
   * Where the backup is: the target of the old cluster's `BackupSchedule`. A target's default
   * directory is the name of the cluster it is used with; when the new cluster has another name,
   * give the target the old cluster's directory explicitly (`path` or `prefix`).
   */
  readonly target: BackupTarget;
  /**
   * The directory of the backup to restore under the target's path or prefix, e.g.
   * `20250101T010100Z-physical` (the name the backup Job logs), or `latest` for the newest
   * complete backup.
   *
   * @default 'latest'
   */
  readonly backup?: string;
}

/**
 * A MySQL or MariaDB cluster that `BackupSchedule` can back up and restore: both
 * `MySqlReplicationCluster` and `GaleraCluster` implement it.
 */
export interface IDatabaseCluster extends IConstruct {
  /** The StatefulSet's name: pods are `<name>-<ordinal>`; the default directory of its backups. */
  readonly name: string;
  /** The engine and version; backups record it and restores need the same release series. */
  readonly version: EngineVersion;
  /** The image of the database server, which the backup Jobs also use. */
  readonly image: string;
  /** The server's TCP port on every member. */
  readonly port: number;
  /**
   * The Secret with the cluster's root password under the key `root-password`. Backups log in
   * as `root`; a restore sets the root password of the restored data to this one.
   */
  readonly credentials: kplus.ISecret;
  /** The in-cluster DNS name that accepts writes: where a restore Job loads a backup. */
  readonly writeHost: string;
  /** How the members relate, which decides how a backup pauses its source. */
  readonly topology: ClusterTopology;
  /**
   * The DNS names (`<pod>.<headless Service>`) of the members a backup may be taken from, most
   * preferred first: the replicas, highest ordinal first, for a replication cluster (its
   * primary only when it has no replica); every node for Galera.
   */
  readonly backupMembers: string[];
  /**
   * The Secret with the cluster's server certificate and CA (`ca.crt`) when the cluster has TLS:
   * backup and restore Jobs then connect over TLS and verify the servers against the CA.
   *
   * @default - no TLS
   */
  readonly tlsSecretName?: string;

  /**
   * Where the members serve physical copies, turning the service on when it is not yet (MySQL:
   * adds a percona-xtrabackup sidecar). Throws when the cluster cannot serve physical copies.
   */
  physicalBackupStream(): PhysicalBackupStream;

  /** Schedules backups of this cluster (a `BackupSchedule` in this cluster's scope). */
  addBackupSchedule(id: string, options: BackupScheduleOptions): BackupSchedule;
}
