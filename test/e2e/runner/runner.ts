import { ChildProcess, spawn } from 'child_process';
import { randomUUID } from 'crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { Socket } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { Claims } from './claims';
import { Cluster, NETNS_PREFIX, runnerNetnsPrefix } from './cluster';
import { NetworkIdentity, readConnectionRecord, RecordedConnection, startConnectionRecord } from './connections';
import { renderHosts, renderResolvConf, writeInPlace } from './dns';
import { Forwarder } from './forwarder';
import { buildImageLayer } from './image-layer';
import { JobDefinition, JobResult, runJob } from './job';
import type { ConfigMap, CronJob, Job, Manifest, PodManifest, Secret, Service, StatefulSet } from './k8s';
import { Backoff, ContainerStatus, Pod, PodHost, PodPhase } from './pod';
import { ImageProfile, profileFor } from './profiles';
import { dnsRecords, forwarderListeners, ServiceEntry } from './services';
import { run, RunResult, sleep } from './shell';
import { StatefulSetController } from './statefulset';
import { validatePodSpec } from './validate';

/** Every runner keeps its files below this directory, in a directory named after it. */
export const RUNNER_BASE_DIR = join(tmpdir(), 'pod-runner');
const CLIENT_RUN = join(__dirname, 'client-run.sh');
const PREFLIGHT = join(__dirname, 'preflight.sh');
const WATCHDOG = join(__dirname, 'watchdog.sh');
const RECONCILE_INTERVAL_MS = 100;
const POLL_MS = 50;
/** Kinds that are recorded (see {@link PodRunner.recorded}) but have no effect on the runner. */
const RECORDED_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', 'HorizontalPodAutoscaler', 'Ingress', 'Namespace', 'NetworkPolicy',
  'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'Role', 'RoleBinding', 'ServiceAccount', 'ServiceMonitor']);

export interface PodRunnerOptions {
  /** Distinct for each test file (lowercase letters, digits and '-'): names the runner's namespaces and directory. */
  readonly name: string;
  /** Namespace of manifests without one, and of the client. Default `default`. */
  readonly namespace?: string;
  /** Container restart back-off; the kubelet's is 10 s doubling up to 300 s (the default). */
  readonly restartBackoff?: Partial<Backoff>;
  /** Record every new TCP connection on the cluster network, for {@link PodRunner.connections}. Default false. */
  readonly recordConnections?: boolean;
}

export interface ExecOptions {
  readonly stdin?: string | Buffer;
  /** Default 120 s. */
  readonly timeoutMs?: number;
}

export interface PodStatus {
  readonly phase: PodPhase;
  readonly ip: string | undefined;
  readonly ready: boolean;
  readonly terminating: boolean;
  readonly containers: readonly ContainerStatus[];
}

/** Anything `apply` accepts: synthesized manifests, or a chart to synthesize. */
export type Manifests = readonly object[] | { toJson(): object[] };

/**
 * Runs synthesized Kubernetes manifests on this machine as a cluster would: each pod in its own
 * network, UTS, IPC, mount and PID namespaces with an overlay root filesystem, Debian's MariaDB,
 * Galera and mariadb-backup standing in for the container images. See README.md.
 */
export class PodRunner {
  /** Checks the machine, removes what a crashed runner of the same name left, and starts the cluster. */
  public static async start(options: PodRunnerOptions): Promise<PodRunner> {
    if (!/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/.test(options.name)) {
      throw new Error(`runner name "${options.name}": use 1-20 lowercase letters, digits and '-'`);
    }
    const preflight = await run(['bash', PREFLIGHT, join(RUNNER_BASE_DIR, `.preflight-${options.name}`)]);
    if (preflight.code !== 0) {
      throw new Error(preflight.stderr.trim() || preflight.stdout.trim());
    }
    await PodRunner.cleanupStale(options.name);
    const runner = new PodRunner(options);
    try {
      await runner.boot();
    } catch (error) {
      await runner.stop();
      throw error;
    }
    return runner;
  }

