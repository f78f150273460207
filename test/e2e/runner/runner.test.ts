import { execFileSync, spawn, spawnSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { PodRunner, PodRunnerOptions, RUNNER_BASE_DIR } from './index';

jest.setTimeout(120_000);

const RUNNER = 'runner-test';
/** A container that keeps running and exits at once on SIGTERM. */
const IDLE = ['bash', '-c', 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done'];
/** Ready while /tmp/ready exists, checked every second. */
const READY_FILE_PROBE: k8s.Probe = { exec: { command: ['test', '-e', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 1 };

interface WorkloadProps {
  readonly replicas?: number;
  readonly podManagementPolicy?: 'OrderedReady' | 'Parallel';
  readonly containers: k8s.Container[];
  readonly initContainers?: k8s.Container[];
  readonly volumes?: k8s.Volume[];
  readonly claims?: string[];
  readonly securityContext?: k8s.PodSecurityContext;
  /** Also create a headless Service named like the StatefulSet. */
  readonly headless?: boolean;
}

/** A StatefulSet `name` whose pods carry the label app=<name>. */
function statefulSet(chart: Chart, name: string, props: WorkloadProps): void {
  if (props.headless ?? true) {
    new k8s.KubeService(chart, `${name}-headless`, {
      metadata: { name },
      spec: { clusterIp: 'None', selector: { app: name }, ports: [{ port: 8080 }] },
    });
  }
  new k8s.KubeStatefulSet(chart, name, {
    metadata: { name },
    spec: {
      serviceName: name,
      replicas: props.replicas ?? 1,
      podManagementPolicy: props.podManagementPolicy,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 2,
          securityContext: props.securityContext,
          initContainers: props.initContainers,
          containers: props.containers,
          volumes: props.volumes,
        },
      },
      volumeClaimTemplates: (props.claims ?? []).map((claim) => ({
        metadata: { name: claim },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: k8s.Quantity.fromString('1Gi') } } },
      })),
    },
  });
}

/** A container of the mariadb image running `script` with bash. */
function container(name: string, script: string, extra: Partial<k8s.Container> = {}): k8s.Container {
  return { name, image: 'mariadb:10.11', command: ['bash', '-c', script], ...extra };
}

/** Answers every TCP connection on :8080 with the pod's hostname; ready while it listens and its /tmp/ready exists. */
function hostnameServer(): k8s.Container {
  return container('server', 'touch /tmp/ready; exec socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:hostname', {
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { exec: { command: ['bash', '-c', 'test -e /tmp/ready && ss -Hltn sport = :8080 | grep -q .'] }, periodSeconds: 1, failureThreshold: 1 },
  });
}

let runner: PodRunner | undefined;

async function startRunner(options: Partial<PodRunnerOptions> = {}): Promise<PodRunner> {
  runner = await PodRunner.start({ name: RUNNER, ...options });
  return runner;
}

async function sh(rt: PodRunner, pod: string, script: string, containerName = 'main'): Promise<string> {
  const result = await rt.exec(pod, containerName, ['bash', '-c', script]);
  if (result.code !== 0) {
    throw new Error(`${pod}: ${script} exited ${result.code}: ${result.stderr}`);
  }
  return result.stdout.trim();
}

function leftovers(name: string): string[] {
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith(`podrun-${name}.`));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => new RegExp(`pod-runner/${name}[/ ]`).test(line));
  return [...namespaces, ...mounts];
}

afterEach(async () => {
  await runner?.stop();
  runner = undefined;
  expect(leftovers(RUNNER)).toEqual([]);
});

