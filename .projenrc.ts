import { cdk8s, javascript } from 'projen';

const project = new cdk8s.ConstructLibraryCdk8s({
  name: 'cdk8s-mysql',
  description:
    'cdk8s constructs for highly-available MySQL and MariaDB on Kubernetes: replication clusters, Galera clusters and scheduled backups',
  keywords: ['cdk8s', 'kubernetes', 'mysql', 'mariadb', 'galera', 'replication', 'backup', 'statefulset'],
  author: 'cdk8s-mysql maintainers',
  authorAddress: 'maintainers@users.noreply.h-seed-3550004c.example',
  repositoryUrl: 'https://github.com/maintainers/cdk8s-mysql.git',
  license: 'Apache-2.0',
  defaultReleaseBranch: 'main',
  projenrcTs: true,
  packageManager: javascript.NodePackageManager.NPM,

  // cdk8s-plus-27 2.9.5 needs cdk8s ^2.68.11 and constructs ^10.3.0; 2.68.11 is not in the registry.
  cdk8sVersion: '2.68.12',
  constructsVersion: '10.3.0',
  jsiiVersion: '~6.0.0',
  // a jsii module in our public API must be a peer dependency
  peerDeps: ['cdk8s-plus-27@^2.9.5'],
  devDeps: [
    // v4 is CommonJS and works under jest on Node 20; v5 is ESM-only and needs Node 22
    'kubernetes-models@^4.5.1',
    // schemas of the ServiceMonitor, PrometheusRule and Certificate objects we synthesize (v4: CommonJS)
    '@kubernetes-models/prometheus-operator@^4.4.4',
    '@kubernetes-models/cert-manager@^4.4.4',
    'cdk8s-cli',
    // a local S3-compatible server for the backup target tests (rclone against loopback)
    's3rver@^3.7.1',
  ],

  // snapshot drift must fail the tests; `npx projen test:update` rewrites them on purpose
  jestOptions: {
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    jestConfig: {
      testPathIgnorePatterns: ['/node_modules/', '/lib/', '/dist/', '/cdk8s.out/'],
    },
  },
  eslintOptions: { dirs: ['src'], devdirs: ['test', 'examples', 'projenrc', '.projenrc.ts'] },

  // Only the npm target is packaged here. The other jsii targets are prepared below (see
  // `jsiiTargets`) and documented in the README, but their toolchains and registries are not
  // part of this project's CI.
  github: false,
  release: false,
  depsUpgrade: false,
  integrationTestAutoDiscover: false,
});

// Prepared, not packaged: `npx jsii-pacmak --code-only -t python -t java -t dotnet -t go` after
// copying these into package.json's "jsii.targets" generates the other languages' sources.
export const jsiiTargets = {
  python: { distName: 'cdk8s-mysql', module: 'cdk8s_mysql' },
  java: { package: 'org.cdk8s.mysql', maven: { groupId: 'org.cdk8s', artifactId: 'cdk8s-mysql' } },
  dotnet: { namespace: 'Cdk8s.MySql', packageId: 'Cdk8s.MySql' },
  go: { moduleName: 'github.com/maintainers/cdk8s-mysql-go' },
};

// jsii 6 warns loudly that Node 20 is end-of-life; the build itself is fine on Node 20.
project.tasks.addEnvironment('JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION', '20');

// Shell scripts are real files in src/scripts; jsii copies only .ts, so the build ships them.
project.postCompileTask.exec('rm -rf lib/scripts && cp -R src/scripts lib/scripts');

// The registry here lacks some non-linux unrs-resolver 1.13 bindings; 1.12.2 keeps `npm ci` working.
project.package.addField('overrides', { 'unrs-resolver': '1.12.2' });

// The end-to-end tests run real MariaDB/Galera servers from Debian's packages.
const hostSetup = project.addTask('host:setup', {
  description: 'Install the Debian packages the end-to-end tests need (root, Debian)',
  exec: 'bash test/e2e/host-setup.sh',
});
project.testTask.prependSpawn(hostSetup);

project.addTask('synth:examples', {
  description: 'Synthesize every example app in examples/* to examples/<name>/cdk8s.out/*.k8s.yaml',
  exec: 'bash examples/synth-all.sh',
});

// Benchmarks on the e2e pod runner (root, Debian's MariaDB): bench/run.ts, report in bench/results/.
project.addTask('bench', {
  description: 'Measure seeding, backup/restore, Galera recovery, replica catch-up and synthesis against baselines; writes bench/results/report.{md,json}',
  exec: 'ts-node --project test/tsconfig.json bench/run.ts',
  receiveArgs: true,
});

project.gitignore.exclude('cdk8s.out/', '/bench/results/');
project.npmignore?.exclude('/examples/', '/bench/', 'cdk8s.out/', '/.ci/');

project.synth();
