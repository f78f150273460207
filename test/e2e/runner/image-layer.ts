import {
  chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, Stats, writeFileSync,
} from 'fs';
import { basename, dirname, join, posix } from 'path';
import type { ImageProfile, ImageUser } from './profiles';
import { checkSync } from './shell';

export interface Ownership {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/** Top-level directories of an image's root; any other entry of this machine's root is hidden. */
const IMAGE_TOP_LEVEL = new Set(['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'libx32', 'media', 'mnt', 'opt',
  'proc', 'root', 'run', 'sbin', 'srv', 'sys', 'tmp', 'usr', 'var']);
/** Directories that are empty in an image, whatever this machine keeps in them. */
const EMPTY_IN_IMAGES = ['/home', '/media', '/mnt', '/opt', '/root', '/run', '/srv'];
const BIN_DIRS = ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];
const DPKG_INFO = '/var/lib/dpkg/info';
/** Files the runner bind-mounts into every container; regular files so no symlink can redirect them. */
const MOUNT_TARGETS = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
const UNAVAILABLE_STUB = join(__dirname, 'unavailable.sh');

/**
 * Builds an image layer: a directory in the form of an overlayfs upper layer that turns this
 * machine's root filesystem into the image's. Every container start copies it into the
 * container's fresh writable layer; `/` is the lower layer. Whiteouts (character devices 0/0)
 * hide what the image does not have, so absolute paths fail too.
 */
export function buildImageLayer(imagesDir: string, profile: ImageProfile): string {
  const dir = join(imagesDir, profile.name);
  if (existsSync(dir)) {
    return dir;
  }
  const layer = new LayerBuilder(dir, join(imagesDir, `.${profile.name}.whiteout`));
  for (const entry of readdirSync('/')) {
    if (!IMAGE_TOP_LEVEL.has(entry)) {
      layer.hide(`/${entry}`);
    }
  }
  for (const path of EMPTY_IN_IMAGES) {
    layer.emptyDirectory(path, ownershipOf(lstatSync(path)));
  }
  layer.emptyDirectory('/run/lock', { uid: 0, gid: 0, mode: 0o1777 });
  hideForeignExecutables(layer, profile);
  for (const path of profile.unavailable) {
    layer.writeFile(path, readFileSync(UNAVAILABLE_STUB, 'utf8'), 0o755);
  }
  writeUsers(layer, profile.users);
  for (const path of MOUNT_TARGETS) {
    layer.writeFile(path, '', 0o644);
  }
  profile.customize?.(layer);
  return dir;
}

/** Writes an image layer directory; paths are absolute paths of the image. */
export class LayerBuilder {
  private readonly dir: string;
  private readonly whiteout: string;

  constructor(dir: string, whiteout: string) {
    this.dir = dir;
    this.whiteout = whiteout;
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    rmSync(whiteout, { force: true });
    checkSync(['mknod', whiteout, 'c', '0', '0']);
  }

  /** Hides a file or directory of this machine. */
  public hide(path: string): void {
    const target = this.prepare(path);
    linkSync(this.whiteout, target); // hard links of one whiteout: one mknod for any number of hidden paths
  }

  /** A directory that exists in the image with this owner and mode, and nothing of this machine's in it. */
  public emptyDirectory(path: string, ownership: Ownership): void {
    const target = this.prepare(path);
    mkdirSync(target);
    own(target, ownership);
    const host = lstatOrUndefined(path);
    if (host?.isDirectory()) {
      for (const entry of readdirSync(path)) {
        if (!existsSync(join(target, entry))) {
          this.hide(posix.join(path, entry));
        }
      }
    }
  }

  public writeFile(path: string, content: string, mode: number, ownership: Omit<Ownership, 'mode'> = { uid: 0, gid: 0 }): void {
    const target = this.prepare(path);
    writeFileSync(target, content);
    own(target, { ...ownership, mode });
  }

  /** Changes a file of this machine (or one the layer already has) in the image. */
  public editFile(path: string, edit: (content: string) => string): void {
    const inLayer = lstatOrUndefined(this.layerPath(path));
    const source = inLayer?.isFile() ? this.layerPath(path) : realpathSync(path);
    const stats = lstatSync(source);
    const content = edit(readFileSync(source, 'utf8'));
    this.writeFile(path, content, stats.mode % 0o10000, { uid: stats.uid, gid: stats.gid });
  }

