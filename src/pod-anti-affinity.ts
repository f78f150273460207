/**
 * How strictly the pods of a cluster are kept on different Kubernetes nodes
 * (pod anti-affinity on `kubernetes.io/hostname`), so that losing one node loses one member.
 */
export enum PodAntiAffinity {
  /**
   * The scheduler places the pods on different nodes when it can, and on a shared node when it
   * cannot (too few nodes, or too little room on them): pods never stay Pending for it.
   */
  PREFERRED = 'preferred',
  /**
   * Never two pods of the cluster on one node: a pod that finds no node without another one
   * stays Pending until a node is added. Use it with at least as many schedulable nodes as pods,
   * plus one for rolling updates and drains to make progress.
   */
  REQUIRED = 'required',
}