  /**
   * Removes what earlier runners left behind when their process died: processes and network
   * namespaces named `podrun-<name>.*` and the runner directory. Without a name: of every runner,
   * so never without a name while other runners may be running.
   */
  public static async cleanupStale(name?: string): Promise<void> {
    await Cluster.removeNamespaces(name === undefined ? NETNS_PREFIX : runnerNetnsPrefix(name));
    if (name !== undefined) {
      rmSync(join(RUNNER_BASE_DIR, name), { recursive: true, force: true });
    } else if (existsSync(RUNNER_BASE_DIR)) {
      readdirSync(RUNNER_BASE_DIR).forEach((entry) => rmSync(join(RUNNER_BASE_DIR, entry), { recursive: true, force: true }));
    }
  }

  public readonly name: string;
  public readonly namespace: string;
  private readonly dir: string;
  private readonly backoff: Backoff;
  private readonly claims: Claims;
  private readonly configMaps = new Map<string, ConfigMap>();
  private readonly secrets = new Map<string, Secret>();
  private readonly services = new Map<string, ServiceEntry>();
  private readonly statefulSets = new Map<string, StatefulSetController>();
  private readonly jobs = new Map<string, { readonly definition: JobDefinition; readonly cronJob: boolean }>();
  private readonly records: Manifest[] = [];
  private readonly pods = new Map<string, Pod>();
  /** Pods being created, by key: they count as existing, and stop() waits for them. */
  private readonly creating = new Map<string, Promise<Pod>>();
  private readonly imageLayers = new Map<string, string>();
  private readonly recordConnections: boolean;
  /** What each address of the cluster network was: every pod incarnation and Service address so far. */
  private readonly identities = new Map<string, NetworkIdentity>();
  private cluster: Cluster | undefined;
  private forwarder: Forwarder | undefined;
  private clientNetns: string | undefined;
  private watchdog: ChildProcess | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private syncError: Error | undefined;
  private stopped = false;

  private constructor(options: PodRunnerOptions) {
    this.name = options.name;
    this.namespace = options.namespace ?? 'default';
    this.dir = join(RUNNER_BASE_DIR, options.name);
    this.backoff = { initialMs: options.restartBackoff?.initialMs ?? 10_000, maxMs: options.restartBackoff?.maxMs ?? 300_000 };
    this.claims = new Claims(join(this.dir, 'claims'));
    this.recordConnections = options.recordConnections ?? false;
  }

  /**
   * Applies manifests in order: ConfigMaps, Secrets, Services, PersistentVolumeClaims,
   * StatefulSets (created or updated) and bare Pods take effect; Jobs and CronJobs are kept for
   * {@link runJob}; PodDisruptionBudgets, NetworkPolicies, ServiceMonitors and RBAC objects are
   * only recorded. Everything is validated before anything is applied: an image that cannot run
   * here (mysql:*) or a feature the runner lacks makes it throw.
   */
  public async apply(manifests: Manifests): Promise<void> {
    const objects = ('toJson' in manifests ? manifests.toJson() : manifests) as Manifest[];
    objects.forEach((manifest) => this.validate(manifest));
    for (const manifest of objects) {
      await this.applyOne(manifest);
    }
    this.changed();
    await this.settle();
  }

  /** Waits until the pod exists and is Ready (and cluster DNS and Services reflect that). */
  public async waitForReady(pod: string, timeoutMs = 120_000): Promise<void> {
    await this.waitFor(`pod ${pod} to be ready`, () => this.pods.get(this.key(pod))?.ready ?? false, timeoutMs, [pod]);
  }

  /** Waits until pods 0..replicas-1 of the StatefulSet are Ready at its current revision and no other pod of it exists. */
  public async waitForStatefulSetReady(name: string, replicas: number, timeoutMs = 180_000): Promise<void> {
    const controller = this.statefulSet(name);
    await this.waitFor(`statefulset ${name} to have ${replicas} ready replicas`, () => controller.isSettled(replicas), timeoutMs,
      Array.from({ length: replicas + 1 }, (_, ordinal) => `${name}-${ordinal}`), () => controller.lastError);
  }

