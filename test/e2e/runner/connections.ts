import type { Service } from './k8s';
import { check } from './shell';

/**
 * The record of new TCP connections on the cluster network: an nftables set in the bridge
 * family of the cluster namespace, to which every TCP SYN without ACK adds (source address,
 * destination address, destination port). The bridge family sees pod-to-pod frames (forward),
 * frames to the Service addresses and the bridge (input) and connections the cluster namespace
 * opens, i.e. the Service forwarder's and tcpSocket probes' (output). It records each distinct
 * triple once, however often it is used, and never drops or delays a packet.
 */
const TABLE = 'podrun_connections';
const SET = 'seen';
const RECORD = `tcp flags & (syn | ack) == syn add @${SET} { ip saddr . ip daddr . tcp dport };`;

export const CONNECTION_RECORD_RULES = `table bridge ${TABLE} {
  set ${SET} { type ipv4_addr . ipv4_addr . inet_service; size 65535; flags dynamic; }
  chain forward { type filter hook forward priority 0; policy accept; ${RECORD} }
  chain input { type filter hook input priority 0; policy accept; ${RECORD} }
  chain output { type filter hook output priority 0; policy accept; ${RECORD} }
}
`;

/** One recorded (source, destination, port) triple, as addresses. */
export interface RawConnection {
  readonly source: string;
  readonly destination: string;
  readonly port: number;
}

/** Starts recording in the cluster namespace. */
export async function startConnectionRecord(netns: string): Promise<void> {
  await check(['nsenter', `--net=/run/netns/${netns}`, '--', 'nft', '-f', '-'], { stdin: CONNECTION_RECORD_RULES });
}

/** Every triple recorded so far. */
export async function readConnectionRecord(netns: string): Promise<RawConnection[]> {
  const json = JSON.parse(await check(['nsenter', `--net=/run/netns/${netns}`, '--', 'nft', '-j', 'list', 'set', 'bridge', TABLE, SET]));
  const set = (json.nftables as any[]).find((entry) => entry.set)?.set;
  if (!set) {
    throw new Error(`the connection record (nft set bridge ${TABLE} ${SET}) is missing in ${netns}`);
  }
  return ((set.elem ?? []) as any[]).map((element) => {
    const [source, destination, port] = (element.elem?.val ?? element).concat as [string, string, number];
    return { source, destination, port: Number(port) };
  });
}

/**
 * What an address of the cluster network was when it was in use: a pod incarnation (pod
 * addresses are never reused within a runner), a Service's virtual address, the node (the
 * bridge address: the Service forwarder's connections to endpoints and tcpSocket probes) or the
 * test client (`rt.client`).
 */
export type NetworkIdentity =
  | {
    readonly kind: 'pod';
    readonly name: string;
    readonly namespace: string;
    readonly labels: Record<string, string>;
    readonly ports: ReadonlyArray<{ readonly name?: string; readonly containerPort: number; readonly protocol?: string }>;
  }
  | { readonly kind: 'service'; readonly name: string; readonly namespace: string; readonly manifest: Service }
  | { readonly kind: 'node' | 'client' | 'unknown' };

/** A new TCP connection seen on the cluster network. */
export interface RecordedConnection {
  readonly sourceIp: string;
  readonly destinationIp: string;
  readonly port: number;
  readonly source: NetworkIdentity;
  readonly destination: NetworkIdentity;
}
