export { ImageNotRunnableError } from './profiles';
export type { JobResult } from './job';
export type { ContainerStatus, PodPhase } from './pod';
export { PodRunner, RUNNER_BASE_DIR } from './runner';
export type { ExecOptions, Manifests, PodRunnerOptions, PodStatus } from './runner';
export type { RunResult } from './shell';
