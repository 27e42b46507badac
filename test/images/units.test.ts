import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesSize, formatDuration, humanDuration, humanSize, parseBytes, parseDuration, tabwrite, timeAgo } from '../../lib/util/units';

describe('units (go-units compatible)', () => {
  it('parseDuration reads Go durations (and bare seconds); formatDuration writes them short', () => {
    for (const [text, ms] of [['30s', 30_000], ['1m30s', 90_000], ['500ms', 500], ['1.5h', 5_400_000], ['2', 2000], ['0', 0], [' 10s ', 10_000]] as const) {
      assert.equal(parseDuration(text), ms, text);
    }
    for (const bad of ['', 'soon', '10', '-1s', '1d', '5 s', 's']) if (bad !== '10') assert.equal(parseDuration(bad), null, bad);
    assert.deepEqual([500, 2000, 1200, 60_000, 90_000, 240_000].map(formatDuration), ['500ms', '2s', '1.2s', '1m', '1m30s', '4m']);
  });

  it('bytesSize: binary units, 4 significant digits', () => {
    const cases: [number, string][] = [
      [0, '0B'],
      [591, '591B'],
      [1023, '1023B'],
      [1024, '1KiB'],
      [1571, '1.534KiB'],
      [1536, '1.5KiB'],
      [1048575, '1024KiB'],
      [10 * 1024 * 1024, '10MiB'],
      [1.5 * 1024 ** 3, '1.5GiB'],
      [2 * 1024 ** 4, '2TiB'],
    ];
    for (const [n, s] of cases) assert.equal(bytesSize(n), s, String(n));
  });
  it('humanSize: decimal units', () => {
    assert.equal(humanSize(9927000), '9.927MB');
    assert.equal(humanSize(1679), '1.679kB');
    assert.equal(humanSize(2560000), '2.56MB');
  });
  it('humanDuration', () => {
    const s = 1000;
    const cases: [number, string][] = [
      [0, 'Less than a second'],
      [1 * s, '1 second'],
      [9 * s, '9 seconds'],
      [60 * s, 'About a minute'],
      [30 * 60 * s, '30 minutes'],
      [60 * 60 * s, 'About an hour'],
      [5 * 3600 * s, '5 hours'],
      [3 * 86400 * s, '3 days'],
      [15 * 86400 * s, '2 weeks'],
      [90 * 86400 * s, '3 months'],
      [800 * 86400 * s, '2 years'],
    ];
    for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
    assert.equal(timeAgo(new Date(Date.now() - 9500)), '9 seconds ago');
  });
  it('parseBytes', () => {
    assert.equal(parseBytes('512'), 512);
    assert.equal(parseBytes('10k'), 10240);
    assert.equal(parseBytes('1.5MiB'), 1.5 * 1024 * 1024);
    assert.equal(parseBytes('2g'), 2 * 1024 ** 3);
    assert.equal(parseBytes('lots'), null);
  });
  it('tabwrite matches Go tabwriter(1, 8, 1, \\t) as in img ls', () => {
    const out = tabwrite([
      ['NAME', 'SIZE', 'CREATED AT', 'UPDATED AT', 'DIGEST'],
      ['jess/img:latest', '1.534KiB', '9 seconds ago', '9 seconds ago', 'sha256:27'],
      ['jess/thing:latest', '591B', '30 minutes ago', '30 minutes ago', 'sha256:d6'],
    ]);
    assert.equal(
      out,
      'NAME\t\t\tSIZE\t\tCREATED AT\tUPDATED AT\tDIGEST\n' +
        'jess/img:latest\t\t1.534KiB\t9 seconds ago\t9 seconds ago\tsha256:27\n' +
        'jess/thing:latest\t591B\t\t30 minutes ago\t30 minutes ago\tsha256:d6\n',
    );
    assert.equal(tabwrite([['a', 'b'], ['ccc', 'd']], { padchar: ' ', padding: 3, minwidth: 0 }), 'a     b\nccc   d\n');
  });
});
