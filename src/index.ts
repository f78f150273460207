export * from './engine-version';
export * from './mysql-replication-cluster';
export * from './galera-cluster';
