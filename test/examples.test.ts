import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { App, Testing, Yaml } from 'cdk8s';
import { assertValid, Manifest } from './util';

const root = path.join(__dirname, '..');
const examplesDir = path.join(root, 'examples');
const examples = fs.readdirSync(examplesDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
const shippedScripts = new Set(
  fs.readdirSync(path.join(root, 'src', 'scripts')).map((f) => fs.readFileSync(path.join(root, 'src', 'scripts', f), 'utf8')),
);

function synthExample(name: string): Manifest[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { buildApp } = require(path.join(examplesDir, name, 'app.ts')) as { buildApp: (app: App) => void };
  const app = Testing.app();
  buildApp(app);
  expect(app.charts.length).toBeGreaterThan(0);
  return app.charts.flatMap((c) => Testing.synth(c) as Manifest[]);
}

test('there are example apps', () => {
  expect(examples.length).toBeGreaterThan(0);
});

describe.each(examples.map((e) => [e]))('example %s', (name) => {
  test('is a cdk8s app that writes to cdk8s.out', () => {
    const config = fs.readFileSync(path.join(examplesDir, name, 'cdk8s.yaml'), 'utf8');
    expect(config).toMatch(/^output: cdk8s\.out$/m);
    expect(fs.existsSync(path.join(examplesDir, name, 'main.ts'))).toBe(true);
  });

  test('synthesizes objects that all match the Kubernetes API schema', () => {
    const manifests = synthExample(name);
    expect(manifests.length).toBeGreaterThan(0);
    assertValid(manifests);
  });

  test('ships only scripts that are files of src/scripts, so every one of them is shellchecked', () => {
    const scripts = synthExample(name)
      .filter((m) => m.kind === 'ConfigMap')
      .flatMap((m) => Object.entries<string>(m.data ?? {}).filter(([key]) => key.endsWith('.sh')).map(([, text]) => text));
    for (const text of scripts) {
      expect(shippedScripts.has(text)).toBe(true);
    }
  });
});

test('the README command `npx projen synth:examples` writes valid YAML for every example', () => {
  execFileSync('npx', ['projen', 'synth:examples'], { cwd: root, stdio: 'pipe', timeout: 300_000 });
  for (const name of examples) {
    const out = path.join(examplesDir, name, 'cdk8s.out');
    const files = fs.readdirSync(out).filter((f) => f.endsWith('.k8s.yaml'));
    expect(files.length).toBeGreaterThan(0);
    assertValid(files.flatMap((f) => Yaml.load(path.join(out, f)) as Manifest[]));
  }
}, 300_000);
