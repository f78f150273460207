import { spawn } from 'child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { BindMount, planRootfs, renderRootfsSteps } from './rootfs';
import { run, RunResult, signalNumber, sleep } from './shell';

const CONTAINER_INIT = join(__dirname, 'container-init.sh');

/** The namespaces a pod's containers share, held by the sandbox process. */
export interface Sandbox {
  readonly netns: string;
  readonly pid: number;
}

/** Who a container's processes (its main process, execs and exec probes) run as. */
export interface ProcessIdentity {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  /** Bounding set, as setpriv names capabilities (`net_admin`), or every capability (privileged). */
  readonly capabilities: readonly string[] | 'all';
  readonly noNewPrivs: boolean;
  readonly workingDir: string;
  readonly env: ReadonlyMap<string, string>;
}

/** Everything needed to start one incarnation of a container. */
export interface ContainerLaunch extends ProcessIdentity {
  readonly argv: readonly string[];
  readonly layerDir: string;
  readonly mounts: readonly BindMount[];
  readonly readOnlyRoot: boolean;
}

export interface ExitStatus {
  /** The exit code, or 128 + signal number when a signal ended the process (137 for SIGKILL). */
  readonly code: number;
}

/**
 * One incarnation of a container: its process is PID 1 of a new PID namespace with a new mount
 * namespace and root filesystem, inside the pod's network, UTS and IPC namespaces.
 */
export class ContainerProcess {
  /** Starts the incarnation; stdout and stderr go to `logPath`. */
  public static async start(sandbox: Sandbox, launch: ContainerLaunch, dir: string, logPath: string): Promise<ContainerProcess> {
    const rootfs = join(dir, 'rootfs', 'merged');
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    writeFileSync(join(dir, 'mounts'), renderRootfsSteps(planRootfs(launch.layerDir, launch.mounts, launch.workingDir)));
    writeFileSync(join(dir, 'env'), nulSeparated(environment(launch.env)));
    writeFileSync(join(dir, 'launch'), nulSeparated(switchTo(launch, rootfs)));
    writeFileSync(join(dir, 'argv'), nulSeparated(launch.argv));
    const log = openSync(logPath, 'a');
    const child = spawn('nsenter', [
      `--net=/run/netns/${sandbox.netns}`, `--uts=/proc/${sandbox.pid}/ns/uts`, `--ipc=/proc/${sandbox.pid}/ns/ipc`, '--',
      'unshare', '--mount', '--pid', '--fork', '--propagation', 'private', '--',
      'bash', CONTAINER_INIT, dir, launch.layerDir, launch.readOnlyRoot ? 'ro' : 'rw',
    ], { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    const exited = new Promise<ExitStatus>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code: code ?? 128 + signalNumber(signal) }));
    });
    const pid = await firstChild(child.pid!, exited);
    await started(join(dir, 'started'), exited);
    return new ContainerProcess(launch, rootfs, pid, exited);
  }

  public readonly exited: Promise<ExitStatus>;
  private readonly identity: ProcessIdentity;
  private readonly rootfs: string;
  /** Host PID of the container's PID 1; undefined when it ended before it could be seen. */
  private readonly pid: number | undefined;
  private exitStatus: ExitStatus | undefined;

  private constructor(identity: ProcessIdentity, rootfs: string, pid: number | undefined, exited: Promise<ExitStatus>) {
    this.identity = identity;
    this.rootfs = rootfs;
    this.pid = pid;
    this.exited = exited.then((status) => (this.exitStatus = status));
  }

  public get running(): boolean {
    return this.exitStatus === undefined && this.pid !== undefined;
  }

  /** Runs a command in the container's namespaces, root, working directory, user and environment (kubectl exec). */
  public async exec(argv: readonly string[], options: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    if (!this.running) {
      throw new Error('container is not running');
    }
    return run([
      'nsenter', '-t', String(this.pid), '-m', '-u', '-i', '-n', '-p', '--',
      '/usr/bin/env', '-i', ...environment(this.identity.env), ...switchTo(this.identity, this.rootfs), ...argv,
    ], options);
  }

  public signal(signal: NodeJS.Signals): void {
    if (this.running) {
      try {
        process.kill(this.pid!, signal);
      } catch {
        // ended meanwhile
      }
    }
  }

  /** SIGTERM, then SIGKILL once the grace period is over (PID 1 ignores signals it has no handler for, as in a container). */
  public async stop(gracePeriodMs: number): Promise<ExitStatus> {
    if (gracePeriodMs > 0) {
      this.signal('SIGTERM');
      const abort = new AbortController();
      await Promise.race([this.exited, sleep(gracePeriodMs, abort.signal)]);
      abort.abort();
    }
    this.signal('SIGKILL');
    return this.exited;
  }
}

/**
 * The command prefix that enters the container's root: setpriv sets the group, supplementary
 * groups and capability bounding set, then nsenter changes root and working directory and
 * finally the user. The bounding set keeps sys_chroot and setuid for that last step; a process
 * that ends up non-root loses every capability with the user change anyway.
 */
function switchTo(identity: ProcessIdentity, rootfs: string): string[] {
  const capabilities = identity.capabilities === 'all' ? []
    : [`--bounding-set=-all,${[...new Set([...identity.capabilities, 'sys_chroot', 'setuid'])].map((cap) => `+${cap}`).join(',')}`];
  return [
    '/usr/bin/setpriv', `--regid=${identity.gid}`,
    identity.groups.length > 0 ? `--groups=${identity.groups.join(',')}` : '--clear-groups',
    ...capabilities,
    ...(identity.noNewPrivs ? ['--no-new-privs'] : []),
    '--',
    '/usr/bin/nsenter', `--root=${rootfs}`, `--wdns=${identity.workingDir}`, ...(identity.uid === 0 ? [] : ['-S', String(identity.uid)]), '--',
  ];
}

function environment(env: ReadonlyMap<string, string>): string[] {
  return [...env].map(([name, value]) => `${name}=${value}`);
}

function nulSeparated(items: readonly string[]): string {
  return items.map((item) => `${item}\0`).join('');
}

/** The process `unshare --fork` started: PID 1 of the container's PID namespace. */
async function firstChild(pid: number, exited: Promise<ExitStatus>): Promise<number | undefined> {
  const found = await poll(exited, () => {
    try {
      return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
    } catch {
      return -1; // unshare has already ended
    }
  });
  return found === -1 ? undefined : found;
}

/** Resolves once container-init.sh has built the root filesystem and execs the container's command. */
async function started(marker: string, exited: Promise<ExitStatus>): Promise<void> {
  await poll(exited, () => existsSync(marker) || undefined);
}

/** Polls `check` every few milliseconds until it returns a value or the incarnation has ended. */
async function poll<T>(exited: Promise<ExitStatus>, check: () => T | undefined): Promise<T | undefined> {
  let ended = false;
  void exited.then(() => (ended = true));
  while (!ended) {
    const value = check();
    if (value !== undefined) {
      return value;
    }
    await sleep(2);
  }
  return undefined;
}
