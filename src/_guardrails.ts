import { Duration, Size, SizeRoundingBehavior } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { sizeQuantity as sizeText } from './_common';

/**
 * Synth-time checks shared by the constructs that the Kubernetes API or the server would only
 * reject later (or never, and then misbehave). Each throws an `Error` that names the property,
 * the value given and the fix.
 */

/**
 * The smallest data volume: a new datadir takes 200 to 250 MiB (MySQL 8.4's redo log alone is
 * 100 MiB, MariaDB's 96 MiB) and a binary log file grows to `max_binlog_size` (1 GiB) before it is
 * rotated and can be purged, so a smaller volume fills up under ordinary writes.
 */
export const MIN_STORAGE = Size.gibibytes(1);

/**
 * The largest share of the memory limit the InnoDB buffer pool may take: the server needs memory
 * beside it (connections, sort and join buffers, the performance schema), and MySQL's own
 * `innodb_dedicated_server` takes 75%. Above it the container is OOM-killed under load.
 */
export const MAX_BUFFER_POOL_SHARE = 0.8;

/** The servers' default `innodb_buffer_pool_size` (MySQL and MariaDB alike). */
export const DEFAULT_BUFFER_POOL = Size.mebibytes(128);

/**
 * The shortest time between two backups of one schedule. A backup is a full copy that pauses its
 * source (a replica's SQL thread, or a desynchronized Galera node) and starts pods each time;
 * closer runs keep a member permanently behind, and `concurrencyPolicy: Forbid` skips runs that
 * come while the previous one still runs.
 */
export const MIN_BACKUP_GAP_MINUTES = 5;

function kib(size: Size): number {
  return size.toKibibytes({ rounding: SizeRoundingBehavior.NONE });
}

/** A data volume of at least `MIN_STORAGE`. */
export function checkStorage(prop: string, storage: Size): void {
  if (kib(storage) < kib(MIN_STORAGE)) {
    throw new Error(
      `${prop} ${sizeText(storage)} is too small for a datadir: give at least ${sizeText(MIN_STORAGE)} (a new datadir takes about 250 MiB ` +
      'and a binary log file grows to 1 GiB before it rotates), e.g. Size.gibibytes(10)',
    );
  }
}

/** The volume of a database must be writable. */
export function checkAccessModes(prop: string, modes: kplus.PersistentVolumeAccessMode[]): void {
  const writable = [
    kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE,
    kplus.PersistentVolumeAccessMode.READ_WRITE_MANY,
    kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE_POD,
  ];
  if (!modes.some((m) => writable.includes(m))) {
    throw new Error(
      `${prop} [${modes.join(', ')}] has no writable mode, so the server cannot write its datadir: ` +
      'use [PersistentVolumeAccessMode.READ_WRITE_ONCE] (or READ_WRITE_ONCE_POD)',
    );
  }
}

/** A StorageClass name is a DNS subdomain. */
export function checkStorageClassName(prop: string, name: string | undefined): void {
  if (name !== undefined && (name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name))) {
    throw new Error(`${prop} '${name}' is not a StorageClass name: give the name of an existing StorageClass (lowercase letters, digits, '-' and '.'), e.g. 'standard'`);
  }
}

/** A CPU amount (`500m`, `2`, `1.5`) in millicores; undefined when not a plain amount. */
function millicores(amount: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(m?)$/.exec(amount);
  return match ? Number(match[1]) * (match[2] ? 1 : 1000) : undefined;
}

/** Requests above their limits: Kubernetes rejects the pod template, and with it the object. */
export function checkResources(prop: string, resources: kplus.ContainerResources | undefined): void {
  const cpu = resources?.cpu;
  if (cpu?.request && cpu.limit) {
    const [request, limit] = [millicores(cpu.request.amount), millicores(cpu.limit.amount)];
    if (request !== undefined && limit !== undefined && request > limit) {
      throw new Error(`${prop}.cpu.request ${cpu.request.amount} is above ${prop}.cpu.limit ${cpu.limit.amount}: lower the request or raise the limit (a request may equal its limit)`);
    }
  }
  for (const kind of ['memory', 'ephemeralStorage'] as const) {
    const pair = resources?.[kind];
    if (pair?.request && pair.limit && kib(pair.request) > kib(pair.limit)) {
      throw new Error(
        `${prop}.${kind}.request ${sizeText(pair.request)} is above ${prop}.${kind}.limit ${sizeText(pair.limit)}: lower the request or raise the limit ` +
        '(a request may equal its limit)',
      );
    }
  }
}

