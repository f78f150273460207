import { spawn } from 'child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import type { Attachment, Cluster } from './cluster';
import { ContainerLaunch, ContainerProcess, ExitStatus, Sandbox } from './container';
import { CLUSTER_DOMAIN, HostRecord, renderHosts, renderResolvConf } from './dns';
import { ContainerConfigError, containerEnvironment, expand, PodContext } from './env';
import type { Forwarder } from './forwarder';
import type { ConfigMap, Container, PodManifest, Probe, Secret } from './k8s';
import { ProbeWorker } from './probe';
import type { ImageProfile } from './profiles';
import type { BindMount } from './rootfs';
import { check, run, RunResult, sleep } from './shell';
import { ClaimStore, makeSubPath, prepareVolumes, PreparedVolume } from './volumes';

const SANDBOX = join(__dirname, 'sandbox.sh');
/** How often the kubelet retries a container whose ConfigMap, Secret or claim is missing. */
const CONFIG_RETRY_MS = 1000;
/** The capabilities a container runtime grants by default (containerd and Docker). */
const DEFAULT_CAPABILITIES = ['audit_write', 'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'mknod', 'net_bind_service', 'net_raw',
  'setfcap', 'setgid', 'setpcap', 'setuid', 'sys_chroot'];
const PARTITION_TABLE = 'podrunner-partition';

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** What a pod needs from the runner. */
export interface PodHost {
  readonly cluster: Cluster;
  readonly forwarder: Forwarder;
  readonly claims: ClaimStore;
  readonly podsDir: string;
  readonly nodeName: string;
  readonly backoff: Backoff;
  configMap(namespace: string, name: string): ConfigMap | undefined;
  secret(namespace: string, name: string): Secret | undefined;
  /** The image profile and its layer directory. */
  image(image: string | undefined): { readonly profile: ImageProfile; readonly layerDir: string };
  /** The pod's status changed (readiness, phase, deletion): endpoints, DNS and controllers follow. */
  changed(): void;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface ContainerStatus {
  readonly name: string;
  readonly state: 'waiting' | 'running' | 'terminated';
  /** Why it waits or ended: ContainerCreating, PodInitializing, CrashLoopBackOff, CreateContainerConfigError, Completed, Error. */
  readonly reason?: string;
  readonly message?: string;
  readonly exitCode?: number;
  readonly restartCount: number;
  readonly ready: boolean;
}

/** A container of a pod across its incarnations. */
class ContainerSlot {
  public readonly spec: Container;
  public readonly init: boolean;
  public restartCount = 0;
  public process: ContainerProcess | undefined;
  /** The startup probe passed (or there is none) and postStart finished. */
  public started = false;
  public readinessPassed = false;
  public probes: ProbeWorker[] = [];
  public message: string | undefined;
  private state: ContainerStatus['state'] = 'waiting';
  private reason: string | undefined = 'ContainerCreating';
  private exitCode: number | undefined;
  private backoffMs: number | undefined;
  private lastRestartAt = 0;

  constructor(spec: Container, init: boolean) {
    this.spec = spec;
    this.init = init;
  }

  public get ready(): boolean {
    return this.state === 'running' && this.started && (this.spec.readinessProbe ? this.readinessPassed : true);
  }

  public status(): ContainerStatus {
    const { state, reason, message, exitCode, restartCount } = this;
    return { name: this.spec.name, state, reason, message, exitCode, restartCount, ready: this.ready };
  }

  public waiting(reason: string, message: string): void {
    this.state = 'waiting';
    this.reason = reason;
    this.message = message;
  }

  public running(incarnation: ContainerProcess): void {
    this.process = incarnation;
    this.state = 'running';
    this.reason = this.message = this.exitCode = undefined;
    this.started = this.readinessPassed = false;
  }

  public terminated(exit: ExitStatus): void {
    this.stopProbes();
    this.state = 'terminated';
    this.reason = exit.code === 0 ? 'Completed' : 'Error';
    this.exitCode = exit.code;
    this.started = false;
  }

  public stopProbes(): void {
    this.probes.forEach((probe) => probe.stop());
    this.probes = [];
  }