describe('pods', () => {
  test('each pod gets its own hostname and IP, and pods resolve each other by their stable names', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'web', { replicas: 2, containers: [container('main', IDLE[2])] });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('web', 2);

    expect(await sh(rt, 'web-0', 'hostname; hostname -f')).toBe('web-0\nweb-0.web.default.svc.cluster.local');
    expect(await sh(rt, 'web-1', 'hostname')).toBe('web-1');
    expect(rt.podIP('web-0')).not.toBe(rt.podIP('web-1'));
    expect(await sh(rt, 'web-0', 'ip -4 -o addr show eth0')).toContain(`${rt.podIP('web-0')}/`);
    for (const name of ['web-1.web', 'web-1.web.default', 'web-1.web.default.svc.cluster.local']) {
      expect(await sh(rt, 'web-0', `getent hosts ${name}`)).toMatch(new RegExp(`^${rt.podIP('web-1')}\\s`));
    }
    expect((await sh(rt, 'web-0', 'getent ahostsv4 web | cut -d" " -f1 | sort -u')).split('\n').sort())
      .toEqual([rt.podIP('web-0'), rt.podIP('web-1')].sort());
    // traffic stays inside the cluster network: there is no route anywhere else
    expect((await rt.exec('web-0', 'main', ['bash', '-c', 'exec 3<>/dev/tcp/192.0.2.1/80'])).stderr).toContain('Network is unreachable');
  });

  test('PVC data survives pod deletion while an emptyDir starts empty again', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'store', {
      containers: [container('main', IDLE[2], { volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'scratch', mountPath: '/scratch' }] })],
      volumes: [{ name: 'scratch', emptyDir: {} }],
      claims: ['data'],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('store-0');
    await sh(rt, 'store-0', 'echo kept > /data/file; echo lost > /scratch/file; echo gone > /tmp/file');

    await rt.deletePod('store-0');
    await rt.waitForReady('store-0');

    expect(await sh(rt, 'store-0', 'cat /data/file; ls -A /scratch /tmp')).toBe('kept\n/scratch:\n\n/tmp:');
    expect(existsSync(join(RUNNER_BASE_DIR, RUNNER, 'claims/default/data-store-0/file'))).toBe(true);
  });

  test('ConfigMap and Secret volumes are files with their mode, items and subPath, and fsGroup owns the volumes', async () => {
    const chart = Testing.chart();
    new k8s.KubeConfigMap(chart, 'config', { metadata: { name: 'config' }, data: { 'a.cnf': '[mysqld]\n', 'b.cnf': 'b\n', 'run.sh': 'echo ran' } });
    new k8s.KubeSecret(chart, 'secret', { metadata: { name: 'secret' }, stringData: { password: 's3cret' } });
    statefulSet(chart, 'files', {
      securityContext: { fsGroup: 2000 },
      containers: [container('main', IDLE[2], {
        securityContext: { runAsUser: 999 },
        volumeMounts: [
          { name: 'config', mountPath: '/etc/config' },
          { name: 'scripts', mountPath: '/scripts' },
          { name: 'secret', mountPath: '/etc/secret' },
          { name: 'config', mountPath: '/etc/mysql/conf.d/b.cnf', subPath: 'b.cnf' },
          { name: 'work', mountPath: '/scratch' },
        ],
      })],
      volumes: [
        { name: 'config', configMap: { name: 'config' } },
        { name: 'scripts', configMap: { name: 'config', defaultMode: 0o755, items: [{ key: 'run.sh', path: 'bin/run.sh' }] } },
        { name: 'secret', secret: { secretName: 'secret', defaultMode: 0o400 } },
        { name: 'work', emptyDir: {} },
      ],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('files-0');

    expect(await sh(rt, 'files-0', 'ls /etc/config; readlink /etc/config/a.cnf')).toBe('a.cnf\nb.cnf\nrun.sh\n..data/a.cnf');
    expect(await sh(rt, 'files-0', 'stat -L -c "%a %U:%g" /etc/config/a.cnf /scripts/bin/run.sh /etc/secret/password')).toBe(
      '644 root:2000\n755 root:2000\n440 root:2000');
    expect(await sh(rt, 'files-0', '/scripts/bin/run.sh; cat /etc/secret/password; echo; cat /etc/mysql/conf.d/b.cnf')).toBe('ran\ns3cret\nb');
    // uid 999 gets the image's group for it (mysql, 999) and the fsGroup
    expect(await sh(rt, 'files-0', 'id -G; stat -c "%a %g" /scratch; touch /scratch/x && stat -c %g /scratch/x')).toBe('999 2000\n2777 2000\n2000');
    expect((await rt.exec('files-0', 'main', ['touch', '/etc/config/new'])).stderr).toContain('Read-only file system');
  });

  test('the environment comes from values, Secrets, ConfigMaps and the downward API, in the working directory', async () => {
    const chart = Testing.chart();
    new k8s.KubeConfigMap(chart, 'config', { metadata: { name: 'settings' }, data: { mode: 'primary', extra: 'x' } });
    new k8s.KubeSecret(chart, 'secret', { metadata: { name: 'credentials' }, data: { password: Buffer.from('pw').toString('base64') } });
    statefulSet(chart, 'env', {
      containers: [container('main', IDLE[2], {
        workingDir: '/srv/app',
        resources: { limits: { memory: k8s.Quantity.fromString('256Mi') } },
        envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } } },
          { name: 'MEMORY_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: k8s.Quantity.fromString('1Mi') } } },
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'credentials', key: 'password' } } },
          { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
          { name: 'GREETING', value: 'hello $(POD_NAME), $$(POD_NAME) stays' },
        ],
      })],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('env-0');

    expect(await sh(rt, 'env-0', 'pwd')).toBe('/srv/app');
    const env = await sh(rt, 'env-0', 'env | sort');
    expect(env.split('\n')).toEqual(expect.arrayContaining([
      'POD_NAME=env-0', 'POD_NAMESPACE=default', `POD_IP=${rt.podIP('env-0')}`, `NODE_NAME=${RUNNER}-node`, 'INDEX=0', 'MEMORY_MI=256',
      'PASSWORD=pw', 'MODE=primary', 'CFG_mode=primary', 'CFG_extra=x', 'GREETING=hello env-0, $(POD_NAME) stays', 'HOSTNAME=env-0',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ]));
  });
});

