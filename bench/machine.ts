/**
 * A description of the machine the benchmarks ran on, from /proc, os and the installed packages.
 * Every field degrades to '?' rather than failing: the description must never stop a run.
 */
import { execFileSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { cpus, loadavg, release, totalmem } from 'os';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly virtualization?: string;
  /** The root file system's device, type and size, and its write throughput if measured. */
  readonly disk: string;
  readonly mariadb: string;
  readonly galera: string;
  readonly mariadbBackup: string;
  readonly socat: string;
  readonly zstd: string;
  readonly node: string;
  readonly date: string;
  /** 1, 5 and 15 minute load averages. */
  readonly loadAtStart: readonly number[];
  loadAtEnd?: readonly number[];
  /** mariadbd processes running when the benchmarks started (other test runs). */
  readonly foreignServersAtStart?: number;
}

function sh(argv: string[]): string {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return '';
  }
}

function packageVersion(name: string): string {
  return sh(['dpkg-query', '-W', '-f', '${Version}', name]) || '?';
}

function disk(): string {
  const df = sh(['df', '-T', '-B1', '/tmp']).split('\n')[1]?.split(/\s+/);
  if (!df) return '?';
  const [device, type, size] = df;
  const name = device.replace(/^\/dev\//, '');
  const rotational = existsSync(`/sys/block/${name}/queue/rotational`) ? readFileSync(`/sys/block/${name}/queue/rotational`, 'utf8').trim() : '';
  const virtio = existsSync(`/sys/block/${name}/device/driver`) ? sh(['readlink', '-f', `/sys/block/${name}/device/driver`]).split('/').pop() : '';
  const gib = Math.round(Number(size) / 2 ** 30);
  return `${device} (${[type, `${gib} GiB`, virtio, rotational === '1' ? 'reported rotational' : ''].filter((s) => s).join(', ')})`;
}

function virtualization(): string | undefined {
  const cmdline = existsSync('/proc/cmdline') ? readFileSync('/proc/cmdline', 'utf8') : '';
  if (/firecracker/i.test(cmdline)) return 'Firecracker microVM';
  const detected = sh(['systemd-detect-virt']);
  if (detected && detected !== 'none') return detected;
  const hypervisor = existsSync('/proc/cpuinfo') && /\bhypervisor\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  return hypervisor ? 'virtual machine' : undefined;
}

/** The mariadbd processes running on the machine (before a benchmark starts any: other test runs). */
export function runningServers(): number {
  return sh(['pgrep', '-x', 'mariadbd']).split('\n').filter((p) => p).length;
}

export function describeMachine(): Machine {
  const cpuModel = (existsSync('/proc/cpuinfo') ? /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] : undefined) ?? cpus()[0]?.model ?? '?';
  return {
    cpuModel: cpuModel.trim(),
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    virtualization: virtualization(),
    disk: disk(),
    mariadb: packageVersion('mariadb-server'),
    galera: packageVersion('galera-4'),
    mariadbBackup: packageVersion('mariadb-backup'),
    socat: packageVersion('socat'),
    zstd: packageVersion('zstd'),
    node: process.version,
    date: new Date().toISOString(),
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    foreignServersAtStart: runningServers(),
  };
}