  /**
   * The kubelet's restart back-off: the first restart is immediate, then the delay starts at
   * `initialMs` and doubles up to `maxMs`; it is forgotten after 2 × `maxMs` without a restart.
   */
  public nextRestartDelay(backoff: Backoff): number {
    const now = Date.now();
    let delay = 0;
    if (this.backoffMs === undefined || now - this.lastRestartAt > 2 * backoff.maxMs) {
      this.backoffMs = backoff.initialMs;
    } else {
      delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, backoff.maxMs);
    }
    this.lastRestartAt = now + delay;
    return delay;
  }
}

/**
 * A pod on this machine: a sandbox (network namespace with its own IP, UTS and IPC namespaces),
 * volumes, init containers run one after the other, then the containers, each restarted per
 * the restart policy with the kubelet's back-off, and probed.
 */
export class Pod {
  /** Creates the sandbox; the containers start with {@link start}. */
  public static async create(host: PodHost, manifest: PodManifest): Promise<Pod> {
    const pod = new Pod(host, manifest);
    await pod.createSandbox();
    return pod;
  }

  public readonly manifest: PodManifest;
  public readonly name: string;
  public readonly namespace: string;
  public phase: PodPhase = 'Pending';
  /** Deleted: DNS and endpoints drop it, its containers are being stopped. */
  public terminating = false;
  /** An error of the runner itself, not of a container. */
  public failure: Error | undefined;
  private readonly host: PodHost;
  private readonly dir: string;
  private readonly slots: ContainerSlot[];
  private readonly abort = new AbortController();
  private attachment: Attachment | undefined;
  private sandbox: Sandbox | undefined;
  private lifecycle: Promise<void> = Promise.resolve();
  private deletion: Promise<void> | undefined;
  private initialized = false;

  private constructor(host: PodHost, manifest: PodManifest) {
    this.host = host;
    this.manifest = manifest;
    this.name = manifest.metadata.name;
    this.namespace = manifest.metadata.namespace;
    this.dir = join(host.podsDir, `${this.name}-${manifest.metadata.uid.slice(0, 8)}`);
    this.slots = [
      ...(manifest.spec.initContainers ?? []).map((spec) => new ContainerSlot(spec, true)),
      ...manifest.spec.containers.map((spec) => new ContainerSlot(spec, false)),
    ];
  }

  public get ip(): string | undefined {
    return this.attachment?.ip;
  }

  public get hostname(): string {
    return this.manifest.spec.hostname ?? this.name;
  }

  /** Running and Ready, as a controller or the endpoints controller sees it. */
  public get ready(): boolean {
    return !this.terminating && this.phase === 'Running' && this.initialized && this.mainSlots().every((slot) => slot.ready);
  }

  /** The pod's own /etc/hosts line, as the kubelet writes it. */
  public get hostsEntry(): HostRecord | undefined {
    const { subdomain } = this.manifest.spec;
    const names = subdomain ? [`${this.hostname}.${subdomain}.${this.namespace}.svc.${CLUSTER_DOMAIN}`, this.hostname] : [this.hostname];
    return this.ip ? { ip: this.ip, names } : undefined;
  }

  public get hostsFile(): string {
    return join(this.dir, 'hosts');
  }

  /** A container port by number or by name (as probes and Service targetPorts name them). */
  public resolvePort(port: number | string): number {
    if (typeof port === 'number') {
      return port;
    }
    const found = this.manifest.spec.containers.flatMap((container) => container.ports ?? []).find((candidate) => candidate.name === port);
    if (!found) {
      throw new Error(`pod ${this.name} has no container port named "${port}"`);
    }
    return found.containerPort;
  }

  /** Starts the pod's lifecycle (volumes, init containers, containers) in the background. */
  public start(): void {
    if (this.terminating) {
      return;
    }
    this.lifecycle = this.run().catch((error: Error) => {
      this.failure = error;
      this.phase = 'Failed';
      this.host.changed();
    });
  }

  public containerStatuses(): ContainerStatus[] {
    return this.slots.map((slot) => slot.status());
  }