/** A size of an option file (`512M`, `1G`, `134217728`); undefined when it is not one. */
export function cnfSize(value: string): Size | undefined {
  const match = /^\s*([0-9]+)\s*([KMGT]?)\s*$/i.exec(value);
  if (!match) return undefined;
  const n = Number(match[1]);
  switch (match[2].toUpperCase()) {
    case 'K': return Size.kibibytes(n);
    case 'M': return Size.mebibytes(n);
    case 'G': return Size.gibibytes(n);
    case 'T': return Size.tebibytes(n);
    default: return Size.kibibytes(n / 1024);
  }
}

/**
 * The buffer pool must leave room under the memory limit: `typed` (the prop `typedProp`), else
 * `serverOptions.innodb_buffer_pool_size`, else the server's default. No limit, no check.
 */
export function checkBufferPool(
  memoryLimit: Size | undefined, serverOptions: { [name: string]: string } | undefined, typedProp?: string, typed?: Size,
): void {
  if (!memoryLimit) return;
  const raw = Object.entries(serverOptions ?? {}).find(([k]) => normalizeOption(k) === 'innodb_buffer_pool_size');
  const rawSize = raw ? cnfSize(raw[1]) : undefined;
  const pool = typed ?? rawSize ?? DEFAULT_BUFFER_POOL;
  if (kib(pool) <= kib(memoryLimit) * MAX_BUFFER_POOL_SHARE) return;
  const most = Math.floor(kib(memoryLimit) * MAX_BUFFER_POOL_SHARE / 1024);
  const room = `raise the memory limit to at least ${Math.ceil(kib(pool) / MAX_BUFFER_POOL_SHARE / 1024)}Mi`;
  const [what, fix] = typed
    ? [`${typedProp} ${sizeText(typed)}`, `give at most ${most}Mi, or ${room}`]
    : raw && rawSize
      ? [`serverOptions.${raw[0]} '${raw[1]}'`, `give at most ${most}M, or ${room}`]
      : [`the default innodb_buffer_pool_size (${sizeText(DEFAULT_BUFFER_POOL)})`, room];
  throw new Error(
    `${what} is more than ${MAX_BUFFER_POOL_SHARE * 100}% of resources.memory.limit ${sizeText(memoryLimit)}, which leaves the server ` +
    `too little memory beside it (connections, buffers) and gets it OOM-killed: ${fix}`,
  );
}

/** `max_connections` within the engine's range. */
export function checkMaxConnections(maxConnections: number, mariadb: boolean): void {
  const min = mariadb ? 10 : 1;
  const max = 100000;
  if (!Number.isInteger(maxConnections) || maxConnections < min || maxConnections > max) {
    throw new Error(
      `maxConnections must be a whole number from ${min} to ${max} (the range of ${mariadb ? 'MariaDB' : 'MySQL'}'s max_connections), ` +
      `got ${maxConnections}: e.g. 500`,
    );
  }
}

/** An option name as the server reads it: lowercase, `_` for `-`, without `loose_`. */
export function normalizeOption(key: string): string {
  return key.toLowerCase().replace(/-/g, '_').replace(/^loose_/, '');
}

/**
 * The reason a server option is reserved, or undefined: the option itself, or the boolean option
 * that a `skip_`, `disable_` or `enable_` prefix turns off or on (`skip-log-bin` is `log_bin`).
 */
export function reservedReason(key: string, reserved: Record<string, string>): string | undefined {
  const normalized = normalizeOption(key);
  return reserved[normalized] ?? reserved[normalized.replace(/^(skip|disable|enable)_/, '')];
}

