export { ImageNotRunnableError } from './profiles';
export type { NetworkIdentity, RecordedConnection } from './connections';
export type { JobResult } from './job';
export type { ContainerStatus, PodPhase } from './pod';
export { PodRunner, RUNNER_BASE_DIR } from './runner';
export type { ExecOptions, Manifests, PodRunnerOptions, PodStatus } from './runner';
export type { RunResult } from './shell';
