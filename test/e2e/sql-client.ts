/**
 * SQL from the pod runner's client namespace, as an application in the cluster would connect:
 * the `mariadb` client with option files holding the logins (never a password on a command line).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import type { PodRunner } from './runner';

/** Quotes a value for an option file: "..." with \ and " escaped. */
export function cnfQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface SqlClientOptions {
  /** The root password of each login, by the name of its option file (e.g. `{ "root.cnf": pw }`). */
  readonly logins: Record<string, string>;
  /** Make every session's reads causal (`wsrep_sync_wait = 1`), for Galera. */
  readonly causalReads?: boolean;
}

export class SqlClient {
  private readonly dir: string;

  constructor(private readonly rt: () => PodRunner, private readonly options: SqlClientOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'cdk8s-mysql-e2e-client-'));
    for (const [login, password] of Object.entries(options.logins)) {
      writeFileSync(this.file(login), `[client]\nuser=root\npassword=${cnfQuote(password)}\n`, { mode: 0o600 });
    }
  }

  /** Runs SQL as root on `host` with the given login (default: the first one); the output, trimmed. */
  async sql(host: string, statements: string, login = Object.keys(this.options.logins)[0]): Promise<string> {
    const r = await this.rt().client(['timeout', '120', 'mariadb', `--defaults-extra-file=${this.file(login)}`, `--host=${host}`,
      '--connect-timeout=5', '--batch', '--skip-column-names'],
    { stdin: this.options.causalReads ? `SET SESSION wsrep_sync_wait = 1;\n${statements}` : statements, timeoutMs: 150_000 });
    if (r.code !== 0) {
      throw new Error(`${host}: SQL failed (exit ${r.code}): ${r.stderr.trim()}\n${statements}`);
    }
    return r.stdout.trim();
  }

  /** "table rows checksum" of every table of a schema (or of the given tables), one line each. */
  async tables(host: string, login?: string, only?: string[], schema = 'e2e'): Promise<string> {
    const names = only ?? (await this.sql(host, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${schema}' ORDER BY 1`, login)).split('\n');
    const lines: string[] = [];
    for (const t of names) {
      const rows = await this.sql(host, `SELECT COUNT(*) FROM ${schema}.\`${t}\``, login);
      const checksum = (await this.sql(host, `CHECKSUM TABLE ${schema}.\`${t}\` EXTENDED`, login)).split('\t')[1];
      lines.push(`${t} ${rows} ${checksum}`);
    }
    return lines.join('\n');
  }

  /** Removes the option files. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private file(login: string): string {
    return join(this.dir, login);
  }
}