describe('containers', () => {
  test('init containers run in order and a failing one is retried with back-off', async () => {
    const chart = Testing.chart();
    const log = { name: 'log', mountPath: '/log' };
    statefulSet(chart, 'init', {
      initContainers: [
        container('first', 'echo first >> /log/order', { volumeMounts: [log] }),
        // fails on its first two attempts
        container('second', 'date +%s%N >> /log/second; [ "$(wc -l < /log/second)" -ge 3 ] && echo second >> /log/order', { volumeMounts: [log] }),
      ],
      containers: [container('main', `cat /log/order; ${IDLE[2]}`, { volumeMounts: [log] })],
      volumes: [{ name: 'log', emptyDir: {} }],
    });
    const rt = await startRunner({ restartBackoff: { initialMs: 1500 } });
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('init-0');
    await rt.waitFor('the main container to print the order', () => rt.logs('init-0', 'main').endsWith('second\n'), 5000);

    expect(rt.logs('init-0', 'main')).toBe('first\nsecond\n');
    expect(rt.restartCount('init-0', 'second')).toBe(2);
    const attempts = (await sh(rt, 'init-0', 'cat /log/second')).split('\n').map((ns) => Number(BigInt(ns) / 1_000_000n));
    expect(attempts[1] - attempts[0]).toBeLessThan(1000); // the first restart is immediate
    expect(attempts[2] - attempts[1]).toBeGreaterThanOrEqual(1500); // then the back-off starts
  });

  test('a killed container restarts with growing back-off, and its previous log stays readable', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'crash', { containers: [container('main', `echo "started $(date +%s%N)"; ${IDLE[2]}`)] });
    const rt = await startRunner({ restartBackoff: { initialMs: 1500 } });
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('crash-0');

    await rt.killContainer('crash-0', 'main');
    await rt.waitFor('the first restart', () => rt.isReady('crash-0'), 5000);
    await rt.killContainer('crash-0', 'main');
    const killed = Date.now();
    expect(rt.status('crash-0')?.containers[0]).toMatchObject({ state: 'waiting', reason: 'CrashLoopBackOff', restartCount: 1 });
    await rt.waitForReady('crash-0');

    expect(Date.now() - killed).toBeGreaterThanOrEqual(1400);
    expect(rt.restartCount('crash-0', 'main')).toBe(2);
    await rt.waitFor('the third incarnation to log', () => rt.logs('crash-0', 'main') !== '', 5000);
    expect(rt.logs('crash-0', 'main')).toMatch(/^started \d+\n$/);
    expect(rt.logs('crash-0', 'main', { previous: true })).not.toBe(rt.logs('crash-0', 'main'));
  });

  test('a container whose liveness probe fails is restarted, with a fresh root filesystem', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'live', {
      containers: [container('main', IDLE[2], {
        livenessProbe: { exec: { command: ['bash', '-c', '! test -e /tmp/unhealthy'] }, periodSeconds: 1, failureThreshold: 2 },
      })],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('live-0');

    await sh(rt, 'live-0', 'touch /tmp/unhealthy /etc/written-by-test');
    await rt.waitFor('the liveness restart', () => rt.restartCount('live-0', 'main') === 1, 10_000, ['live-0']);
    await rt.waitForReady('live-0');

    expect(await sh(rt, 'live-0', 'ls /tmp /etc/written-by-test 2>&1 || true')).toContain('No such file');
  });

  test('a startup probe holds back liveness and readiness until it succeeds', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'slow', {
      containers: [container('main', IDLE[2], {
        startupProbe: { exec: { command: ['test', '-e', '/tmp/started'] }, periodSeconds: 1, failureThreshold: 30 },
        livenessProbe: { exec: { command: ['false'] }, periodSeconds: 1, failureThreshold: 1 },
      })],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitFor('the container to run', () => rt.status('slow-0')?.containers[0].state === 'running', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2500));

    expect(rt.isReady('slow-0')).toBe(false);
    expect(rt.restartCount('slow-0', 'main')).toBe(0); // the failing liveness probe has not run yet
    await sh(rt, 'slow-0', 'touch /tmp/started');
    await rt.waitFor('the liveness restart', () => rt.restartCount('slow-0', 'main') === 1, 10_000, ['slow-0']);
  });
});

