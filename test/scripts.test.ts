import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const scriptsDir = path.join(root, 'src', 'scripts');
const shippedScripts = fs.readdirSync(scriptsDir).filter((f) => f.endsWith('.sh')).sort();
const otherScripts = [...findShellFiles(path.join(root, 'test')), ...findShellFiles(path.join(root, 'examples'))];

function findShellFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'cdk8s.out' ? [] : findShellFiles(p);
    return e.name.endsWith('.sh') ? [p] : [];
  });
}

function shellcheck(file: string): { status: number | null; output: string } {
  const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', '--format=gcc', '--external-sources', file], { encoding: 'utf8' });
  if (r.error) {
    throw new Error(`shellcheck cannot run (${r.error.message}): install it with 'apt-get install -y shellcheck' (npx projen host:setup does)`);
  }
  return { status: r.status, output: r.stdout + r.stderr };
}

describe('shell scripts', () => {
  test('shellcheck catches a broken script, so a clean result means something', () => {
    const dir = fs.mkdtempSync('/tmp/cdk8s-mysql-shellcheck-');
    const bad = path.join(dir, 'bad.sh');
    fs.writeFileSync(bad, '#!/bin/bash\nfor f in $(ls $DIR); do cd $f; done\n');
    const r = shellcheck(bad);
    fs.rmSync(dir, { recursive: true });
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/SC2045|SC2086/);
  });

  test.each([...shippedScripts.map((f) => path.join(scriptsDir, f)), ...otherScripts].map((f) => [path.relative(root, f)]))(
    '%s passes shellcheck',
    (file) => {
      const r = shellcheck(path.join(root, file));
      expect(r.output).toEqual('');
      expect(r.status).toBe(0);
    },
  );

  test.each(shippedScripts.map((f) => [f]))('%s is strict: it starts with set -euo pipefail', (file) => {
    const text = fs.readFileSync(path.join(scriptsDir, file), 'utf8');
    expect(text).toMatch(/^#!\/bin\/bash\n(#.*\n)*set -euo pipefail\n/);
  });
});

describe('the npm package', () => {
  test('ships the compiled library and every script of src/scripts', () => {
    if (!fs.existsSync(path.join(root, 'lib', 'index.js'))) {
      throw new Error('lib/ is not built: run `npx projen compile` (or `npx projen build`) before the tests');
    }
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    expect(files).toEqual(expect.arrayContaining(['lib/index.js', 'lib/_scripts.js', '.jsii', 'API.md', 'README.md', 'LICENSE']));
    const missing = fs.readdirSync(scriptsDir).filter((f) => !files.includes(`lib/scripts/${f}`));
    expect(missing).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('examples/'))).toEqual([]);
  });
});
