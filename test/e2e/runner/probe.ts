import type { Probe } from './k8s';
import { sleep } from './shell';

/** Runs a probe once; resolves to undefined on success, else to why it failed. */
export type ProbeAction = (timeoutMs: number) => Promise<string | undefined>;

/**
 * Runs one probe of one container incarnation like the kubelet's probe worker: first after
 * `initialDelaySeconds`, then every `periodSeconds`, each attempt limited to `timeoutSeconds`.
 * The result flips to success after `successThreshold` consecutive successes and to failure
 * after `failureThreshold` consecutive failures; `onResult` hears about every flip.
 */
export class ProbeWorker {
  /** Why the last attempt failed, while it did (for error messages). */
  public lastFailure: string | undefined;
  private readonly probe: Probe;
  private readonly action: ProbeAction;
  private readonly onResult: (success: boolean) => void;
  private readonly abort = new AbortController();
  private result: boolean | undefined;

  constructor(probe: Probe, action: ProbeAction, onResult: (success: boolean) => void) {
    this.probe = probe;
    this.action = action;
    this.onResult = onResult;
    void this.loop();
  }

  public stop(): void {
    this.abort.abort();
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    const periodMs = (this.probe.periodSeconds ?? 10) * 1000;
    const timeoutMs = (this.probe.timeoutSeconds ?? 1) * 1000;
    const successThreshold = this.probe.successThreshold ?? 1;
    const failureThreshold = this.probe.failureThreshold ?? 3;
    let successes = 0;
    let failures = 0;
    await sleep((this.probe.initialDelaySeconds ?? 0) * 1000, signal);
    while (!signal.aborted) {
      const started = Date.now();
      const failure = await this.action(timeoutMs).catch((error: Error) => error.message);
      if (signal.aborted) {
        return;
      }
      if (failure === undefined) {
        this.lastFailure = undefined;
        successes++;
        failures = 0;
        this.report(successes >= successThreshold ? true : undefined);
      } else {
        this.lastFailure = failure;
        failures++;
        successes = 0;
        this.report(failures >= failureThreshold ? false : undefined);
      }
      await sleep(Math.max(0, periodMs - (Date.now() - started)), signal);
    }
  }

  private report(result: boolean | undefined): void {
    if (result !== undefined && result !== this.result && !this.abort.signal.aborted) {
      this.result = result;
      this.onResult(result);
    }
  }
}
