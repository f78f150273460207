import { lstatSync, readlinkSync, Stats } from 'fs';
import { join, posix } from 'path';

/** A bind mount into a container's root filesystem. */
export interface BindMount {
  readonly source: string;
  /** Path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
}

/** What container-init.sh does after it has mounted the root filesystem, in order. */
export type RootfsStep =
  | { readonly kind: 'bind'; readonly source: string; readonly target: string; readonly readOnly: boolean }
  | { readonly kind: 'dir'; readonly target: string };

/** Mounts container-init.sh makes before any volume: an empty tmpfs /tmp and kernel file systems. */
const KERNEL_MOUNTS = ['/proc', '/sys', '/dev', '/tmp'];
const MAX_SYMLINKS = 40;

type Entry = { readonly kind: 'missing' | 'other' } | { readonly kind: 'symlink'; readonly target: string };

/**
 * Plans a container's mounts. Like runc, it mounts shallower targets first and resolves every
 * target inside the container's root filesystem: a symlink in the image (`/var/run` → `/run`)
 * is followed within the container, never into this machine's root. The root filesystem is
 * this machine's `/` seen through the image layer, plus the mounts planned before.
 */
export function planRootfs(layerDir: string, mounts: readonly BindMount[], workingDir: string): RootfsStep[] {
  const planned: BindMount[] = [];
  const lookup = (path: string): Entry => {
    const mount = [...planned].reverse().find((m) => path === m.target || path.startsWith(`${m.target}/`));
    if (mount) {
      return entryOf(join(mount.source, path.slice(mount.target.length)));
    }
    if (KERNEL_MOUNTS.some((m) => path.startsWith(`${m}/`))) {
      return { kind: path === '/dev/shm' ? 'other' : 'missing' };
    }
    const inLayer = statOrUndefined(join(layerDir, path));
    if (inLayer) {
      return { kind: inLayer.isCharacterDevice() && inLayer.rdev === 0 ? 'missing' : 'other' };
    }
    return entryOf(path);
  };
  const sorted = [...mounts].sort((a, b) => depth(a.target) - depth(b.target));
  for (const mount of sorted) {
    planned.push({ ...mount, target: resolveInRoot(mount.target, lookup) });
  }
  return [
    ...planned.map((mount): RootfsStep => ({ kind: 'bind', ...mount })),
    { kind: 'dir', target: resolveInRoot(workingDir, lookup) },
  ];
}

/** The lines of container-init.sh's `mounts` file (tab-separated). */
export function renderRootfsSteps(steps: readonly RootfsStep[]): string {
  return steps.map((step) => (step.kind === 'bind'
    ? ['bind', step.source, step.target, step.readOnly ? 'ro' : 'rw']
    : ['dir', step.target]).join('\t')).map((line) => `${line}\n`).join('');
}

/** Resolves `path` component by component, following symlinks relative to the container's root. */
function resolveInRoot(path: string, lookup: (path: string) => Entry): string {
  let resolved = '/';
  const remaining = path.split('/').filter(Boolean);
  let links = 0;
  while (remaining.length > 0) {
    const part = remaining.shift()!;
    if (part === '.') {
      continue;
    }
    if (part === '..') {
      resolved = posix.dirname(resolved);
      continue;
    }
    const candidate = posix.join(resolved, part);
    const entry = lookup(candidate);
    if (entry.kind !== 'symlink') {
      resolved = candidate;
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new Error(`too many levels of symbolic links in ${path}`);
    }
    remaining.unshift(...entry.target.split('/').filter(Boolean));
    if (entry.target.startsWith('/')) {
      resolved = '/';
    }
  }
  return resolved;
}

function entryOf(path: string): Entry {
  const stats = statOrUndefined(path);
  if (!stats) {
    return { kind: 'missing' };
  }
  return stats.isSymbolicLink() ? { kind: 'symlink', target: readlinkSync(path) } : { kind: 'other' };
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function depth(path: string): number {
  return path.split('/').filter(Boolean).length;
}