describe('services', () => {
  test('headless DNS publishes only ready pods unless publishNotReadyAddresses is set', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'web', {
      replicas: 2,
      podManagementPolicy: 'Parallel',
      containers: [container('main', `touch /tmp/ready; ${IDLE[2]}`, { readinessProbe: READY_FILE_PROBE })],
    });
    new k8s.KubeService(chart, 'all', {
      metadata: { name: 'web-all' },
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector: { app: 'web' }, ports: [{ port: 8080 }] },
    });
    statefulSet(chart, 'never', { headless: false, containers: [container('main', IDLE[2], { readinessProbe: READY_FILE_PROBE })] });
    new k8s.KubeService(chart, 'never-svc', {
      metadata: { name: 'never' },
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector: { app: 'never' }, ports: [{ port: 8080 }] },
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('web', 2);
    const lookup = async (name: string): Promise<string[]> => {
      const result = await rt.client(['getent', 'ahostsv4', name]);
      return [...new Set(result.stdout.split('\n').filter(Boolean).map((line) => line.split(' ')[0]))].sort();
    };
    const [web0, web1] = [rt.podIP('web-0'), rt.podIP('web-1')];

    expect(await lookup('web-1.web')).toEqual([web1]);
    await sh(rt, 'web-1', 'rm /tmp/ready');
    await rt.waitFor('web-1 to be not ready', () => !rt.isReady('web-1'), 10_000);

    expect(await lookup('web-1.web')).toEqual([]);
    expect(await lookup('web-1.web.default.svc.cluster.local')).toEqual([]);
    expect(await lookup('web')).toEqual([web0]);
    expect(await lookup('web-all')).toEqual([web0, web1].sort());
    // a pod always resolves its own name
    expect(await sh(rt, 'web-1', 'hostname -f')).toBe('web-1.web.default.svc.cluster.local');
    // the governing Service of this StatefulSet publishes not-ready pods
    await rt.waitFor('never-0 to run', () => rt.status('never-0')?.containers[0].state === 'running', 10_000);
    expect(rt.isReady('never-0')).toBe(false);
    expect(await lookup('never-0.never')).toEqual([rt.podIP('never-0')]);
  });

  test('a ClusterIP Service forwards each connection to a ready endpoint only', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'echo', {
      replicas: 2,
      podManagementPolicy: 'Parallel',
      containers: [hostnameServer()],
    });
    new k8s.KubeService(chart, 'svc', {
      metadata: { name: 'echo-svc' },
      spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: k8s.IntOrString.fromString('http') }] },
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('echo', 2);
    const answers = async (): Promise<Set<string>> => {
      const replies = await Promise.all(Array.from({ length: 8 }, () => rt.client(['socat', '-u', 'TCP:echo-svc:80', 'STDOUT'])));
      return new Set(replies.map((reply) => reply.stdout.trim()));
    };

    expect(await answers()).toEqual(new Set(['echo-0', 'echo-1']));
    await rt.exec('echo-1', 'server', ['rm', '/tmp/ready']);
    await rt.waitFor('echo-1 to be not ready', () => !rt.isReady('echo-1'), 10_000);
    expect(await answers()).toEqual(new Set(['echo-0']));
    await rt.exec('echo-0', 'server', ['rm', '/tmp/ready']);
    await rt.waitFor('echo-0 to be not ready', () => !rt.isReady('echo-0'), 10_000);
    expect((await rt.client(['socat', '-u', 'TCP:echo-svc:80', 'STDOUT'])).stderr).toContain('Connection refused');
  });

  test('a connection through a ClusterIP Service ends each direction on its own, and an endpoint that refuses resets the client', async () => {
    const chart = Testing.chart();
    // answers each connection, once the client has sent everything, with the number of bytes it sent
    statefulSet(chart, 'count', {
      containers: [container('server', 'touch /tmp/ready; exec socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"wc -c"', {
        ports: [{ name: 'count', containerPort: 8080 }],
        readinessProbe: { exec: { command: ['bash', '-c', 'ss -Hltn sport = :8080 | grep -q .'] }, periodSeconds: 1, failureThreshold: 1 },
      })],
    });
    new k8s.KubeService(chart, 'svc', {
      metadata: { name: 'count-svc' },
      spec: {
        selector: { app: 'count' },
        ports: [{ name: 'count', port: 80, targetPort: k8s.IntOrString.fromString('count') }, { name: 'closed', port: 81, targetPort: k8s.IntOrString.fromNumber(9090) }],
      },
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('count', 1);

    // the client half-closes after its request and still reads the answer
    const halfClosed = await rt.client(['socat', '-t', '30', '-', 'TCP:count-svc:80'], { stdin: 'hello' });
    expect(halfClosed).toMatchObject({ code: 0, stdout: '5\n' });
    // nothing listens on the endpoint's port 9090: a reset, never a clean end of a connection that was never made
    const refused = await rt.client(['bash', '-c', 'exec 3<>/dev/tcp/count-svc/81 && cat <&3']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Connection reset by peer');
    expect(readFileSync(join(RUNNER_BASE_DIR, RUNNER, 'forwarder.log'), 'utf8')).toMatch(new RegExp(`-> ${rt.podIP('count-0')!.replace(/\./g, '\\.')}:9090: cannot connect to the endpoint: connect ECONNREFUSED`));
  });

  test('recordConnections records each new TCP connection once, by pod, Service, node and client, including pods already gone', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'echo', { containers: [hostnameServer()] });
    new k8s.KubeService(chart, 'svc', {
      metadata: { name: 'echo-svc' },
      spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: k8s.IntOrString.fromString('http') }] },
    });
    // a Job pod connects to the pod directly (three times) and once through the Service, then is deleted
    new k8s.KubeJob(chart, 'job', {
      metadata: { name: 'caller' },
      spec: {
        template: {
          metadata: { labels: { role: 'caller' } },
          spec: {
            restartPolicy: 'Never',
            containers: [container('call', 'for i in 1 2 3; do socat -u TCP:echo-0.echo:8080 STDOUT; done; socat -u TCP:echo-svc:80 STDOUT; socat -u TCP:echo-0.echo:9,connect-timeout=2 STDOUT 2>/dev/null || true')],
          },
        },
      },
    });
    const rt = await startRunner({ recordConnections: true });
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('echo', 1);
    const job = await rt.runJob('caller');
    expect(job).toMatchObject({ succeeded: true, logs: { call: 'echo-0\necho-0\necho-0\necho-0\n' } });
    expect((await rt.client(['socat', '-u', 'TCP:echo-svc:80', 'STDOUT'])).stdout).toEqual('echo-0\n');

    const connections = await rt.connections();
    const seen = connections.map((c) => {
      const name = (id: typeof c.source) => ('name' in id ? `${id.kind}:${id.name}` : id.kind);
      return `${name(c.source)} -> ${name(c.destination)}:${c.port}`;
    }).sort();
    // the Job's pod is gone, and still known by its address
    expect(rt.podNames()).toEqual(['echo-0']);
    const jobPod = connections.find((c) => c.source.kind === 'pod')!.source;
    expect(jobPod).toMatchObject({ kind: 'pod', name: expect.stringMatching(/^caller-[0-9a-f]{5}$/), namespace: 'default', labels: { role: 'caller' } });
    const caller = `pod:${(jobPod as { name: string }).name}`;
    expect(seen).toEqual([
      'client -> service:echo-svc:80',
      `${caller} -> pod:echo-0:8080`,
      // a refused connection was still attempted
      `${caller} -> pod:echo-0:9`,
      `${caller} -> service:echo-svc:80`,
      'node -> pod:echo-0:8080',
    ].sort());
    const toPod = connections.find((c) => c.destination.kind === 'pod')!;
    expect(toPod.destination).toMatchObject({ kind: 'pod', name: 'echo-0', labels: { app: 'echo' }, ports: [{ name: 'http', containerPort: 8080 }] });
    expect(toPod.destinationIp).toEqual(rt.podIP('echo-0'));
  });

  test('connections() needs recordConnections', async () => {
    const rt = await startRunner();
    await expect(rt.connections()).rejects.toThrow('connections() needs a runner started with recordConnections: true');
  });

  test('the cluster bridge keeps its own MAC address as pods come and go, so connections to a Service never wait on a stale ARP entry', async () => {
    // Without an address of its own, a Linux bridge takes the lowest MAC of its ports: deleting a
    // pod (or adding one) changes it, and the client, which cached the old one for the Service
    // addresses on the bridge, times out connecting to Services until its ARP entry expires.
    const chart = Testing.chart();
    statefulSet(chart, 'echo', { replicas: 2, containers: [hostnameServer()] });
    new k8s.KubeService(chart, 'svc', {
      metadata: { name: 'echo-svc' },
      spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: k8s.IntOrString.fromString('http') }] },
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('echo', 2);
    const macs = (): Map<string, string> => new Map(execFileSync('ip', ['-n', `podrun-${RUNNER}.cluster`, '-o', 'link', 'show'], { encoding: 'utf8' })
      .split('\n').map((line) => /^\d+: ([^:@]+)[@:].*link\/ether (\S+)/.exec(line)).filter((m) => m).map((m) => [m![1], m![2]]));
    const connect = async (): Promise<string> => (await rt.client(['timeout', '5', 'socat', '-u', 'TCP:echo-svc:80,connect-timeout=3', 'STDOUT'])).stdout.trim();
    const bridge = macs().get('br0');

    for (const pod of ['echo-0', 'echo-1', 'echo-0']) {
      expect(await connect()).toMatch(/^echo-[01]$/);
      await rt.deletePod(pod);
      await rt.waitForStatefulSetReady('echo', 2);
      const now = macs();
      expect(now.get('br0')).toBe(bridge);
      expect([...now].filter(([name, mac]) => name !== 'br0' && mac === bridge)).toEqual([]);
      expect(await connect()).toMatch(/^echo-[01]$/);
    }
  });
});

