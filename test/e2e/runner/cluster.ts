import { check, run, sleep } from './shell';

/** Every network namespace a runner creates starts with this, followed by the runner's name. */
export const NETNS_PREFIX = 'podrun-';

/**
 * The prefix of one runner's network namespaces. Runner names have no dots, so the dot keeps
 * runner `galera` from matching the namespaces of runner `galera-e2e`.
 */
export function runnerNetnsPrefix(runner: string): string {
  return `${NETNS_PREFIX}${runner}.`;
}

const BRIDGE = 'br0';
/** The cluster network. It exists only on the bridge inside the cluster namespace and in the pods. */
const SUBNET_PREFIX = 16;
const BRIDGE_IP = '10.77.0.1';
/**
 * The bridge's own (locally administered) MAC address. Without one, a Linux bridge takes the
 * lowest MAC of its ports, which changes as pods come and go: clients that cached the old one for
 * the Service addresses on the bridge would time out connecting until their ARP entry expired.
 */
const BRIDGE_MAC = '02:00:0a:4d:00:01';
const CLIENT_IP = '10.77.0.2';
/** Pods get 10.77.0-127.x, Services 10.77.128-255.x; the last octet runs from 10 to 249. */
const POD_BLOCK = 0;
const SERVICE_BLOCK = 128;
const HOSTS_PER_BLOCK = 240;

/** A network namespace plugged into the cluster bridge. */
export interface Attachment {
  readonly netns: string;
  /** The bridge side of the veth pair, in the cluster namespace (the pod side is `eth0`). */
  readonly veth: string;
  readonly ip: string;
}

/**
 * The cluster network: a namespace that holds only a bridge, with no uplink and no route out,
 * and one network namespace per pod plugged into it with a veth pair. The node forwarder
 * (ClusterIP Services) runs inside the cluster namespace; the client namespace is plugged in
 * like a pod.
 */
export class Cluster {
  public static async create(runner: string): Promise<Cluster> {
    const cluster = new Cluster(runner);
    const ns = cluster.netns;
    await check(['ip', 'netns', 'add', ns]);
    await check(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await check(['ip', '-n', ns, 'link', 'add', BRIDGE, 'address', BRIDGE_MAC, 'type', 'bridge']);
    await check(['ip', '-n', ns, 'addr', 'add', `${BRIDGE_IP}/${SUBNET_PREFIX}`, 'dev', BRIDGE]);
    await check(['ip', '-n', ns, 'link', 'set', BRIDGE, 'up']);
    return cluster;
  }

  /** Kills every process left in the runner's namespaces and deletes the namespaces. */
  public static async removeNamespaces(namePrefix: string): Promise<void> {
    const listing = await check(['ip', 'netns', 'list']);
    const stale = listing.split('\n').map((line) => line.split(' ')[0]).filter((ns) => ns.startsWith(namePrefix));
    for (const ns of stale) {
      await killNamespaceProcesses(ns);
      await check(['ip', 'netns', 'del', ns]);
    }
  }

  public readonly netns: string;
  public readonly bridgeIp = BRIDGE_IP;
  private readonly runner: string;
  private nextPod = 0;
  private nextService = 0;
  private nextVeth = 0;

  private constructor(runner: string) {
    this.runner = runner;
    this.netns = `${runnerNetnsPrefix(runner)}cluster`;
  }

  /** Creates the namespace of a new pod incarnation with a fresh IP, like a CNI plugin. */
  public async attachPod(podName: string): Promise<Attachment> {
    const veth = `v${this.nextVeth++}-${podName}`.slice(0, 15); // interface names are at most 15 characters
    return this.attach(`${runnerNetnsPrefix(this.runner)}pod-${podName}-${this.nextVeth}`, veth, address(POD_BLOCK, this.nextPod++));
  }

  public async attachClient(): Promise<Attachment> {
    return this.attach(`${runnerNetnsPrefix(this.runner)}client`, 'vclient', CLIENT_IP);
  }

  /** Deletes a pod's namespace (and with it the veth pair) once its processes are gone. */
  public async detach(attachment: Attachment): Promise<void> {
    await killNamespaceProcesses(attachment.netns);
    await check(['ip', 'netns', 'del', attachment.netns]);
  }

  /** Takes the pod's link on the bridge down (a partition) or up again. */
  public async setLink(attachment: Attachment, up: boolean): Promise<void> {
    await check(['ip', '-n', this.netns, 'link', 'set', attachment.veth, up ? 'up' : 'down']);
  }

  /** A virtual address for a ClusterIP Service, owned by the bridge so the forwarder can listen on it. */
  public async allocateServiceIp(): Promise<string> {
    const ip = address(SERVICE_BLOCK, this.nextService++);
    await check(['ip', '-n', this.netns, 'addr', 'add', `${ip}/32`, 'dev', BRIDGE]);
    return ip;
  }

  public async destroy(): Promise<void> {
    await Cluster.removeNamespaces(runnerNetnsPrefix(this.runner));
  }

  private async attach(netns: string, veth: string, ip: string): Promise<Attachment> {
    await check(['ip', 'netns', 'add', netns]);
    await check(['ip', '-n', this.netns, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await check(['ip', '-n', this.netns, 'link', 'set', veth, 'master', BRIDGE, 'up']);
    await check(['ip', '-n', netns, 'addr', 'add', `${ip}/${SUBNET_PREFIX}`, 'dev', 'eth0']);
    await check(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
    await check(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    return { netns, veth, ip };
  }
}

function address(firstBlock: number, index: number): string {
  const block = firstBlock + Math.floor(index / HOSTS_PER_BLOCK);
  if (block >= firstBlock + 128) {
    throw new Error('the cluster network ran out of addresses');
  }
  return `10.77.${block}.${10 + (index % HOSTS_PER_BLOCK)}`;
}

async function killNamespaceProcesses(netns: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const result = await run(['ip', 'netns', 'pids', netns]);
    const pids = result.stdout.split('\n').filter(Boolean).map(Number);
    if (result.code !== 0 || pids.length === 0) {
      return;
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await sleep(50);
  }
  throw new Error(`processes in network namespace ${netns} survived SIGKILL`);
}
