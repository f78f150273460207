import type { LayerBuilder } from './image-layer';

/**
 * What a container image provides, reproduced from Debian packages: the executables in the
 * image's bin directories (everything else on this machine is hidden from the container), its
 * users, its environment and the few files where the image differs from Debian's packaging.
 */
export interface ImageProfile {
  /** Names the image layer directory, e.g. `mariadb-10`. */
  readonly name: string;
  /** Debian packages whose executables the image has. Every other executable is hidden. */
  readonly packages: readonly string[];
  /** Executables of those packages that the image does not have, by file name. */
  readonly withoutExecutables?: RegExp;
  /** Accounts as the image's /etc/passwd and /etc/group have them. */
  readonly users: readonly ImageUser[];
  /** `ENV` of the image. */
  readonly env: Readonly<Record<string, string>>;
  /** `ENTRYPOINT` and `CMD` of the image, used when a container has no `command`/`args`. */
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /**
   * Executables the image has that no Debian package provides (absolute paths). They exist in
   * the container as stubs that fail with a message naming the runner, never silently.
   */
  readonly unavailable: readonly string[];
  /** Image-specific directories and files. */
  readonly customize?: (layer: LayerBuilder) => void;
}

export interface ImageUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

/** Thrown for an image that Debian's packages cannot stand in for. */
export class ImageNotRunnableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageNotRunnableError';
  }
}

/**
 * The packages of the Ubuntu base image (`ubuntu:jammy` / `ubuntu:noble`) that every Debian
 * system has (priority required). The base image also has adduser, gpgv and logsave, which
 * Debian does not always install and no database script needs; they stay hidden.
 */
const UBUNTU_BASE = [
  'apt', 'base-passwd', 'bash', 'bsdutils', 'coreutils', 'dash', 'debconf', 'debianutils', 'diffutils', 'dpkg', 'e2fsprogs',
  'findutils', 'grep', 'gzip', 'hostname', 'init-system-helpers', 'libc-bin', 'login', 'mawk', 'mount', 'ncurses-bin', 'passwd',
  'perl-base', 'sed', 'sensible-utils', 'sysvinit-utils', 'tar', 'util-linux',
];

/**
 * The official mariadb image adds mariadb-server, mariadb-backup and socat (with their
 * dependencies gawk, iproute2, lsof, procps, psmisc, rsync, perl and galera-4) plus tzdata,
 * xz-utils and zstd. No netcat, curl, wget or pv. test/e2e/host-setup.sh installs these.
 */
const MARIADB_IMAGE = [
  ...UBUNTU_BASE,
  'mariadb-server', 'mariadb-server-core', 'mariadb-client', 'mariadb-client-core', 'mariadb-backup', 'galera-4',
  'socat', 'gawk', 'iproute2', 'lsof', 'procps', 'psmisc', 'rsync', 'perl', 'tzdata', 'xz-utils', 'zstd',
];

const UBUNTU_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The image's `mysql` account (`useradd -r`, so uid/gid 999). */
const MYSQL_USER: ImageUser = { name: 'mysql', uid: 999, gid: 999, home: '/home/mysql', shell: '/bin/sh' };

function customizeMariadb(layer: LayerBuilder): void {
  // The image removes the packaged datadir and recreates it empty for the mysql user.
  layer.emptyDirectory('/var/lib/mysql', { uid: MYSQL_USER.uid, gid: MYSQL_USER.gid, mode: 0o755 });
  // Socket and pid directory, writable whatever uid the server runs as.
  layer.emptyDirectory('/run/mysqld', { uid: MYSQL_USER.uid, gid: MYSQL_USER.gid, mode: 0o777 });
  layer.emptyDirectory('/docker-entrypoint-initdb.d', { uid: 0, gid: 0, mode: 0o755 });
  // The image comments out bind-address, log and user in every packaged .cnf; Debian's
  // 50-server.cnf would otherwise bind the server to 127.0.0.1.
  for (const file of layer.hostFiles('/etc/mysql', /\.cnf$/)) {
    layer.editFile(file, (text) => text.replace(/^(bind-address|log|user\s)/gm, '#$1'));
  }
  // The image reads /etc/mysql/conf.d after mariadb.conf.d (Debian reads it before), so a
  // ConfigMap mounted on conf.d overrides the packaged settings.
  layer.editFile('/etc/mysql/mariadb.cnf', (text) => {
    const includes = /^(!includedir \/etc\/mysql\/conf\.d\/\n)(!includedir \/etc\/mysql\/mariadb\.conf\.d\/\n)/m;
    if (!includes.test(text)) {
      throw new Error('/etc/mysql/mariadb.cnf no longer has the two !includedir lines the mariadb profile reorders');
    }
    return text.replace(includes, '$2$1');
  });
  // The image never resolves client host names.
  layer.writeFile('/etc/mysql/mariadb.conf.d/05-skipcache.cnf', '[mariadb]\nhost-cache-size=0\nskip-name-resolve\n', 0o644);
}