describe('StatefulSet controller', () => {
  /** Milliseconds after the start of observation. */
  interface PodEvents {
    seen?: number;
    ready?: number;
    gone?: number;
  }

  /** Polls pod existence and readiness until `done`, returning when each pod appeared, became ready and disappeared. */
  async function timeline(rt: PodRunner, pods: string[], done: () => boolean): Promise<Record<string, PodEvents>> {
    const events: Record<string, PodEvents> = Object.fromEntries(pods.map((pod) => [pod, {}]));
    const started = Date.now();
    for (let finished = false; !finished;) {
      if (Date.now() - started > 60_000) {
        throw new Error(`timeline did not finish:\n${rt.describe()}`);
      }
      finished = done();
      for (const pod of pods) {
        const status = rt.status(pod);
        const at = Date.now() - started;
        if (status && events[pod].seen === undefined) {
          events[pod].seen = at;
        }
        if (status?.ready && events[pod].ready === undefined) {
          events[pod].ready = at;
        }
        if (!status && events[pod].seen !== undefined && events[pod].gone === undefined) {
          events[pod].gone = at;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return events;
  }

  test('OrderedReady creates pod N+1 only after pod N is ready and scales down from the highest ordinal', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'ord', {
      replicas: 3,
      containers: [container('main', `touch /tmp/ready; ${IDLE[2]}`, { readinessProbe: READY_FILE_PROBE })],
    });
    const rt = await startRunner();
    const pods = ['ord-0', 'ord-1', 'ord-2'];
    await rt.apply(Testing.synth(chart));
    const up = await timeline(rt, pods, () => pods.every((pod) => rt.isReady(pod)));

    expect(up['ord-1'].seen).toBeGreaterThanOrEqual(up['ord-0'].ready!);
    expect(up['ord-2'].seen).toBeGreaterThanOrEqual(up['ord-1'].ready!);
    expect(rt.status('ord-2')).toBeDefined();

    await rt.scale('ord', 1);
    const down = await timeline(rt, pods, () => rt.podNames().length === 1);
    expect(down['ord-1'].gone).toBeGreaterThan(down['ord-2'].gone!);
    await rt.waitForStatefulSetReady('ord', 1);
  });

  test('Parallel creates all pods at once, and a deleted pod is created again', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'par', {
      replicas: 3,
      podManagementPolicy: 'Parallel',
      containers: [container('main', `sleep 1; touch /tmp/ready; ${IDLE[2]}`, { readinessProbe: READY_FILE_PROBE })],
    });
    const rt = await startRunner();
    const pods = ['par-0', 'par-1', 'par-2'];
    await rt.apply(Testing.synth(chart));
    const up = await timeline(rt, pods, () => pods.every((pod) => rt.isReady(pod)));

    expect(Math.max(...pods.map((pod) => up[pod].seen!))).toBeLessThan(Math.min(...pods.map((pod) => up[pod].ready!)));
    const before = rt.podIP('par-1');
    await rt.deletePod('par-1', { force: true });
    await rt.waitForStatefulSetReady('par', 3);
    expect(rt.podIP('par-1')).not.toBe(before);
    expect(rt.status('par-1')?.containers[0].restartCount).toBe(0);
  });

  test('a changed pod template rolls out from the highest ordinal down, one ready pod at a time', async () => {
    const build = (version: string): ReturnType<typeof Testing.synth> => {
      const chart = Testing.chart();
      statefulSet(chart, 'roll', {
        replicas: 3,
        podManagementPolicy: 'Parallel',
        containers: [container('main', `touch /tmp/ready; ${IDLE[2]}`, { readinessProbe: READY_FILE_PROBE, env: [{ name: 'VERSION', value: version }] })],
      });
      return Testing.synth(chart);
    };
    const rt = await startRunner();
    const pods = ['roll-0', 'roll-1', 'roll-2'];
    await rt.apply(build('1'));
    await rt.waitForStatefulSetReady('roll', 3);
    const before = Object.fromEntries(pods.map((pod) => [pod, rt.podIP(pod)]));

    await rt.apply(build('2'));
    const replaced: Record<string, number> = {};
    while (Object.keys(replaced).length < pods.length) {
      for (const pod of pods.filter((candidate) => replaced[candidate] === undefined)) {
        const ip = rt.status(pod)?.ip;
        if (ip && ip !== before[pod]) {
          replaced[pod] = Date.now();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await rt.waitForStatefulSetReady('roll', 3);

    expect(replaced['roll-2']).toBeLessThan(replaced['roll-1']);
    expect(replaced['roll-1']).toBeLessThan(replaced['roll-0']);
    expect(await sh(rt, 'roll-0', 'echo $VERSION')).toBe('2');
  });

  test('a graceful deletion sends SIGTERM and kills after the grace period', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'grace', {
      replicas: 2,
      podManagementPolicy: 'Parallel',
      containers: [container('main', 'trap "" TERM; while :; do sleep 1; done')], // ignores SIGTERM; grace period 2 s
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('grace', 2);

    let started = Date.now();
    await rt.deletePod('grace-0');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    started = Date.now();
    await rt.deletePod('grace-1', { force: true });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('images', () => {
  test('a mariadb:10.11 container sees only the tools of the real image', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'img', { containers: [container('main', IDLE[2])] });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('img-0');

    const present = ['bash', 'awk', 'sed', 'tar', 'xz', 'zstd', 'ps', 'ss', 'lsof', 'rsync', 'socat', 'perl', 'mariadb', 'mariadb-admin', 'mariadb-dump',
      'mariadbd', 'mariadb-install-db', 'mariadb-backup', 'mbstream', 'my_print_defaults', 'wsrep_sst_mariabackup', 'mysql', 'mysqldump'];
    expect(await sh(rt, 'img-0', `for t in ${present.join(' ')}; do command -v $t >/dev/null || echo missing $t; done`)).toBe('');
    expect(await sh(rt, 'img-0', 'for t in ncat nc netcat curl wget pv node python3; do command -v $t; done; ls /usr/bin/curl /usr/bin/pv 2>&1 || true'))
      .toBe("ls: cannot access '/usr/bin/curl': No such file or directory\nls: cannot access '/usr/bin/pv': No such file or directory");
    expect(await sh(rt, 'img-0', 'ls /usr/lib/galera/libgalera_smm.so; grep -c "^bind-address" /etc/mysql/mariadb.conf.d/50-server.cnf || true'))
      .toBe('/usr/lib/galera/libgalera_smm.so\n0');
    expect(await sh(rt, 'img-0', 'my_print_defaults --mysqld | grep -c skip-name-resolve; getent passwd mysql; ls -A /var/lib/mysql /home; stat -c %U /var/lib/mysql'))
      .toBe('1\nmysql:x:999:999::/home/mysql:/bin/sh\n/home:\n\n/var/lib/mysql:\nmysql');
    const stub = await rt.exec('img-0', 'main', ['healthcheck.sh', '--connect']);
    expect(stub.code).toBe(127);
    expect(stub.stderr).toContain('is in the real image but the test runner cannot provide it');
  });

  test('a mariadb:11.4 container has no mysql* executables', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'eleven', { containers: [container('main', IDLE[2], { image: 'mariadb:11.4' })] });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('eleven-0');

    expect(await sh(rt, 'eleven-0', 'compgen -c mysql | sort -u; ls /usr/bin /usr/sbin | grep -c ^mysql || true; command -v mariadb mariadbd'))
      .toBe('0\n/usr/bin/mariadb\n/usr/sbin/mariadbd');
  });

  test('a mysql:* image is reported as not runnable', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'mysql', { containers: [container('main', IDLE[2], { image: 'mysql:8.4' })] });
    const rt = await startRunner();

    await expect(rt.apply(Testing.synth(chart))).rejects.toThrow(/mysql:8\.4 cannot run here: Debian has no MySQL server/);
    expect(rt.podNames()).toEqual([]);
  });
});

