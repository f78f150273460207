import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** Where the shell scripts live: `src/scripts` in the repo, `lib/scripts` in the package. */
export const SCRIPTS_DIR = path.join(__dirname, 'scripts');

/** The text of one of the library's shell scripts, e.g. `replication-init.sh`. */
export function readScript(name: string): string {
  const file = path.join(SCRIPTS_DIR, name);
  if (!fs.existsSync(file)) {
    throw new Error(`script ${name} is missing from ${SCRIPTS_DIR}: the package was built without its scripts`);
  }
  return fs.readFileSync(file, 'utf8');
}

/** The library's scripts by file name, ready to be the data of a ConfigMap. */
export function readScripts(names: string[]): Record<string, string> {
  const data: Record<string, string> = {};
  for (const name of names) {
    data[name] = readScript(name);
  }
  return data;
}

/**
 * A short, stable hash of some files' contents. Put on a pod template as an annotation, it rolls
 * the pods whenever a script or a config file changes.
 */
export function contentHash(files: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(files).sort()) {
    hash.update(key).update('\0').update(files[key]).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}
