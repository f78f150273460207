import { chmodSync, existsSync, mkdirSync, rmSync } from 'fs';
import { join } from 'path';
import type { ClaimStore } from './volumes';

/**
 * PersistentVolumeClaims: one directory per claim, by namespace and claim name, that outlives
 * the pods using it. A fresh volume's root is `root:root 0755`, like a newly formatted block
 * volume, so a non-root server needs `fsGroup` as it would on a real cluster.
 */
export class Claims implements ClaimStore {
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  public path(namespace: string, claim: string): string | undefined {
    const path = this.location(namespace, claim);
    return existsSync(path) ? path : undefined;
  }

  /** Binds a claim (creates its volume) unless it exists. */
  public ensure(namespace: string, claim: string): string {
    const path = this.location(namespace, claim);
    if (!existsSync(path)) {
      mkdirSync(path, { recursive: true });
      chmodSync(path, 0o755);
    }
    return path;
  }

  public delete(namespace: string, claim: string): void {
    rmSync(this.location(namespace, claim), { recursive: true, force: true });
  }

  private location(namespace: string, claim: string): string {
    return join(this.dir, namespace, claim);
  }
}