  public container(name: string): ContainerStatus {
    return this.slot(name).status();
  }

  public async exec(container: string, argv: readonly string[], options: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.running(container).exec(argv, options);
  }

  /** SIGKILL to the container's process; resolves when it has ended (the restart policy decides what follows). */
  public async killContainer(container: string): Promise<void> {
    const incarnation = this.running(container);
    incarnation.signal('SIGKILL');
    await incarnation.exited;
  }

  /** The log of the current (or previous) incarnation of a container, stdout and stderr interleaved. */
  public logs(container: string, previous = false): string {
    const slot = this.slot(container);
    const incarnation = previous ? slot.restartCount - 1 : slot.restartCount;
    const path = this.logPath(container, incarnation);
    if (incarnation < 0 || !existsSync(path)) {
      throw new Error(`no ${previous ? 'previous ' : ''}log for container "${container}" of pod ${this.name}`);
    }
    return readFileSync(path, 'utf8');
  }

  /** Cuts the pod off the network (its link on the bridge goes down), or only from the given addresses (nft). */
  public async partition(fromIps?: readonly string[]): Promise<void> {
    const attachment = this.network();
    if (!fromIps) {
      await this.host.cluster.setLink(attachment, false);
      return;
    }
    const set = `{ ${fromIps.join(', ')} }`;
    const rules = `table inet ${PARTITION_TABLE} {
  chain input { type filter hook input priority 0; ip saddr ${set} drop; }
  chain output { type filter hook output priority 0; ip daddr ${set} drop; }
}
`;
    await check(['nsenter', `--net=/run/netns/${attachment.netns}`, '--', 'nft', '-f', '-'], { stdin: rules });
  }

  public async heal(): Promise<void> {
    const attachment = this.network();
    await this.host.cluster.setLink(attachment, true);
    await run(['nsenter', `--net=/run/netns/${attachment.netns}`, '--', 'nft', 'delete', 'table', 'inet', PARTITION_TABLE]); // fails when there is none
  }

