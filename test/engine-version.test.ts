import { DatabaseEngine, EngineVersion } from '../src';

describe('EngineVersion', () => {
  test('the well-known versions name their engine, series and default image', () => {
    expect([EngineVersion.MYSQL_8_4, EngineVersion.MYSQL_8_0, EngineVersion.MARIADB_10_11, EngineVersion.MARIADB_11_4].map(
      (v) => [v.engine, v.series, v.image, v.isMariaDb],
    )).toEqual([
      [DatabaseEngine.MYSQL, '8.4', 'mysql:8.4', false],
      [DatabaseEngine.MYSQL, '8.0', 'mysql:8.0', false],
      [DatabaseEngine.MARIADB, '10.11', 'mariadb:10.11', true],
      [DatabaseEngine.MARIADB, '11.4', 'mariadb:11.4', true],
    ]);
  });

  test('a patch release keeps its series and pins the image to it', () => {
    const v = EngineVersion.mariadb('11.4.5');
    expect([v.series, v.version, v.image]).toEqual(['11.4', '11.4.5', 'mariadb:11.4.5']);
  });

  test.each([
    ['mysql', '5.7'],
    ['mysql', '8.1'],
    ['mysql', '8.40'],
    ['mariadb', '10.6'],
    ['mariadb', '11.4-rc'],
    ['mariadb', 'latest'],
  ])('fails on the unsupported %s version %s and names the supported series', (engine, version) => {
    const make = engine === 'mysql' ? EngineVersion.mysql : EngineVersion.mariadb;
    expect(() => make(version)).toThrow(new RegExp(`EngineVersion.${engine}\\('${version}'\\) is not a supported version: use a ${engine} release of the`));
  });
});
