/**
 * The database server family.
 */
export enum DatabaseEngine {
  /** Oracle MySQL (official `mysql` image). */
  MYSQL = 'mysql',
  /** MariaDB (official `mariadb` image). */
  MARIADB = 'mariadb',
}

/**
 * A database engine and version, and the container image that carries it.
 *
 * Use a well-known constant (`EngineVersion.MYSQL_8_4`) or a factory for a specific
 * release (`EngineVersion.mariadb('11.4.5')`). Only the release series below are supported,
 * because the scripts of this library depend on each series' commands and file names.
 */
export class EngineVersion {
  /** MySQL 8.4 LTS, image `mysql:8.4`. */
  public static readonly MYSQL_8_4 = EngineVersion.mysql('8.4');
  /** MySQL 8.0, image `mysql:8.0` (no longer built upstream since 2026; prefer 8.4). */
  public static readonly MYSQL_8_0 = EngineVersion.mysql('8.0');
  /** MariaDB 10.11 LTS, image `mariadb:10.11`. */
  public static readonly MARIADB_10_11 = EngineVersion.mariadb('10.11');
  /** MariaDB 11.4 LTS, image `mariadb:11.4`. */
  public static readonly MARIADB_11_4 = EngineVersion.mariadb('11.4');

  /**
   * A MySQL release of the 8.0 or 8.4 series, e.g. `8.4` or `8.4.3`.
   */
  public static mysql(version: string): EngineVersion {
    return new EngineVersion(DatabaseEngine.MYSQL, version, ['8.0', '8.4'], 'mysql');
  }

  /**
   * A MariaDB release of the 10.11 or 11.4 series, e.g. `11.4` or `11.4.5`.
   */
  public static mariadb(version: string): EngineVersion {
    return new EngineVersion(DatabaseEngine.MARIADB, version, ['10.11', '11.4'], 'mariadb');
  }

  /** The server family. */
  public readonly engine: DatabaseEngine;
  /** The version as given, e.g. `8.4` or `11.4.5`. */
  public readonly version: string;
  /** The release series, e.g. `8.4` or `11.4`. */
  public readonly series: string;
  /** The default image of this version, e.g. `mysql:8.4`. */
  public readonly image: string;

  private constructor(engine: DatabaseEngine, version: string, supported: string[], repository: string) {
    const series = supported.find((s) => version === s || version.startsWith(`${s}.`));
    if (!series || !/^\d+\.\d+(\.\d+)?$/.test(version)) {
      throw new Error(
        `EngineVersion.${engine}('${version}') is not a supported version: use a ${engine} release of the ` +
        `${supported.join(' or ')} series, e.g. '${supported[supported.length - 1]}'`,
      );
    }
    this.engine = engine;
    this.version = version;
    this.series = series;
    this.image = `${repository}:${version}`;
  }

  /** True for MariaDB. */
  public get isMariaDb(): boolean {
    return this.engine === DatabaseEngine.MARIADB;
  }
}
