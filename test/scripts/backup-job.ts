/**
 * Runs the containers of a synthesized backup, restore or drill Job, in order, like a pod with
 * restartPolicy Never: each container's script with the environment the construct gave it, a
 * fresh work, run and tmp directory per run (a new pod), paths overridden for this host.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ClusterSpec, Host, Result, SCRIPTS } from './backup-harness';

export interface JobContainer {
  readonly name: string;
  readonly script: string;
  readonly env: Record<string, string>;
}

export interface JobRun {
  readonly succeeded: boolean;
  /** The container that failed, if any. */
  readonly failed?: string;
  /** stderr of every container that ran, in order. */
  readonly log: string;
  readonly results: Record<string, Result>;
  readonly dir: string;
}

/** The containers of a synthesized CronJob, without the rclone copy step (rclone is on this host). */
export function jobContainers(cronJob: any): JobContainer[] {
  const spec = cronJob.spec.jobTemplate.spec.template.spec;
  return [...spec.initContainers, ...spec.containers]
    .filter((c: any) => c.name !== 'rclone')
    .map((c: any) => ({
      name: c.name,
      script: path.basename(c.command[1]),
      env: Object.fromEntries(c.env.map((e: any) => [e.name, e.value])),
    }));
}

let runs = 0;

export class Job {
  constructor(
    readonly host: Host,
    readonly cluster: ClusterSpec,
    readonly containers: JobContainer[],
    /** Overrides for every run: the target's directory or S3 endpoint, … */
    readonly overrides: Record<string, string>,
  ) {}

  /** The environment of one container in a pod directory. */
  env(container: JobContainer, dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: Record<string, string> = {
      ...container.env,
      DB_PORT: `${this.cluster.dbPort}`,
      SECRETS_DIR: this.cluster.secrets,
      RUN_DIR: path.join(dir, 'run'),
      WORK_DIR: path.join(dir, 'work'),
      TMPDIR: path.join(dir, 'tmp'),
      HOSTNAME: 'job',
      PATH: this.host.bin,
      ...this.overrides,
      ...extra,
    };
    if (env.STREAM_PORT !== undefined) env.STREAM_PORT = `${this.cluster.seedPort}`;
    return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  }

  /** A new pod directory. */
  podDir(): string {
    const dir = path.join(this.host.root, 'jobs', `${++runs}`);
    for (const d of ['run', 'work', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    return dir;
  }

  /** Runs every container in order until one fails. */
  async run(extra: Record<string, string> = {}): Promise<JobRun> {
    const dir = this.podDir();
    const results: Record<string, Result> = {};
    let log = '';
    for (const c of this.containers) {
      const result = await this.host.run(['/bin/bash', path.join(SCRIPTS, c.script)], this.env(c, dir, extra), 300_000);
      results[c.name] = result;
      log += `--- ${c.name} (${c.script}) exit ${result.code}${result.signal ? ` ${result.signal}` : ''}\n${result.stderr}${result.stdout}`;
      if (result.code !== 0) {
        fs.writeFileSync(path.join(dir, 'job.log'), log);
        return { succeeded: false, failed: c.name, log, results, dir };
      }
    }
    fs.writeFileSync(path.join(dir, 'job.log'), log);
    return { succeeded: true, log, results, dir };
  }

  /** Starts one container's script in a pod directory without waiting (to interrupt it). */
  start(name: string, dir: string, extra: Record<string, string> = {}): ChildProcess {
    const c = this.containers.find((x) => x.name === name)!;
    const out = fs.openSync(path.join(dir, `${name}.log`), 'a');
    const child = this.host.spawn(['/bin/bash', path.join(SCRIPTS, c.script)], this.env(c, dir, extra), ['ignore', out, out]);
    fs.closeSync(out);
    return child;
  }
}
