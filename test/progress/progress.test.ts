import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { PlainRenderer, Progress, RawJsonRenderer, TtyRenderer, checkReport, createRenderer, parseProgressMode, sourceContext, warningSummary } from '../../lib/progress/index';
import { ImgError } from '../../lib/util/errors';

class Sink extends Writable {
  text = '';
  columns = 60;
  rows = 40;
  isTTY = false;
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('plain renderer prints BuildKit #N lines, logs with offsets, DONE/CACHED/ERROR', async () => {
  const c = clock();
  const sink = new Sink();
  const r = new PlainRenderer(sink, c.now());
  const p = new Progress({ now: c.now });
  p.on((e) => r.write(e));
  p.cached('a', '[1/3] FROM docker.io/library/busybox');
  p.started('b', '[2/3] RUN echo hi');
  c.advance(312);
  p.log('b', 'hi\npart');
  c.advance(88);
  p.completed('b', '[2/3] RUN echo hi');
  p.started('c', '[3/3] RUN exit 3');
  p.status('c', 's1', { name: 'transferring context', current: 1150, total: 1150, done: true });
  p.log('c', 'boom\n', 2);
  p.failed('c', '[3/3] RUN exit 3', 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3');
  await r.close(false);
  const lines = sink.text.split('\n');
  assert.deepEqual(lines.slice(0, 10), [
    '#1 [1/3] FROM docker.io/library/busybox',
    '#1 CACHED',
    '',
    '#2 [2/3] RUN echo hi',
    '#2 0.312 hi',
    '#2 0.312 part', // dated by its first byte, as BuildKit
    '#2 DONE 0.4s',
    '',
    '#3 [3/3] RUN exit 3',
    '#3 transferring context 1.15kB / 1.15kB 0.0s done',
  ]);
  assert.ok(sink.text.includes('#3 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'));
  assert.ok(sink.text.includes('------\n > [3/3] RUN exit 3:\n0.000 boom\n------\n'), sink.text);
});

test('plain renderer repeats a header when interleaved output resumes', async () => {
  const sink = new Sink();
  const r = new PlainRenderer(sink);
  const p = new Progress();
  p.on((e) => r.write(e));
  p.started('a', 'A');
  p.started('b', 'B');
  p.log('a', 'x\n');
  p.log('b', 'y\n');
  const headers = sink.text.split('\n').filter((l) => /^#\d+ [AB]$/.test(l));
  assert.deepEqual(headers, ['#1 A', '#2 B', '#1 A', '#2 B']);
});

test('rawjson is BuildKit\'s SolveStatus stream: Go field order and omitempty, base64 bytes, UTC times, HTML-safe escapes', async () => {
  const c = clock(Date.UTC(2024, 4, 1, 10, 20, 30, 100));
  const sink = new Sink();
  const r = new RawJsonRenderer(sink);
  const p = new Progress({ now: c.now });
  p.on((e) => r.write(e));
  const a = 'sha256:' + 'a'.repeat(64);
  const b = 'sha256:' + 'b'.repeat(64);
  p.cached(a, '[1/2] FROM busybox');
  c.advance(5);
  p.started(b, '[2/2] RUN a && b <c>', [a]);
  p.status(b, 'extract', { name: 'extracting', current: 10, total: 20 });
  c.advance(250);
  // "é" split across two chunks: one character in the text, the bytes unchanged in the stream.
  p.log(b, Buffer.from([0x68, 0x69, 0xc3]));
  p.log(b, Buffer.from([0xa9, 0x0a]), 2);
  p.status(b, 'extract', { name: 'extracting', current: 20, total: 20, done: true });
  p.failed(b, '[2/2] RUN a && b <c>', 'exit code: 1', [a]);
  p.started('export:image', 'exporting to image');
  p.canceled('export:image', 'exporting to image');
  p.warn('internal:dockerfile', {
    level: 1,
    short: 'JSONArgsRecommended: … (line 2)',
    detail: ['JSON arguments recommended'],
    url: 'https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
    source: { file: 'Dockerfile', text: 'FROM a\nCMD x\n', ranges: [{ start: 2, end: 2 }] },
  });
  await r.close();
  const lines = sink.text.split('\n');
  assert.equal(lines.pop(), '', 'every object ends its line');
  const t0 = '2024-05-01T10:20:30.1Z';
  const t1 = '2024-05-01T10:20:30.105Z';
  const t2 = '2024-05-01T10:20:30.355Z';
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const exp = (id: string) => require('node:crypto').createHash('sha256').update(id).digest('hex');
  assert.deepEqual(lines, [
    `{"vertexes":[{"digest":"${a}","name":"[1/2] FROM busybox","started":"${t0}","completed":"${t0}","cached":true}]}`,
    `{"vertexes":[{"digest":"${b}","inputs":["${a}"],"name":"[2/2] RUN a \\u0026\\u0026 b \\u003cc\\u003e","started":"${t1}"}]}`,
    `{"statuses":[{"id":"extract","vertex":"${b}","name":"extracting","total":20,"current":10,"timestamp":"${t1}","started":"${t1}"}]}`,
    `{"logs":[{"vertex":"${b}","stream":1,"data":"${b64(Buffer.from([0x68, 0x69, 0xc3]))}","timestamp":"${t2}"}]}`,
    `{"logs":[{"vertex":"${b}","stream":2,"data":"${b64(Buffer.from([0xa9, 0x0a]))}","timestamp":"${t2}"}]}`,
    `{"statuses":[{"id":"extract","vertex":"${b}","name":"extracting","total":20,"current":20,"timestamp":"${t2}","started":"${t1}","completed":"${t2}"}]}`,
    `{"vertexes":[{"digest":"${b}","inputs":["${a}"],"name":"[2/2] RUN a \\u0026\\u0026 b \\u003cc\\u003e","started":"${t1}","completed":"${t2}","error":"exit code: 1"}]}`,
    `{"vertexes":[{"digest":"sha256:${exp('export:image')}","name":"exporting to image","started":"${t2}"}]}`,
    `{"vertexes":[{"digest":"sha256:${exp('export:image')}","name":"exporting to image","started":"${t2}","completed":"${t2}","error":"context canceled"}]}`,
    `{"warnings":[{"vertex":"sha256:${exp('internal:dockerfile')}","level":1,"short":"${b64('JSONArgsRecommended: … (line 2)')}","detail":["${b64('JSON arguments recommended')}"],"url":"https://docs.docker.com/go/dockerfile/rule/json-args-recommended/","sourceInfo":{"filename":"Dockerfile","data":"${b64('FROM a\nCMD x\n')}","language":"Dockerfile"},"range":[{"start":{"line":2},"end":{"line":2}}]}]}`,
  ]);
});

test('logs split inside a UTF-8 character reach the human views as one character', async () => {
  const sink = new Sink();
  const r = new PlainRenderer(sink);
  const p = new Progress();
  p.on((e) => r.write(e));
  p.started('a', 'A');
  p.log('a', Buffer.from([0x63, 0x61, 0x66, 0xc3]));
  p.log('a', Buffer.from([0xa9, 0x0a]));
  assert.match(sink.text, /^#1 \d+\.\d{3} café$/m);
});

test('sourceContext: BuildKit\'s lines around the failing ones (two each side for one line, one for several)', () => {
  const text = ['FROM a', 'ENV X=1', 'RUN one \\', '    two', 'COPY . /', 'CMD ["x"]', ''].join('\n');
  assert.equal(
    sourceContext('Dockerfile', text, [{ start: 3, end: 4 }]),
    ['Dockerfile:3', '--------------------', '   2 |     ENV X=1', '   3 | >>> RUN one \\', '   4 | >>>     two', '   5 |     COPY . /', '--------------------', ''].join('\n'),
  );
  assert.equal(
    sourceContext('Dockerfile.dev', text, [{ start: 1, end: 1 }]),
    ['Dockerfile.dev:1', '--------------------', '   1 | >>> FROM a', '   2 |     ENV X=1', '   3 |     RUN one \\', '--------------------', ''].join('\n'),
    'at the top, the lines above are simply missing',
  );
  assert.equal(
    sourceContext('Dockerfile', text, [{ start: 6, end: 6 }]),
    ['Dockerfile:6', '--------------------', '   4 |         two', '   5 |     COPY . /', '   6 | >>> CMD ["x"]', '   7 |     ', '--------------------', ''].join('\n'),
  );
  assert.equal(sourceContext('Dockerfile', text, [{ start: 40, end: 40 }]), '', 'a line past the end shows nothing');
});

test('warning summary and check report as buildx prints them', () => {
  const w = {
    rule: 'JSONArgsRecommended',
    message: 'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
    level: 1,
    short: 'JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)',
    detail: ['JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals'],
    url: 'https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
    source: { file: 'Dockerfile', text: 'FROM a\nCMD x\n', ranges: [{ start: 2, end: 2 }] },
  };
  assert.equal(warningSummary([]), '');
  assert.equal(warningSummary([w]), `\n 1 warning found (use --debug to expand):\n - ${w.short}\n`);
  assert.equal(
    warningSummary([w, { ...w }], { debug: true }),
    '\n 2 warnings found:\n' +
      ` - ${w.short}\n${w.detail[0]}\nMore info: ${w.url}\nDockerfile:2\n--------------------\n   1 |     FROM a\n   2 | >>> CMD x\n   3 |     \n--------------------\n\n`.repeat(2),
  );
  assert.equal(checkReport([]), 'Check complete, no warnings found.\n');
  assert.equal(
    checkReport([w]),
    `Check complete, 1 warning has been found!\n\nWARNING: JSONArgsRecommended - ${w.url}\n${w.message}\nDockerfile:2\n--------------------\n   1 |     FROM a\n   2 | >>> CMD x\n   3 |     \n--------------------\n`,
  );
});

test('tty renderer draws a BuildKit frame and a FINISHED final frame', async () => {
  const c = clock();
  const sink = new Sink();
  const r = new TtyRenderer(sink, c.now);
  const p = new Progress({ now: c.now });
  p.on((e) => r.write(e));
  p.cached('a', '[1/2] FROM busybox');
  p.started('b', '[2/2] RUN make');
  p.log('b', 'compiling\n');
  const live = r.lines(false);
  assert.equal(live[0], '[+] Building 0.0s (1/2)');
  assert.match(live[1], /^ => CACHED \[1\/2\] FROM busybox +0\.0s$/);
  assert.equal(live[1].length, 60);
  assert.match(live[3], /^ => => # compiling$/);
  c.advance(4200);
  p.completed('b', '[2/2] RUN make');
  await r.close(true);
  const final = sink.text.slice(sink.text.lastIndexOf('[+]'));
  assert.match(final, /^\[\+\] Building 4\.2s \(2\/2\) FINISHED\n/);
  assert.match(final, / => \[2\/2\] RUN make +4\.2s\n/);
  assert.ok(!final.includes('# compiling'), 'finished steps drop their live output');
});

test('tty renderer keeps one log per step in the order written: stdout and stderr interleaved, live and in the failure summary', async () => {
  const c = clock();
  const sink = new Sink();
  const r = new TtyRenderer(sink, c.now);
  const p = new Progress({ now: c.now });
  p.on((e) => r.write(e));
  p.started('a', '[1/1] RUN make');
  p.log('a', 'out1\n', 1);
  c.advance(100);
  p.log('a', 'err1\n', 2);
  c.advance(100);
  p.log('a', 'out2\n', 1);
  assert.deepEqual(
    r.lines(false).filter((l) => l.startsWith(' => => # ')).map((l) => l.trimEnd()),
    [' => => # out1', ' => => # err1', ' => => # out2'],
  );
  p.failed('a', '[1/1] RUN make', 'exit code: 2');
  await r.close(false);
  assert.ok(sink.text.endsWith('------\n > [1/1] RUN make:\n0.000 out1\n0.100 err1\n0.200 out2\n------\n'), sink.text);
});

test('tty renderer redraws at most 10 times a second however many events arrive', async () => {
  const sink = new Sink();
  const r = new TtyRenderer(sink);
  const p = new Progress();
  p.on((e) => r.write(e));
  p.started('a', 'A');
  const t0 = Date.now();
  for (let i = 0; i < 5000; i++) p.log('a', `line ${i}\n`);
  await new Promise((res) => setTimeout(res, 350));
  const elapsed = Date.now() - t0;
  await r.close(true);
  // One immediate frame + one per 100ms tick + the final one.
  assert.ok(r.frames <= 2 + Math.ceil(elapsed / 100), `frames=${r.frames} elapsed=${elapsed}`);
});

test('untrusted names and output cannot drive the terminal: escaped in plain, tty and the failure summary', async () => {
  const name = '[1/1] RUN echo \x00hi\x1b[2J \u009b3J';
  const shown = '[1/1] RUN echo \\x00hi\\x1b[2J \\u009b3J';
  // Plain: the name and error escaped; the step's own output as it came (BuildKit's plain mode).
  const plain = new Sink();
  const r = new PlainRenderer(plain);
  const p = new Progress();
  p.on((e) => r.write(e));
  p.started('a', name);
  p.log('a', '\x1b[32mgreen\x1b[0m\n\x1b[1Aup\n');
  p.failed('a', name, 'exit code: 1 \x07');
  await r.close(false);
  assert.ok(plain.text.startsWith(`#1 ${shown}\n`), plain.text);
  assert.ok(plain.text.includes('\x1b[32mgreen\x1b[0m\n'), 'plain keeps the output as is');
  assert.ok(plain.text.includes('#1 ERROR: exit code: 1 \\x07\n'));
  const summary = plain.text.slice(plain.text.indexOf('------'));
  assert.equal(summary.replace(/^\d+\.\d{3} /gm, 'T '), `------\n > ${shown}:\nT green\nT up\n------\n`, 'the summary shows lines as a terminal left them, dated as BuildKit');

  // Tty: our own cursor-up/clear is the only escape sequence in a frame.
  const c = clock();
  const tty = new Sink();
  tty.isTTY = true;
  const t = new TtyRenderer(tty, c.now);
  const q = new Progress({ now: c.now });
  q.on((e) => t.write(e));
  q.started('a', name);
  q.log('a', 'ok\n\x1b[10A\x1b[2Kfake line\x1b]0;title\x07\n\u009b5Amore\r\x1b[Kpartial');
  const frame = t.lines(false).join('\n');
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(frame, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, frame);
  assert.ok(frame.includes(` => ${shown}`), frame);
  assert.ok(frame.includes(' => => # fake line'), frame);
  assert.ok(frame.includes(' => => # partial'), frame);
  await t.close(true);
  // eslint-disable-next-line no-control-regex
  const escapes = tty.text.match(/\x1b\[[0-9;?]*[A-Za-z]/g) ?? [];
  assert.ok(escapes.every((e) => /^\x1b\[(\d+A|J)$/.test(e)), escapes.join(' '));
});

test('auto mode picks tty only for a terminal; --no-console forces plain', () => {
  const sink = new Sink();
  assert.ok(createRenderer('auto', sink) instanceof PlainRenderer);
  sink.isTTY = true;
  assert.ok(createRenderer('auto', sink) instanceof TtyRenderer);
  assert.ok(createRenderer('auto', sink, { noConsole: true }) instanceof PlainRenderer);
  assert.throws(() => parseProgressMode('fancy'), ImgError);
});