describe('faults', () => {
  test('a partitioned pod is unreachable until it is healed, and a peer partition only cuts the given peers', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'net', { replicas: 2, podManagementPolicy: 'Parallel', containers: [hostnameServer(), container('main', IDLE[2])] });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForStatefulSetReady('net', 2);
    const reaches = async (from: 'client' | string, to: string): Promise<boolean> => {
      const argv = ['socat', '-u', `TCP:${to}.net:8080,connect-timeout=1`, 'STDOUT'];
      const result = from === 'client' ? await rt.client(argv) : await rt.exec(from, 'main', argv);
      return result.stdout.trim() === to;
    };

    await rt.partition('net-1');
    expect(await reaches('client', 'net-1')).toBe(false);
    expect(await reaches('net-0', 'net-1')).toBe(false);
    await rt.heal('net-1');
    expect(await reaches('client', 'net-1')).toBe(true);

    await rt.partition('net-1', { from: ['net-0'] });
    expect(await reaches('net-0', 'net-1')).toBe(false);
    expect(await reaches('client', 'net-1')).toBe(true);
    await rt.heal('net-1');
    expect(await reaches('net-0', 'net-1')).toBe(true);
  });

  test('everything a runner made is removed when its process is killed', async () => {
    const chart = Testing.chart();
    statefulSet(chart, 'orphan', { containers: [container('main', IDLE[2])] });
    const script = `
      const { PodRunner } = require('./runner.ts');
      (async () => {
        const rt = await PodRunner.start({ name: 'runner-crash' });
        await rt.apply(JSON.parse(require('fs').readFileSync(0, 'utf8')));
        await rt.waitForReady('orphan-0');
        console.log('ready');
      })();`;
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { cwd: __dirname, stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(JSON.stringify(Testing.synth(chart)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (data: Buffer) => data.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the child exited with ${code}`)));
    });
    expect(leftovers('runner-crash').length).toBeGreaterThan(0);

    child.kill('SIGKILL');
    const deadline = Date.now() + 20_000;
    while ((leftovers('runner-crash').length > 0 || existsSync(join(RUNNER_BASE_DIR, 'runner-crash'))) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(leftovers('runner-crash')).toEqual([]);
    expect(existsSync(join(RUNNER_BASE_DIR, 'runner-crash'))).toBe(false);
  });

  test('cleanupStale removes the namespaces and processes a runner of that name left behind', async () => {
    execFileSync('ip', ['netns', 'add', 'podrun-runner-stale.pod-x-1']);
    const stray = spawn('ip', ['netns', 'exec', 'podrun-runner-stale.pod-x-1', 'sleep', '600'], { stdio: 'ignore' });
    const killedBy = new Promise((resolve) => stray.once('exit', (_code, signal) => resolve(signal)));
    await new Promise((resolve) => setTimeout(resolve, 200));

    await PodRunner.cleanupStale('runner-stale');

    expect(leftovers('runner-stale')).toEqual([]);
    expect(await killedBy).toBe('SIGKILL');
  });

  test('without root the runner refuses to start and says why', () => {
    const result = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'bash', join(__dirname, 'preflight.sh'), '/nonexistent'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('the pod runner needs root');
  });
});

describe('Jobs', () => {
  test('a Job runs to completion, a failed pod is replaced, and a CronJob runs its jobTemplate on demand', async () => {
    const chart = Testing.chart();
    new k8s.KubePersistentVolumeClaim(chart, 'claim', {
      metadata: { name: 'backups' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: k8s.Quantity.fromString('1Gi') } } },
    });
    const podSpec = (script: string): k8s.PodSpec => ({
      restartPolicy: 'Never',
      containers: [container('backup', script, { volumeMounts: [{ name: 'backups', mountPath: '/backups' }] })],
      volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: 'backups' } }],
    });
    // fails on its first attempt, then writes a backup into the claim
    new k8s.KubeJob(chart, 'job', {
      metadata: { name: 'backup' },
      spec: { backoffLimit: 2, template: { spec: podSpec('echo "attempt on $(hostname)"; [ -e /backups/tried ] || { touch /backups/tried; exit 1; }; echo data > /backups/one') } },
    });
    new k8s.KubeJob(chart, 'broken', { metadata: { name: 'broken' }, spec: { backoffLimit: 1, template: { spec: podSpec('echo broken; exit 3') } } });
    new k8s.KubeCronJob(chart, 'cron', {
      metadata: { name: 'nightly' },
      spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec: podSpec('ls /backups; echo more > /backups/two') } } } },
    });
    const rt = await startRunner({ restartBackoff: { initialMs: 500 } });
    await rt.apply(Testing.synth(chart));

    const backup = await rt.runJob('backup');
    expect(backup).toMatchObject({ succeeded: true, attempts: 2 });
    expect(backup.logs.backup).toMatch(/^attempt on backup-[0-9a-f]{5}\n$/);
    const broken = await rt.runJob('broken');
    expect(broken).toMatchObject({ succeeded: false, reason: 'BackoffLimitExceeded', attempts: 2, logs: { backup: 'broken\n' } });
    const nightly = await rt.runJob('nightly');
    expect(nightly).toMatchObject({ succeeded: true, logs: { backup: 'one\ntried\n' } });
    expect(rt.podNames()).toEqual([]);
  });
});

describe('MariaDB', () => {
  test('mariadbd runs as uid 999 in a pod and answers through a ClusterIP Service', async () => {
    const chart = Testing.chart();
    new k8s.KubeConfigMap(chart, 'init', {
      metadata: { name: 'db-init' },
      data: { 'init.sql': "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'secret';\nGRANT ALL ON *.* TO 'app'@'%';\n" },
    });
    new k8s.KubeService(chart, 'svc', {
      metadata: { name: 'db-write' },
      spec: { selector: { app: 'db' }, ports: [{ port: 3306, targetPort: k8s.IntOrString.fromString('mysql') }] },
    });
    statefulSet(chart, 'db', {
      securityContext: { fsGroup: 999 },
      claims: ['data'],
      volumes: [{ name: 'init', configMap: { name: 'db-init' } }],
      containers: [container('mariadb', [
        'set -e',
        '[ -d /var/lib/mysql/mysql ] || mariadb-install-db --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=normal >/dev/null',
        'exec mariadbd --datadir=/var/lib/mysql --init-file=/etc/init/init.sql',
      ].join('\n'), {
        image: 'mariadb:11.4',
        securityContext: { runAsUser: 999, runAsGroup: 999 },
        ports: [{ name: 'mysql', containerPort: 3306 }],
        volumeMounts: [{ name: 'data', mountPath: '/var/lib/mysql' }, { name: 'init', mountPath: '/etc/init' }],
        startupProbe: { exec: { command: ['mariadb-admin', 'ping'] }, periodSeconds: 1, failureThreshold: 60 },
        readinessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('mysql') }, periodSeconds: 1 },
      })],
    });
    const rt = await startRunner();
    await rt.apply(Testing.synth(chart));
    await rt.waitForReady('db-0', 60_000);

    const query = await rt.client(['mariadb', '-h', 'db-write', '-u', 'app', '-psecret', '-N', '-e', 'SELECT @@hostname, @@port']);
    expect(query).toMatchObject({ code: 0, stdout: 'db-0\t3306\n' });
    expect(await sh(rt, 'db-0', 'ps -o user:12=,uid= -p 1; stat -c %U /var/lib/mysql/ibdata1', 'mariadb')).toMatch(/^mysql\s+999\nmysql$/);
  });
});