  /**
   * Deletes the pod: endpoints drop it at once, preStop hooks run, containers get SIGTERM and,
   * after the grace period, SIGKILL; then the sandbox, network and pod directory go. A second
   * call with a grace period of 0 escalates to SIGKILL.
   */
  public async delete(gracePeriodSeconds?: number): Promise<void> {
    const graceMs = (gracePeriodSeconds ?? this.manifest.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    if (this.deletion) {
      if (graceMs === 0) {
        this.slots.forEach((slot) => slot.process?.signal('SIGKILL'));
      }
      return this.deletion;
    }
    this.terminating = true;
    this.abort.abort();
    this.host.changed();
    this.deletion = this.terminate(graceMs);
    return this.deletion;
  }

  /** A multi-line summary for error messages: phase, containers, probe failures, last log lines. */
  public describe(): string {
    const lines = [`pod ${this.name}: phase ${this.phase}${this.terminating ? ' (terminating)' : ''}, ip ${this.ip ?? '-'}, ready ${this.ready}`];
    if (this.failure) {
      lines.push(`  runner error: ${this.failure.message}`);
    }
    for (const slot of this.slots) {
      const status = slot.status();
      const detail = [status.reason, status.exitCode === undefined ? undefined : `exit ${status.exitCode}`, status.message].filter(Boolean).join(', ');
      lines.push(`  ${slot.init ? 'init ' : ''}container ${status.name}: ${status.state}${detail ? ` (${detail})` : ''}, restarts ${status.restartCount}, ready ${status.ready}`);
      for (const probe of slot.probes.filter((worker) => worker.lastFailure)) {
        lines.push(`    last probe failure: ${probe.lastFailure}`);
      }
      const path = this.logPath(status.name, slot.restartCount);
      if (existsSync(path)) {
        lines.push(...readFileSync(path, 'utf8').trimEnd().split('\n').slice(-10).map((line) => `    | ${line}`));
      }
    }
    return lines.join('\n');
  }

  private async createSandbox(): Promise<void> {
    for (const sub of ['logs', 'volumes', 'containers']) {
      mkdirSync(join(this.dir, sub), { recursive: true });
    }
    this.attachment = await this.host.cluster.attachPod(this.name);
    writeFileSync(join(this.dir, 'hostname'), `${this.hostname}\n`);
    writeFileSync(join(this.dir, 'resolv.conf'), renderResolvConf(this.namespace));
    writeFileSync(this.hostsFile, renderHosts(this.hostsEntry, []));
    const child = spawn('nsenter', [`--net=/run/netns/${this.attachment.netns}`, '--', 'unshare', '--uts', '--ipc', '--', 'bash', SANDBOX, this.hostname], {
      detached: true,
      stdio: 'ignore',
    });
    const pid = child.pid!;
    // nsenter, unshare and bash exec each other: once the PID runs `sleep`, the hostname is set.
    for (let attempt = 0; readComm(pid) !== 'sleep'; attempt++) {
      if (attempt > 1000) {
        throw new Error(`the sandbox of pod ${this.name} did not start`);
      }
      await sleep(2);
    }
    this.sandbox = { netns: this.attachment.netns, pid };
  }

  private async run(): Promise<void> {
    const volumes = await this.retryWhileMisconfigured(() => prepareVolumes(this.context(), join(this.dir, 'volumes'), this.host.claims));
    if (!volumes) {
      return;
    }
    for (const slot of this.slots.filter((candidate) => candidate.init)) {
      const exit = await this.supervise(slot, volumes);
      if (this.terminating) {
        return;
      }
      if (exit.code !== 0) {
        this.phase = 'Failed';
        this.host.changed();
        return;
      }
    }
    this.initialized = true;
    this.phase = 'Running';
    this.host.changed();
    const exits = await Promise.all(this.mainSlots().map((slot) => this.supervise(slot, volumes)));
    if (!this.terminating) {
      this.phase = exits.every((exit) => exit.code === 0) ? 'Succeeded' : 'Failed';
      this.host.changed();
    }
  }

  /** Runs a container until the restart policy lets it stay ended (or the pod is deleted). */
  private async supervise(slot: ContainerSlot, volumes: Map<string, PreparedVolume>): Promise<ExitStatus> {
    const policy = this.manifest.spec.restartPolicy ?? 'Always';
    for (;;) {
      const launch = await this.retryWhileMisconfigured(() => this.launch(slot.spec, volumes), slot);
      if (!launch) {
        return { code: 137 };
      }
      const dir = join(this.dir, 'containers', `${slot.spec.name}-${slot.restartCount}`);
      mkdirSync(join(this.dir, 'logs', slot.spec.name), { recursive: true });
      const incarnation = await ContainerProcess.start(this.sandbox!, launch, dir, this.logPath(slot.spec.name, slot.restartCount));
      slot.running(incarnation);
      this.host.changed();
      if (this.terminating) {
        incarnation.signal('SIGKILL');
      } else if (!slot.init) {
        void this.startContainer(slot, incarnation);
      }
      const exit = await incarnation.exited;
      slot.terminated(exit);
      this.host.changed();
      const restart = slot.init ? exit.code !== 0 && policy !== 'Never' : policy === 'Always' || (policy === 'OnFailure' && exit.code !== 0);
      if (this.terminating || !restart) {
        return exit;
      }
      const delay = slot.nextRestartDelay(this.host.backoff);
      if (delay > 0) {
        slot.waiting('CrashLoopBackOff', `back-off ${delay / 1000}s restarting failed container`);
        this.host.changed();
        await sleep(delay, this.abort.signal);
        if (this.terminating) {
          return exit;
        }
      }
      slot.restartCount++;
    }
  }

  /** postStart, then the startup probe, then liveness and readiness probes. */
  private async startContainer(slot: ContainerSlot, incarnation: ContainerProcess): Promise<void> {
    const { spec } = slot;
    const postStart = spec.lifecycle?.postStart?.exec?.command;
    if (postStart) {
      const result = await incarnation.exec(postStart).catch((error: Error) => ({ code: -1, stderr: error.message, stdout: '' }));
      if (result.code !== 0) {
        slot.message = `FailedPostStartHook: ${(result.stderr || result.stdout).trim()}`;
        await incarnation.stop(this.gracePeriodMs());
        return;
      }
    }
    const probe = (definition: Probe, onResult: (success: boolean) => void): void => {
      slot.probes.push(new ProbeWorker(definition, (timeoutMs) => this.probeOnce(definition, incarnation, timeoutMs), onResult));
    };
    const startLivenessAndReadiness = (): void => {
      slot.started = true;
      this.host.changed();
      const liveness = spec.livenessProbe;
      if (liveness) {
        probe(liveness, (success) => {
          if (!success) {
            void this.restartAfterProbe(slot, incarnation, liveness, 'liveness');
          }
        });
      }
      if (spec.readinessProbe) {
        probe(spec.readinessProbe, (success) => {
          slot.readinessPassed = success;
          this.host.changed();
        });
      }
    };
    const startup = spec.startupProbe;
    if (!incarnation.running) {
      return;
    }
    if (startup) {
      probe(startup, (success) => {
        if (success) {
          slot.stopProbes();
          startLivenessAndReadiness();
        } else {
          void this.restartAfterProbe(slot, incarnation, startup, 'startup');
        }
      });
    } else {
      startLivenessAndReadiness();
    }
  }

  private async restartAfterProbe(slot: ContainerSlot, incarnation: ContainerProcess, probe: Probe, kind: string): Promise<void> {
    const failure = slot.probes.find((worker) => worker.lastFailure)?.lastFailure;
    slot.stopProbes();
    slot.message = `${kind} probe failed: ${failure ?? ''}`.trim();
    const graceSeconds = probe.terminationGracePeriodSeconds ?? this.manifest.spec.terminationGracePeriodSeconds ?? 30;
    await incarnation.stop(graceSeconds * 1000);
  }

  private async probeOnce(probe: Probe, incarnation: ContainerProcess, timeoutMs: number): Promise<string | undefined> {
    if (probe.exec) {
      const result = await incarnation.exec(probe.exec.command ?? [], { timeoutMs });
      if (result.timedOut) {
        return `command timed out after ${timeoutMs} ms`;
      }
      return result.code === 0 ? undefined : `exit ${result.code}: ${(result.stderr || result.stdout).trim()}`;
    }
    const port = this.resolvePort(probe.tcpSocket!.port);
    return this.host.forwarder.tcpProbe({ ip: this.ip!, port }, timeoutMs);
  }

  /** What the container's process needs: argv, env, user, mounts. Throws ContainerConfigError while a reference is missing. */
  private launch(spec: Container, volumes: Map<string, PreparedVolume>): ContainerLaunch {
    const { profile, layerDir } = this.host.image(spec.image);
    const env = containerEnvironment(this.context(), spec, profile.env);
    const command = spec.command ?? profile.entrypoint;
    const args = spec.args ?? (spec.command ? [] : profile.cmd);
    const podSecurity = this.manifest.spec.securityContext ?? {};
    const security = spec.securityContext ?? {};
    const uid = security.runAsUser ?? podSecurity.runAsUser ?? 0;
    const imageUser = profile.users.find((user) => user.uid === uid);
    const gid = security.runAsGroup ?? podSecurity.runAsGroup ?? imageUser?.gid ?? 0;
    if ((security.runAsNonRoot ?? podSecurity.runAsNonRoot) && uid === 0) {
      throw new ContainerConfigError('container has runAsNonRoot and image will run as root');
    }
    const groups = [gid, ...(podSecurity.fsGroup === undefined ? [] : [podSecurity.fsGroup]), ...(podSecurity.supplementalGroups ?? [])];
    const mounts: BindMount[] = [
      { source: this.hostsFile, target: '/etc/hosts', readOnly: false },
      { source: join(this.dir, 'hostname'), target: '/etc/hostname', readOnly: false },
      { source: join(this.dir, 'resolv.conf'), target: '/etc/resolv.conf', readOnly: false },
      ...(spec.volumeMounts ?? []).map((mount): BindMount => {
        const volume = volumes.get(mount.name)!;
        const subPath = mount.subPathExpr ? expand(mount.subPathExpr, env) : mount.subPath;
        let source = volume.path;
        if (subPath) {
          source = volume.readOnly ? realpathSync(join(volume.path, subPath)) : makeSubPath(volume.path, subPath);
        }
        return { source, target: mount.mountPath, readOnly: volume.readOnly || (mount.readOnly ?? false) };
      }),
    ];
    return {
      argv: [...command, ...args].map((arg) => expand(arg, env)),
      env,
      uid,
      gid,
      groups: [...new Set(groups)],
      capabilities: security.privileged ? 'all' : capabilities(security.capabilities),
      noNewPrivs: security.allowPrivilegeEscalation === false,
      workingDir: spec.workingDir ?? '/',
      layerDir,
      mounts,
      readOnlyRoot: security.readOnlyRootFilesystem ?? false,
    };
  }

  /** Retries `attempt` while it throws ContainerConfigError, showing the error on `slot`; undefined once the pod is deleted. */
  private async retryWhileMisconfigured<T>(attempt: () => T | Promise<T>, slot?: ContainerSlot): Promise<T | undefined> {
    while (!this.terminating) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof ContainerConfigError)) {
          throw error;
        }
        for (const target of slot ? [slot] : this.slots) {
          target.waiting(slot ? 'CreateContainerConfigError' : 'ContainerCreating', error.message);
        }
        await sleep(CONFIG_RETRY_MS, this.abort.signal);
      }
    }
    return undefined;
  }

  private async terminate(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    await Promise.all(this.slots.map(async (slot) => {
      const incarnation = slot.process;
      if (!incarnation?.running) {
        return;
      }
      const preStop = slot.spec.lifecycle?.preStop?.exec?.command;
      if (preStop && graceMs > 0) {
        await incarnation.exec(preStop, { timeoutMs: graceMs }).catch(() => undefined);
      }
      await incarnation.stop(Math.max(0, deadline - Date.now()));
    }));
    await this.lifecycle;
    if (this.attachment) {
      await this.host.cluster.detach(this.attachment); // kills the sandbox and anything else left in the pod's namespace
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private context(): PodContext {
    return {
      pod: this.manifest,
      podIp: this.ip ?? '',
      nodeName: this.host.nodeName,
      nodeIp: this.host.cluster.bridgeIp,
      configMap: (name) => this.host.configMap(this.namespace, name),
      secret: (name) => this.host.secret(this.namespace, name),
    };
  }

  private gracePeriodMs(): number {
    return (this.manifest.spec.terminationGracePeriodSeconds ?? 30) * 1000;
  }

  private network(): Attachment {
    if (!this.attachment || this.terminating) {
      throw new Error(`pod ${this.name} has no network`);
    }
    return this.attachment;
  }

  private mainSlots(): ContainerSlot[] {
    return this.slots.filter((slot) => !slot.init);
  }

  private running(container: string): ContainerProcess {
    const incarnation = this.slot(container).process;
    if (!incarnation?.running) {
      throw new Error(`container "${container}" of pod ${this.name} is not running`);
    }
    return incarnation;
  }

  private slot(name: string): ContainerSlot {
    const slot = this.slots.find((candidate) => candidate.spec.name === name);
    if (!slot) {
      throw new Error(`pod ${this.name} has no container "${name}"`);
    }
    return slot;
  }

  private logPath(container: string, incarnation: number): string {
    return join(this.dir, 'logs', container, `${incarnation}.log`);
  }
}

/** setpriv names of the capability bounding set: the runtime's defaults, plus `add`, minus `drop`. */
function capabilities(changes: { add?: string[]; drop?: string[] } | undefined): string[] {
  const name = (capability: string): string => capability.toLowerCase().replace(/^cap_/, '');
  const dropped = (changes?.drop ?? []).map(name);
  const base = dropped.includes('all') ? [] : DEFAULT_CAPABILITIES.filter((capability) => !dropped.includes(capability));
  return [...new Set([...base, ...(changes?.add ?? []).map(name)])];
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