/** The message for a server option that the construct manages. */
export function reservedMessage(key: string, reason: string): string {
  return `serverOptions.${key} sets an option the construct manages: ${reason}; remove it from serverOptions`;
}

/** Galera's mandatory settings (MariaDB's "Mandatory Options"), which serverOptions may not change. */
const GALERA_MANDATORY: Record<string, string> = {
  binlog_format: 'ROW',
  innodb_autoinc_lock_mode: '2',
  default_storage_engine: 'InnoDB',
};

/** Galera provider options that the start logic or the Services depend on. */
const GALERA_PROVIDER_RESERVED = /(?:^|;)\s*(pc\.recovery|pc\.bootstrap|gmcast\.listen_addr|ist\.recv_addr|base_port)\s*=/i;

/** serverOptions of a Galera cluster: the mandatory settings keep their values; no provider option that the start logic owns. */
export function checkGaleraServerOptions(serverOptions: { [name: string]: string }): void {
  for (const [key, value] of Object.entries(serverOptions)) {
    const normalized = normalizeOption(key);
    const required = GALERA_MANDATORY[normalized];
    if (required !== undefined && String(value).trim().toLowerCase() !== required.toLowerCase()) {
      throw new Error(`serverOptions.${key} '${value}' breaks Galera replication, which needs ${normalized} = ${required}: remove it from serverOptions`);
    }
    const provider = normalized === 'wsrep_provider_options' ? GALERA_PROVIDER_RESERVED.exec(String(value)) : null;
    if (provider) {
      throw new Error(
        `serverOptions.${key} '${value}' sets ${provider[1]}, which the start logic and the Services depend on (ports 4567 and 4568, ` +
        `recovery after a full outage): remove ${provider[1]} from it`,
      );
    }
  }
}

/** Service names are DNS-1035 labels: they start with a letter. */
export function checkServiceName(prop: string, name: string): void {
  if (!/^[a-z]/.test(name)) {
    throw new Error(`${prop} '${name}' starts with a digit, but it names the cluster's Services, whose names must start with a letter: choose a name that starts with a letter, e.g. 'db-${name}'`);
  }
}

/** The name of a time zone as Kubernetes' CronJob controller loads it (Go's tz database). */
export function checkTimeZone(prop: string, timeZone: string): void {
  let resolved: string | undefined;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    resolved = undefined;
  }
  // tz database names: segments that start with a capital letter (the controller matches case)
  const shaped = /^[A-Z][A-Za-z0-9_+-]*(\/[A-Z][A-Za-z0-9_+-]*)*$/.test(timeZone);
  if (!resolved || !shaped || timeZone === 'Local') {
    const hint = resolved && resolved.toLowerCase() === timeZone.toLowerCase() ? `'${resolved}'` : "e.g. 'Etc/UTC' or 'Europe/Berlin'";
    throw new Error(`${prop} '${timeZone}' is not an IANA time zone name: give ${hint}`);
  }
}

/** The sets of one cron field, and whether it was `*` (robfig/cron, the CronJob controller's parser). */
interface CronField {
  readonly values: Set<number>;
  readonly star: boolean;
}