  /** Regular files below a directory of this machine whose name matches. */
  public hostFiles(dir: string, name: RegExp): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) {
        return this.hostFiles(path, name);
      }
      return entry.isFile() && name.test(entry.name) ? [path] : [];
    });
  }

  /** Removes whatever the layer has at `path` and creates its parents like this machine has them. */
  private prepare(path: string): string {
    const target = this.layerPath(path);
    rmSync(target, { recursive: true, force: true });
    const parents: string[] = [];
    for (let parent = dirname(path); parent !== '/'; parent = dirname(parent)) {
      parents.unshift(parent);
    }
    for (const parent of parents) {
      const inLayer = this.layerPath(parent);
      const existing = lstatOrUndefined(inLayer);
      if (existing?.isDirectory()) {
        continue;
      }
      rmSync(inLayer, { force: true }); // a whiteout
      mkdirSync(inLayer);
      const host = lstatOrUndefined(parent);
      own(inLayer, host?.isDirectory() ? ownershipOf(host) : { uid: 0, gid: 0, mode: 0o755 });
    }
    return target;
  }

  private layerPath(path: string): string {
    return join(this.dir, path);
  }
}

/**
 * Hides every executable in the bin directories that is not in one of the profile's packages.
 * A symlink stays when what it finally points to stays (`awk` → `/etc/alternatives/awk` → `gawk`).
 */
function hideForeignExecutables(layer: LayerBuilder, profile: ImageProfile): void {
  const allowed = new Set(profile.packages.flatMap(packageExecutables));
  const removed = (path: string): boolean => profile.withoutExecutables?.test(basename(path)) ?? false;
  for (const dir of BIN_DIRS) {
    if (!lstatOrUndefined(dir)?.isDirectory()) {
      continue; // merged /usr: /bin and /sbin are symlinks into /usr
    }
    for (const entry of readdirSync(dir)) {
      const path = posix.join(dir, entry);
      const target = realpathOrUndefined(path);
      const kept = !removed(path) && (allowed.has(path) || (target !== undefined && allowed.has(target) && !removed(target)));
      if (!kept) {
        layer.hide(path);
      }
    }
  }
}

/** The executables a Debian package installs, as real paths (merged /usr: `/bin/ls` is `/usr/bin/ls`). */
function packageExecutables(pkg: string): string[] {
  const list = readdirSync(DPKG_INFO).find((file) => file === `${pkg}.list` || (file.startsWith(`${pkg}:`) && file.endsWith('.list')));
  if (!list) {
    throw new Error(`an image profile needs the Debian package ${pkg}, which is not installed (see test/e2e/host-setup.sh)`);
  }
  return readFileSync(join(DPKG_INFO, list), 'utf8').split('\n')
    .filter((path) => BIN_DIRS.includes(dirname(path)))
    .map((path) => posix.join(realpathSync(dirname(path)), basename(path)));
}

/** The image's accounts replace any of this machine's with the same name, uid or gid. */
function writeUsers(layer: LayerBuilder, users: readonly ImageUser[]): void {
  const names = new Set(users.map((user) => user.name));
  const keep = (file: string, idField: number, ids: Set<number>): string[] => readFileSync(file, 'utf8').split('\n')
    .filter((line) => line && !names.has(line.split(':')[0]) && !ids.has(Number(line.split(':')[idField])));
  const passwd = keep('/etc/passwd', 2, new Set(users.map((user) => user.uid)));
  const group = keep('/etc/group', 2, new Set(users.map((user) => user.gid)));
  for (const user of users) {
    passwd.push(`${user.name}:x:${user.uid}:${user.gid}::${user.home}:${user.shell}`);
    group.push(`${user.name}:x:${user.gid}:`);
  }
  layer.writeFile('/etc/passwd', `${passwd.join('\n')}\n`, 0o644);
  layer.writeFile('/etc/group', `${group.join('\n')}\n`, 0o644);
}

function own(path: string, ownership: Ownership): void {
  chownSync(path, ownership.uid, ownership.gid);
  chmodSync(path, ownership.mode);
}

function ownershipOf(stats: Stats): Ownership {
  return { uid: stats.uid, gid: stats.gid, mode: stats.mode % 0o10000 };
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
