export * from './engine-version';
export * from './mysql-replication-cluster';
export * from './galera-cluster';
export * from './database-cluster';
export * from './backup-target';
export * from './backup-schedule';
export * from './server-tls';
