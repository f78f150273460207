import { ApiObject, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Manifest, ofKind, one, synth, validateManifest } from './util';

/** A well-formed StatefulSet as plain JSON, synthesized by cdk8s-plus. */
function goodStatefulSet(): Manifest {
  const chart = Testing.chart();
  new kplus.StatefulSet(chart, 'Db', { containers: [{ name: 'db', image: 'mariadb:11.4', portNumber: 3306 }] });
  return one(Testing.synth(chart) as Manifest[], 'StatefulSet');
}

describe('schema validation', () => {
  test('a well-formed StatefulSet has no errors', () => {
    expect(validateManifest(goodStatefulSet())).toEqual([]);
  });

  test('a wrong type is caught', () => {
    const sts = goodStatefulSet();
    sts.spec.replicas = '3';
    expect(validateManifest(sts).join('\n')).toMatch(/spec\/replicas must be integer/);
  });

  test('a missing required field is caught', () => {
    const sts = goodStatefulSet();
    delete sts.spec.selector;
    expect(validateManifest(sts).join('\n')).toMatch(/spec must have required property selector/);
  });

  test('an unknown field at the top of a spec is caught', () => {
    const sts = goodStatefulSet();
    sts.spec.replicaz = 3;
    expect(validateManifest(sts)).toEqual(['/spec/replicaz is not a field of the schema (unknown field "replicaz")']);
  });

  test('an unknown field deep inside a container is caught', () => {
    const sts = goodStatefulSet();
    sts.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    expect(validateManifest(sts)).toEqual([
      '/spec/template/spec/containers/0/imagePullPolicyy is not a field of the schema (unknown field "imagePullPolicyy")',
    ]);
  });

  test('free-form maps such as labels and ConfigMap data are not reported as unknown fields', () => {
    const chart = Testing.chart();
    new kplus.ConfigMap(chart, 'Config', { metadata: { labels: { anything: 'goes' } }, data: { 'my.cnf': '[mysqld]\n' } });
    expect(() => synth(chart)).not.toThrow();
  });

  test('an object whose kind has no schema is an error, not a pass', () => {
    expect(validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual([
      'no schema for apiVersion example.com/v1 kind Widget',
    ]);
  });

  test('a ServiceMonitor and a cert-manager Certificate are validated against their own schemas', () => {
    const monitor = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'm' },
      spec: { selector: { matchLabels: { app: 'db' } }, endpoints: [{ port: 'metrics' }] },
    };
    expect(validateManifest(monitor)).toEqual([]);
    expect(validateManifest({ ...monitor, spec: { ...monitor.spec, endpoints: [{ port: 'metrics', intervall: '30s' }] } })).toEqual([
      '/spec/endpoints/0/intervall is not a field of the schema (unknown field "intervall")',
    ]);
    const certificate = {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: 'c' },
      spec: { secretName: 'c-tls', issuerRef: { name: 'ca', kind: 'Issuer' }, dnsNames: ['db'] },
    };
    expect(validateManifest(certificate)).toEqual([]);
    expect(validateManifest({ ...certificate, spec: { ...certificate.spec, secretName: undefined } }).join('\n')).toMatch(/required property secretName/);
  });

  test('synth rejects a raw ApiObject with an unknown field and names the object', () => {
    const chart = Testing.chart();
    const sts = goodStatefulSet();
    new ApiObject(chart, 'Raw', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'raw' }, spec: { ...sts.spec, replicaz: 3 } });
    expect(() => synth(chart)).toThrow(/StatefulSet\/raw: \/spec\/replicaz is not a field/);
  });
});

describe('picking objects', () => {
  const chart = Testing.chart();
  new kplus.StatefulSet(chart, 'Db', { containers: [{ name: 'db', image: 'mariadb:11.4', portNumber: 3306 }] });
  const manifests = synth(chart);

  test('ofKind filters by kind and by name', () => {
    expect(ofKind(manifests, 'StatefulSet')).toHaveLength(1);
    expect(ofKind(manifests, 'StatefulSet', 'no-such-name')).toHaveLength(0);
  });

  test('one returns the single match and otherwise lists what exists', () => {
    expect(one(manifests, 'Service').kind).toEqual('Service');
    expect(() => one(manifests, 'ConfigMap')).toThrow(/expected one ConfigMap, found 0/);
  });
});
