export * from './engine-version';
export * from './mysql-replication-cluster';