function cronField(field: string, min: number, max: number, names: string[] = [], nameBase = 0): CronField {
  const values = new Set<number>();
  let star = false;
  const value = (token: string) => {
    const index = names.indexOf(token.toUpperCase());
    return index >= 0 ? index + nameBase : Number(token);
  };
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    let [from, to] = [min, max];
    if (range === '*' || range === '?') {
      star = star || step === 1;
    } else {
      const [a, b] = range.split('-');
      from = value(a);
      to = b === undefined ? (stepText === undefined ? from : max) : value(b);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return { values, star };
}

/** The days and times of day of a (checked) five-field cron expression. */
function parseCron(expression: string) {
  const [minute, hour, dom, month, dow] = expression.trim().split(/\s+/);
  const days = cronField(dow, 0, 7, ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']);
  if (days.values.has(7)) days.values.add(0);
  const minutes = [...cronField(minute, 0, 59).values];
  const times = [...cronField(hour, 0, 23).values].flatMap((h) => minutes.map((m) => h * 60 + m)).sort((a, b) => a - b);
  return {
    dom: cronField(dom, 1, 31),
    month: cronField(month, 1, 12, ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'], 1),
    dow: days,
    times,
  };
}

/** Days simulated: 8 years from a leap year, so that every date and weekday combination occurs. */
const SIMULATED_DAYS = 2922;

/**
 * The shortest time in minutes between two runs of a set of (checked) cron expressions, by the
 * wall clock of their time zone, or undefined when they run only once. Throws for an expression
 * that never runs (e.g. February 30).
 */
export function shortestGapMinutes(prefix: string, expressions: string[]): number | undefined {
  const crons = expressions.map(parseCron);
  const ran = crons.map(() => false);
  let last: number | undefined;
  let gap: number | undefined;
  const start = Date.UTC(2024, 0, 1);
  for (let day = 0; day < SIMULATED_DAYS; day++) {
    const date = new Date(start + day * 86_400_000);
    const today = new Set<number>();
    crons.forEach((c, i) => {
      const domMatch = c.dom.values.has(date.getUTCDate());
      const dowMatch = c.dow.values.has(date.getUTCDay());
      const dayMatch = c.dom.star || c.dow.star ? domMatch && dowMatch : domMatch || dowMatch;
      if (dayMatch && c.month.values.has(date.getUTCMonth() + 1) && c.times.length > 0) {
        ran[i] = true;
        c.times.forEach((t) => today.add(t));
      }
    });
    for (const t of [...today].sort((a, b) => a - b)) {
      const minute = day * 1440 + t;
      if (last !== undefined) {
        gap = Math.min(gap ?? Infinity, minute - last);
        if (gap < MIN_BACKUP_GAP_MINUTES) return gap;
      }
      last = minute;
    }
  }
  const never = ran.indexOf(false);
  if (never >= 0) {
    throw new Error(`${prefix}schedules[${never}] '${expressions[never]}' never runs: no date matches its day of month, month and day of week; give a date that exists, e.g. '0 1 1 * *' for the 1st of every month`);
  }
  return gap;
}

/**
 * How often the backups of one schedule run (`schedule` names the prop and its value, `gap` is
 * the shortest time between runs) and what retention keeps of them.
 */
export function checkBackupCadence(schedule: string, gap: number | undefined, keepFor: Duration | undefined, keepLastGiven: boolean): void {
  if (gap === undefined) return;
  if (gap < MIN_BACKUP_GAP_MINUTES) {
    throw new Error(
      `${schedule} runs backups ${gap} minute${gap === 1 ? '' : 's'} apart: every run is a full copy that pauses its source member, ` +
      `so give runs at least ${MIN_BACKUP_GAP_MINUTES} minutes apart, e.g. Cron.schedule({ minute: '0' }) for hourly backups`,
    );
  }
  if (keepFor !== undefined && !keepLastGiven && keepFor.toSeconds() <= gap * 60) {
    throw new Error(
      `keepFor ${keepFor.toHumanString()} keeps only the newest backup, because backups run ${humanMinutes(gap)} apart and keepLast is not set: ` +
      `keep them for longer than ${humanMinutes(gap)}, e.g. Duration.days(7), or also set keepLast, e.g. keepLast: 7`,
    );
  }
}

function humanMinutes(minutes: number): string {
  return Duration.minutes(minutes).toHumanString();
}

/** A Galera node's startup probe must outlast its wait for a Primary Component. */
export function checkStartupOutlastsJoin(startupSeconds: number, joinSeconds: number): void {
  if (startupSeconds <= joinSeconds) {
    throw new Error(
      `startupTimeout ${startupSeconds} s is not longer than primaryComponentTimeout ${joinSeconds} s: the startup probe would restart a node ` +
      'that is still joining; make startupTimeout longer (it also covers crash recovery and state transfers), e.g. Duration.hours(1)',
    );
  }
}
