export * from './engine-version';