function mariadbProfile(name: string, withoutExecutables?: RegExp): ImageProfile {
  return {
    name,
    packages: MARIADB_IMAGE,
    withoutExecutables,
    users: [MYSQL_USER],
    env: { PATH: UBUNTU_PATH, LANG: 'C.UTF-8' },
    entrypoint: ['docker-entrypoint.sh'],
    cmd: ['mariadbd'],
    unavailable: ['/usr/local/bin/docker-entrypoint.sh', '/usr/local/bin/healthcheck.sh', '/usr/local/bin/gosu', '/usr/bin/pwgen'],
    customize: customizeMariadb,
  };
}

const MARIADB_10 = mariadbProfile('mariadb-10');
/** From 11.0 on the image has no `mysql*` executable names (MDEV-30203). */
const MARIADB_11 = mariadbProfile('mariadb-11', /^mysql/);

/**
 * prom/mysqld-exporter (busybox based, `ENTRYPOINT /bin/mysqld_exporter`, `USER nobody`), stood
 * in for by Debian's prometheus-mysqld-exporter 0.14 under the image's path. The image is 0.15
 * or later; the construct passes only `--config.my-cnf` and `--web.listen-address`, which both
 * versions take alike, so nothing is translated. The versions differ elsewhere: 0.15+ expands
 * `$VAR` and `%(key)s` in the option file (the construct refuses such passwords in any case) and
 * dropped `mysql_exporter_scrapes_total`/`_scrape_errors_total`; newer releases also read
 * MySQL 8.4's SHOW REPLICA STATUS.
 */
const MYSQLD_EXPORTER: ImageProfile = {
  name: 'mysqld-exporter',
  // dash is the /bin/sh of the forwarding script below (the image's busybox has a sh too)
  packages: ['prometheus-mysqld-exporter', 'dash'],
  users: [{ name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent', shell: '/usr/sbin/nologin' }],
  env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
  entrypoint: ['/bin/mysqld_exporter'],
  cmd: [],
  unavailable: [],
  customize: (layer) => {
    // /bin is /usr/bin here (merged /usr), so /bin/mysqld_exporter is this file
    layer.writeFile('/usr/bin/mysqld_exporter', '#!/bin/sh\nexec /usr/bin/prometheus-mysqld-exporter "$@"\n', 0o755);
  },
};

interface ImageRule {
  /** Matched against `<repository>:<tag>` with `docker.io/` and `library/` removed. */
  readonly image: RegExp;
  readonly profile?: ImageProfile;
  /** Why the image cannot run here; a container using it is rejected with this reason. */
  readonly notRunnable?: string;
}

/** First match wins. Add a rule (and, if needed, a profile) to support another image. */
const IMAGE_RULES: readonly ImageRule[] = [
  { image: /^mariadb:10\./, profile: MARIADB_10 },
  { image: /^mariadb:/, profile: MARIADB_11 },
  { image: /^(quay\.io\/prometheus|prom)\/mysqld-exporter:/, profile: MYSQLD_EXPORTER },
  { image: /^mysql:/, notRunnable: 'Debian has no MySQL server; the runner stands in for mariadb images only' },
  { image: /^percona\//, notRunnable: 'Debian has no Percona Server, XtraDB Cluster or XtraBackup' },
];

/** The profile that stands in for `image`; throws {@link ImageNotRunnableError} when there is none. */
export function profileFor(image: string | undefined): ImageProfile {
  if (!image) {
    throw new ImageNotRunnableError('a container without an image cannot run');
  }
  const normalized = normalizeImage(image);
  const rule = IMAGE_RULES.find((candidate) => candidate.image.test(normalized));
  if (rule?.profile) {
    return rule.profile;
  }
  if (rule?.notRunnable) {
    throw new ImageNotRunnableError(`${image} cannot run here: ${rule.notRunnable}. Test such manifests by synthesis only.`);
  }
  throw new ImageNotRunnableError(`${image} cannot run here: no image profile matches it (add one to test/e2e/runner/profiles.ts)`);
}

/** `docker.io/library/mariadb` → `mariadb:latest`; a digest counts as an unknown (newest) tag. */
function normalizeImage(image: string): string {
  const withoutRegistry = image.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '');
  const [name, tag] = withoutRegistry.split('@')[0].split(/:(?=[^/]*$)/);
  return `${name}:${tag ?? 'latest'}`;
}
