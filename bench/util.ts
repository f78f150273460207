/**
 * Helpers of the benchmarks that run on the pod runner: commands in containers, timing inside
 * the pods, one-shot TCP senders between pods, page-cache eviction, polling.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import type { PodRunner } from '../test/e2e/runner';

export function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} bench: ${message}\n`);
}

/**
 * Keeps a log of a run for later reading (why a figure is what it is): in $BENCH_LOG_DIR, which
 * run.ts sets to <results>/logs; nowhere when it is not set (e.g. in the jest test).
 */
export function saveLog(name: string, text: string): void {
  const dir = process.env.BENCH_LOG_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name.replace(/[^a-z0-9.-]+/gi, '_')}.log`), text);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Seconds since `since` (Date.now() milliseconds). */
export function secondsSince(since: number): number {
  return (Date.now() - since) / 1000;
}

/** Runs a bash script in a container; returns stdout, throws with stderr on failure. */
export async function sh(rt: PodRunner, pod: string, container: string, script: string,
  options: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await rt.exec(pod, container, ['bash', '-c', `set -euo pipefail\n${script}`], { stdin: options.stdin, timeoutMs: options.timeoutMs ?? 600_000 });
  if (r.code !== 0) {
    throw new Error(`${pod}/${container}: script failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().split('\n').slice(-15).join('\n')}\n--- script:\n${script}`);
  }
  return r.stdout;
}

/**
 * Shell functions for timing inside a pod: `mark NAME` records the time, `elapsed FROM TO`
 * prints the milliseconds between two marks as `BENCH FROM..TO=ms`, `value KEY VALUE` prints
 * `BENCH KEY=VALUE`.
 */
export const TIMING_FUNCTIONS = `
declare -A BENCH_MARK
mark() { BENCH_MARK[$1]=$(date +%s%N); }
elapsed() { printf 'BENCH %s..%s=%s\\n' "$1" "$2" $(( (BENCH_MARK[$2] - BENCH_MARK[$1]) / 1000 )); }
value() { printf 'BENCH %s=%s\\n' "$1" "$2"; }
`;

/** The `BENCH key=value` lines of a script's output; durations (FROM..TO) in seconds. */
export function benchValues(stdout: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^BENCH ([^=]+)=(-?[0-9.]+)$/.exec(line.trim());
    if (m) {
      values[m[1]] = m[1].includes('..') ? Number(m[2]) / 1e6 : Number(m[2]);
    }
  }
  return values;
}

/** The value of a BENCH key, or an error naming what the script printed. */
export function need(values: Record<string, number>, key: string): number {
  const value = values[key];
  if (value === undefined || !Number.isFinite(value)) {
    throw new Error(`the script did not report ${key} (it reported: ${JSON.stringify(values)})`);
  }
  return value;
}

/** Polls until `condition` resolves true; throws after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

/** Drops the page cache of every file below `dir` in a pod (cold reads, as for a server that uses O_DIRECT). */
export async function evictPageCache(rt: PodRunner, pod: string, container: string, dir: string): Promise<void> {
  await sh(rt, pod, container, `find ${dir} -type f -exec dd if={} iflag=nocache count=0 status=none \\;`);
}

/**
 * Starts a one-connection TCP sender in a container: socat listens on `port` and runs `script`
 * (bash) for the connection, its stdout going to the peer. Resolves once it listens, with a
 * promise of its end (rejected with the sender's stderr on failure) and `cancel` (kills the
 * sender by its process id, for a receiver that failed before connecting).
 */
export async function serveOnce(rt: PodRunner, pod: string, container: string, port: number, script: string,
  socatOptions = ''): Promise<{ done: Promise<void>; cancel: () => Promise<void> }> {
  const file = `/tmp/bench-send-${port}.sh`;
  const pidFile = `/tmp/bench-send-${port}.pid`;
  await sh(rt, pod, container, `cat >${file}; rm -f ${pidFile}`, { stdin: script });
  const done = rt.exec(pod, container, ['bash', '-c',
    `echo $$ >${pidFile}; exec timeout 900 socat ${socatOptions} -U TCP-LISTEN:${port},reuseaddr EXEC:'bash ${file}'`], { timeoutMs: 960_000 })
    .then((r) => {
      if (r.code !== 0) throw new Error(`${pod}/${container}: sender on port ${port} failed (exit ${r.code}): ${r.stderr.trim()}`);
    });
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  // a listening socket (state 0A) in the pod's network namespace
  await waitUntil(`${pod} to listen on port ${port}`, async () =>
    (await rt.exec(pod, container, ['bash', '-c', `grep -qi ':${hex} 0*:0000 0A' /proc/net/tcp /proc/net/tcp6`])).code === 0,
  30_000, 50);
  const cancel = async () => {
    await rt.exec(pod, container, ['bash', '-c', `[[ ! -s ${pidFile} ]] || kill "$(cat ${pidFile})" 2>/dev/null || true`]);
    await done.catch(() => undefined);
  };
  return { done, cancel };
}

/** The replication pods' data directory. */
export const DATA = '/var/lib/mysql/data';
/** The port of the raw-copy baselines' sender. */
export const PORT = 3310;
export const MIB = 2 ** 20;
/** The server's client, as root over the pod's socket. */
export const SQL = 'mariadb --defaults-extra-file=/run/mysqld/root.cnf';
/** What a physical copy does not carry: binary and relay logs, the redo log, the temporary tablespace. */
export const TAR_EXCLUDES = "--exclude='./mariadb-bin.*' --exclude='./mariadb-relay-bin.*' --exclude=./ib_logfile0 --exclude=./ibtmp1";
/** socat moves 8 KiB per read and write by default; the construct's streams use 1 MiB. */
export const BIG_BUFFERS = '-b 1048576';
/** On-disk bytes per row of the bench tables (measured: 625 000 rows → 160 MiB). */
export const BYTES_PER_ROW = 268;
