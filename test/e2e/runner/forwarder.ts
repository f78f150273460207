import { ChildProcess, spawn } from 'child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { ModuleKind, ScriptTarget, transpileModule } from 'typescript';

export interface TcpTarget {
  readonly ip: string;
  readonly port: number;
}

/** A ClusterIP Service port and the ready endpoints its connections go to. */
export interface ServicePortListener extends TcpTarget {
  readonly endpoints: readonly TcpTarget[];
}

export type ForwarderRequest =
  | { readonly type: 'sync'; readonly id: number; readonly listeners: readonly ServicePortListener[] }
  | { readonly type: 'probe'; readonly id: number; readonly target: TcpTarget; readonly timeoutMs: number };

export type ForwarderReply =
  | { readonly type: 'ready' }
  | { readonly type: 'synced'; readonly id: number; readonly errors: readonly string[] }
  | { readonly type: 'probed'; readonly id: number; readonly error?: string };

interface Pending {
  readonly resolve: (reply: ForwarderReply) => void;
  readonly reject: (error: Error) => void;
}

/** Controls the forwarder process (see forwarder-process.ts) that runs in the cluster namespace. */
export class Forwarder {
  public static async start(netns: string, workDir: string): Promise<Forwarder> {
    const script = join(workDir, 'forwarder-process.js');
    const source = readFileSync(join(__dirname, 'forwarder-process.ts'), 'utf8');
    writeFileSync(script, transpileModule(source, { compilerOptions: { module: ModuleKind.CommonJS, target: ScriptTarget.ES2022 } }).outputText);
    const log = openSync(join(workDir, 'forwarder.log'), 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, script], {
      detached: true,
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
    const forwarder = new Forwarder(child);
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the forwarder exited (${code}); see ${join(workDir, 'forwarder.log')}`)));
    });
    return forwarder;
  }

  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (reply: ForwarderReply) => {
      if (reply.type !== 'ready') {
        this.pending.get(reply.id)?.resolve(reply);
        this.pending.delete(reply.id);
      }
    });
    child.on('exit', (code, signal) => {
      for (const pending of this.pending.values()) {
        pending.reject(new Error(`the forwarder exited (${code ?? signal})`));
      }
      this.pending.clear();
    });
  }

  /** Makes the forwarder listen on exactly these Service ports; resolves once it does. */
  public async sync(listeners: readonly ServicePortListener[]): Promise<void> {
    const reply = await this.request((id) => ({ type: 'sync', id, listeners }));
    if (reply.type === 'synced' && reply.errors.length > 0) {
      throw new Error(`the forwarder cannot listen on ${reply.errors.join(', ')}`);
    }
  }

  /** Opens a TCP connection from the node to a pod, as the kubelet does for a tcpSocket probe. */
  public async tcpProbe(target: TcpTarget, timeoutMs: number): Promise<string | undefined> {
    const reply = await this.request((id) => ({ type: 'probe', id, target, timeoutMs }));
    return reply.type === 'probed' ? reply.error : undefined;
  }

  public async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGKILL');
      await exited;
    }
  }

  private request(build: (id: number) => ForwarderRequest): Promise<ForwarderReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) {
        reject(new Error('the forwarder is not running'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.child.send(build(id));
    });
  }
}
