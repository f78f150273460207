/**
 * The node's network presence inside the cluster namespace, run as a separate Node.js process
 * (the runner transpiles this file and starts it with `nsenter --net`):
 *  - like kube-proxy, it listens on every ClusterIP Service port and forwards each accepted TCP
 *    connection to one ready endpoint, round robin; a port without endpoints is closed, so a
 *    client gets "connection refused". A forwarded connection behaves like one that kube-proxy
 *    rewrote: each direction ends on its own (a client that half-closes still gets the answer),
 *    small writes are not held back (no Nagle), and a reset by either side, or an endpoint that
 *    refuses or cannot be reached, resets the other side: a client never mistakes a connection
 *    that the forwarder could not make for a server that closed it cleanly. Each such failure is
 *    a line in the forwarder's log;
 *  - like the kubelet, it opens the TCP connections of tcpSocket probes.
 * It talks to the runner over the Node.js IPC channel (see `ForwarderRequest`).
 */
import { createConnection, createServer, Server, Socket } from 'net';
import type { ForwarderReply, ForwarderRequest, ServicePortListener, TcpTarget } from './forwarder';

interface Listening {
  readonly server: Server;
  endpoints: readonly TcpTarget[];
  next: number;
}

const listening = new Map<string, Listening>();

function send(reply: ForwarderReply): void {
  process.send?.(reply);
}

async function sync(listeners: readonly ServicePortListener[]): Promise<string[]> {
  const wanted = new Map(listeners.filter((l) => l.endpoints.length > 0).map((l) => [`${l.ip}:${l.port}`, l]));
  const errors: string[] = [];
  for (const [key, entry] of listening) {
    if (!wanted.has(key)) {
      listening.delete(key);
      await new Promise<void>((resolve) => entry.server.close(() => resolve()));
    }
  }
  for (const [key, listener] of wanted) {
    const existing = listening.get(key);
    if (existing) {
      existing.endpoints = listener.endpoints;
      continue;
    }
    const entry: Listening = {
      server: createServer({ allowHalfOpen: true, noDelay: true }, (client) => forward(entry, client)),
      endpoints: listener.endpoints,
      next: 0,
    };
    try {
      await new Promise<void>((resolve, reject) => {
        entry.server.once('error', reject);
        entry.server.listen(listener.port, listener.ip, () => resolve());
      });
      listening.set(key, entry);
    } catch (error) {
      errors.push(`${key}: ${(error as Error).message}`);
    }
  }
  return errors;
}

function forward(entry: Listening, client: Socket): void {
  const endpoint = entry.endpoints[entry.next++ % entry.endpoints.length];
  const path = `${client.remoteAddress}:${client.remotePort} -> ${endpoint.ip}:${endpoint.port}`;
  const upstream = createConnection({ host: endpoint.ip, port: endpoint.port, allowHalfOpen: true, noDelay: true });
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
  });
  client.setNoDelay(true);
  client.on('error', (error) => {
    log(`${path}: the client's side failed: ${error.message}`);
    reset(upstream);
    client.destroy();
  });
  upstream.on('error', (error) => {
    log(`${path}: ${connected ? "the endpoint's side failed" : 'cannot connect to the endpoint'}: ${error.message}`);
    reset(client);
    upstream.destroy();
  });
  // pipe ends each direction when its source ends, and only that direction (allowHalfOpen)
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Closes the connection with a reset (RST), as the kernel would for a connection through kube-proxy. */
function reset(socket: Socket): void {
  if (!socket.destroyed) {
    socket.resetAndDestroy();
  }
}

function log(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

function probe(target: TcpTarget, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: target.ip, port: target.port });
    const finish = (error?: string): void => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(timeoutMs, () => finish(`timeout after ${timeoutMs} ms`));
    socket.once('connect', () => finish());
    socket.once('error', (error) => finish(error.message));
  });
}

process.on('message', (request: ForwarderRequest) => {
  if (request.type === 'sync') {
    void sync(request.listeners).then((errors) => send({ type: 'synced', id: request.id, errors }));
  } else {
    void probe(request.target, request.timeoutMs).then((error) => send({ type: 'probed', id: request.id, error }));
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