  /** Waits until the pod is gone (deleted and cleaned up); a StatefulSet may create it again afterwards. */
  public async waitForPodGone(pod: string, timeoutMs = 60_000): Promise<void> {
    await this.waitFor(`pod ${pod} to be gone`, () => !this.pods.has(this.key(pod)), timeoutMs, [pod]);
  }

  /** Polls `condition`; on timeout throws with the state of the given pods (and what `error` reports). */
  public async waitFor(what: string, condition: () => boolean, timeoutMs: number, pods: readonly string[] = [],
    error?: () => Error | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (this.stopped) {
        throw new Error(`runner stopped while waiting for ${what}`);
      }
      if (Date.now() > deadline) {
        const details = pods.map((pod) => this.pods.get(this.key(pod))?.describe() ?? `pod ${pod}: does not exist`);
        const cause = error?.() ?? this.syncError;
        throw new Error([`timed out after ${timeoutMs} ms waiting for ${what}`, ...(cause ? [`error: ${cause.message}`] : []), ...details].join('\n'));
      }
      await sleep(POLL_MS);
    }
    await this.settle();
  }

  /** Runs a command in a container (kubectl exec): its namespaces, root, user, working directory and environment. */
  public async exec(pod: string, container: string, argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    return this.pod(pod).exec(container, argv, { stdin: options.stdin, timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /**
   * Runs a command of this machine (e.g. the `mariadb` client) from the client namespace, a
   * machine on the cluster network that resolves Service names like a pod in the runner's namespace.
   */
  public async client(argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    return run(['nsenter', `--net=/run/netns/${this.clientNetns}`, '--', 'unshare', '--mount', '--propagation', 'private', '--',
      'bash', CLIENT_RUN, this.clientFile('hosts'), this.clientFile('resolv.conf'), ...argv], { stdin: options.stdin, timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /** Sets the StatefulSet's replicas (kubectl scale); wait with {@link waitForStatefulSetReady}. */
  public async scale(statefulSet: string, replicas: number): Promise<void> {
    this.statefulSet(statefulSet).scale(replicas);
    this.reconcile();
  }

  /** SIGKILL to a container's process; resolves when it has ended. The restart policy then restarts it. */
  public async killContainer(pod: string, container: string): Promise<void> {
    await this.pod(pod).killContainer(container);
  }

  /**
   * Deletes a pod and resolves once it is gone: graceful (preStop, SIGTERM, SIGKILL after the
   * grace period) or, with `force`, SIGKILL at once. Its controller creates it again.
   */
  public async deletePod(pod: string, options: { force?: boolean; gracePeriodSeconds?: number } = {}): Promise<void> {
    await this.removePod(this.pod(pod), options.force ? 0 : options.gracePeriodSeconds);
  }

  /** Cuts a pod off the network, or with `from` only from those pods (both directions). */
  public async partition(pod: string, options: { from?: readonly string[] } = {}): Promise<void> {
    await this.pod(pod).partition(options.from?.map((peer) => this.podIP(peer)));
  }

  /** Undoes {@link partition}. */
  public async heal(pod: string): Promise<void> {
    await this.pod(pod).heal();
  }

  public isReady(pod: string): boolean {
    return this.pods.get(this.key(pod))?.ready ?? false;
  }

  public restartCount(pod: string, container: string): number {
    return this.pod(pod).container(container).restartCount;
  }

  /** A container's log (stdout and stderr), of the current or with `previous` the previous incarnation. */
  public logs(pod: string, container: string, options: { previous?: boolean } = {}): string {
    return this.pod(pod).logs(container, options.previous);
  }

  public podIP(pod: string): string {
    const ip = this.pod(pod).ip;
    if (!ip) {
      throw new Error(`pod ${pod} has no IP`);
    }
    return ip;
  }

  public status(pod: string): PodStatus | undefined {
    const found = this.pods.get(this.key(pod));
    return found && { phase: found.phase, ip: found.ip, ready: found.ready, terminating: found.terminating, containers: found.containerStatuses() };
  }

  /** Names of the pods that exist, sorted. */
  public podNames(): string[] {
    return [...this.pods.values()].map((pod) => pod.name).sort();
  }

  /** A readable summary of every pod (phase, containers, last log lines) for failure messages. */
  public describe(): string {
    return [...this.pods.values()].map((pod) => pod.describe()).join('\n');
  }

  /** Applied objects the runner only records (PodDisruptionBudget, NetworkPolicy, ServiceMonitor, …), optionally of one kind. */
  public recorded(kind?: string): Manifest[] {
    return this.records.filter((manifest) => kind === undefined || manifest.kind === kind);
  }

  /**
   * Every distinct (source, destination, port) of the new TCP connections made on the cluster
   * network since the start (needs `recordConnections`), with what each address was: a pod
   * incarnation (name, namespace, labels, container ports), a Service's virtual address (a
   * connection through a ClusterIP Service appears as the client pod's connection to the Service
   * address, then as the node's connection to the chosen endpoint), the node, or the test client.
   */
  public async connections(): Promise<RecordedConnection[]> {
    if (!this.recordConnections) {
      throw new Error('connections() needs a runner started with recordConnections: true');
    }
    const identity = (ip: string): NetworkIdentity => this.identities.get(ip) ?? { kind: 'unknown' };
    return (await readConnectionRecord(this.cluster!.netns)).map((c) => ({
      sourceIp: c.source, destinationIp: c.destination, port: c.port, source: identity(c.source), destination: identity(c.destination),
    }));
  }

  /** Runs an applied Job, or a CronJob's jobTemplate (as if triggered now), to completion. */
  public async runJob(name: string): Promise<JobResult> {
    const job = this.jobs.get(this.key(name));
    if (!job) {
      throw new Error(`no Job or CronJob named ${name} was applied`);
    }
    const host = {
      backoff: this.backoff,
      createPod: (manifest: PodManifest) => this.createPod(manifest),
      deletePod: (pod: Pod) => this.removePod(pod, 0),
    };
    // A CronJob's Job is named after its schedule time in minutes.
    const jobName = job.cronJob ? `${job.definition.name}-${Math.floor(Date.now() / 60_000)}` : job.definition.name;
    return runJob(host, { ...job.definition, name: jobName });
  }

  /** Stops every pod (SIGKILL), the forwarder and the network, and removes the runner's directory. */
  public async stop(): Promise<void> {
    if (this.stopped) {
      return;
    }
    this.stopped = true;
    clearInterval(this.reconcileTimer);
    await Promise.all([...this.statefulSets.values()].map((controller) => controller.idle()));
    await Promise.all([...this.creating.values()].map((creation) => creation.catch(() => undefined)));
    await Promise.all([...this.pods.values()].map((pod) => pod.delete(0).catch(() => undefined)));
    await this.syncing;
    await this.forwarder?.stop();
    await this.cluster?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    this.watchdog?.stdin?.end('stopped\n');
  }

  private async boot(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.watchdog = spawn('bash', [WATCHDOG, runnerNetnsPrefix(this.name), this.dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    // Neither the watchdog nor its pipe keeps this process alive.
    this.watchdog.unref();
    (this.watchdog.stdin as Socket).unref();
    this.cluster = await Cluster.create(this.name);
    if (this.recordConnections) {
      await startConnectionRecord(this.cluster.netns);
    }
    this.identities.set(this.cluster.bridgeIp, { kind: 'node' });
    this.forwarder = await Forwarder.start(this.cluster.netns, this.dir);
    const client = await this.cluster.attachClient();
    this.clientNetns = client.netns;
    this.identities.set(client.ip, { kind: 'client' });
    mkdirSync(join(this.dir, 'client'));
    writeFileSync(this.clientFile('hosts'), renderHosts(undefined, []));
    writeFileSync(this.clientFile('resolv.conf'), renderResolvConf(this.namespace));
    this.reconcileTimer = setInterval(() => this.reconcile(), RECONCILE_INTERVAL_MS);
  }

  private validate(manifest: Manifest): void {
    const where = `${manifest.kind} ${manifest.metadata?.name}`;
    if (manifest.kind === 'StatefulSet') {
      const spec = (manifest as StatefulSet).spec!;
      validatePodSpec(spec.template.spec!, where, (spec.volumeClaimTemplates ?? []).map((claim) => claim.metadata!.name!));
    } else if (manifest.kind === 'Job') {
      validatePodSpec((manifest as Job).spec!.template.spec!, where);
    } else if (manifest.kind === 'CronJob') {
      validatePodSpec((manifest as CronJob).spec!.jobTemplate.spec!.template.spec!, where);
    } else if (manifest.kind === 'Pod') {
      validatePodSpec((manifest as unknown as PodManifest).spec, where);
    } else if (!['ConfigMap', 'Secret', 'Service', 'PersistentVolumeClaim'].includes(manifest.kind) && !RECORDED_KINDS.has(manifest.kind)) {
      throw new Error(`${where}: the pod runner cannot run ${manifest.kind} objects`);
    }
  }

  private async applyOne(manifest: Manifest): Promise<void> {
    const namespace = manifest.metadata?.namespace ?? this.namespace;
    const name = manifest.metadata!.name!;
    const key = `${namespace}/${name}`;
    switch (manifest.kind) {
      case 'ConfigMap':
        this.configMaps.set(key, manifest as ConfigMap);
        break;
      case 'Secret':
        this.secrets.set(key, manifest as Secret);
        break;
      case 'Service':
        await this.applyService(manifest as Service, namespace, name);
        break;
      case 'PersistentVolumeClaim':
        this.claims.ensure(namespace, name);
        break;
      case 'StatefulSet': {
        const existing = this.statefulSets.get(key);
        if (existing) {
          existing.update(manifest as StatefulSet);
        } else {
          this.statefulSets.set(key, new StatefulSetController(this.statefulSetHost(), manifest as StatefulSet, namespace));
        }
        break;
      }
      case 'Job':
      case 'CronJob': {
        const cronJob = manifest.kind === 'CronJob';
        const spec = cronJob ? (manifest as CronJob).spec!.jobTemplate.spec! : (manifest as Job).spec!;
        const { backoffLimit, completions, activeDeadlineSeconds } = spec;
        const template = { metadata: spec.template.metadata, spec: spec.template.spec! };
        this.jobs.set(key, { definition: { name, namespace, template, backoffLimit, completions, activeDeadlineSeconds }, cronJob });
        break;
      }
      case 'Pod': {
        const pod = manifest as unknown as PodManifest;
        await this.createPod({ metadata: { ...pod.metadata, name, namespace, uid: randomUUID() }, spec: pod.spec });
        break;
      }
      default:
        this.records.push(manifest);
    }
  }

  private async applyService(manifest: Service, namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const headless = manifest.spec?.clusterIP === 'None' || manifest.spec?.type === 'ExternalName';
    const existing = this.services.get(key);
    const clusterIp = headless ? undefined : existing?.clusterIp ?? await this.cluster!.allocateServiceIp();
    this.services.set(key, { manifest, name, namespace, clusterIp });
    if (clusterIp) {
      this.identities.set(clusterIp, { kind: 'service', name, namespace, manifest });
    }
  }

  private async createPod(manifest: PodManifest): Promise<Pod> {
    const key = `${manifest.metadata.namespace}/${manifest.metadata.name}`;
    if (this.pods.has(key) || this.creating.has(key)) {
      throw new Error(`pod ${key} already exists`);
    }
    if (this.stopped) {
      throw new Error('the runner is stopped');
    }
    const creation = (async () => {
      const pod = await Pod.create(this.podHost(), manifest);
      const { spec, metadata } = manifest;
      this.identities.set(pod.ip!, {
        kind: 'pod',
        name: metadata.name,
        namespace: metadata.namespace,
        labels: { ...metadata.labels },
        ports: [...(spec.initContainers ?? []), ...spec.containers].flatMap((c) => (c.ports ?? []).map((p) => ({ ...p }))),
      });
      this.pods.set(key, pod);
      this.changed();
      await this.settle(); // its name resolves before its containers start
      pod.start();
      return pod;
    })();
    this.creating.set(key, creation);
    try {
      return await creation;
    } finally {
      this.creating.delete(key);
    }
  }

  private async removePod(pod: Pod, gracePeriodSeconds?: number): Promise<void> {
    await pod.delete(gracePeriodSeconds);
    const key = `${pod.namespace}/${pod.name}`;
    if (this.pods.get(key) === pod) {
      this.pods.delete(key);
    }
    this.changed();
  }

  private podHost(): PodHost {
    return {
      cluster: this.cluster!,
      forwarder: this.forwarder!,
      claims: this.claims,
      podsDir: join(this.dir, 'pods'),
      nodeName: `${this.name}-node`,
      backoff: this.backoff,
      configMap: (namespace, name) => this.configMaps.get(`${namespace}/${name}`),
      secret: (namespace, name) => this.secrets.get(`${namespace}/${name}`),
      image: (image) => this.image(image),
      changed: () => this.changed(),
    };
  }

  private statefulSetHost(): ConstructorParameters<typeof StatefulSetController>[0] {
    return {
      claims: this.claims,
      pods: (namespace) => [...this.pods.values()].filter((pod) => pod.namespace === namespace),
      createPod: (manifest) => this.createPod(manifest),
      deletePod: (pod) => this.removePod(pod),
    };
  }

  private image(image: string | undefined): { profile: ImageProfile; layerDir: string } {
    const profile = profileFor(image);
    let layerDir = this.imageLayers.get(profile.name);
    if (!layerDir) {
      layerDir = buildImageLayer(join(this.dir, 'images'), profile);
      this.imageLayers.set(profile.name, layerDir);
    }
    return { profile, layerDir };
  }

  /** Something changed: bring hosts files and the forwarder up to date (coalescing bursts), and let controllers act. */
  private changed(): void {
    if (this.stopped) {
      return;
    }
    this.reconcile();
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.syncNetwork();
          this.syncError = undefined;
        } catch (error) {
          this.syncError = error as Error;
        }
      } while (this.syncAgain && !this.stopped);
      this.syncing = undefined;
    })();
  }

  /** Resolves once hosts files and the forwarder reflect every change so far. */
  private async settle(): Promise<void> {
    while (this.syncing) {
      await this.syncing;
    }
  }

  private async syncNetwork(): Promise<void> {
    const pods = [...this.pods.values()];
    const services = [...this.services.values()];
    for (const pod of pods.filter((candidate) => !candidate.terminating && existsSync(candidate.hostsFile))) {
      const aliases = (pod.manifest.spec.hostAliases ?? []).map((alias) => ({ ip: alias.ip!, names: alias.hostnames ?? [] }));
      writeInPlace(pod.hostsFile, renderHosts(pod.hostsEntry, [...aliases, ...dnsRecords(services, pods, pod.namespace)]));
    }
    writeInPlace(this.clientFile('hosts'), renderHosts(undefined, dnsRecords(services, pods, this.namespace)));
    await this.forwarder!.sync(forwarderListeners(services, pods));
  }

  private reconcile(): void {
    if (!this.stopped) {
      this.statefulSets.forEach((controller) => void controller.reconcile());
    }
  }

  private statefulSet(name: string): StatefulSetController {
    const controller = this.statefulSets.get(this.key(name));
    if (!controller) {
      throw new Error(`no StatefulSet named ${name} was applied`);
    }
    return controller;
  }

  private pod(name: string): Pod {
    const pod = this.pods.get(this.key(name));
    if (!pod) {
      throw new Error(`pod ${name} does not exist (pods: ${this.podNames().join(', ') || 'none'})`);
    }
    return pod;
  }

  /** `name` in the runner's namespace, or `namespace/name`. */
  private key(name: string): string {
    return name.includes('/') ? name : `${this.namespace}/${name}`;
  }

  private clientFile(name: string): string {
    return join(this.dir, 'client', name);
  }
}
