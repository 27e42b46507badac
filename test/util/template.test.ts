// The --format engine (lib/util/template.ts): Go text/template's subset docker users
// write, printed as fmt's %v prints, and clear UsageErrors for what it does not know.
// Expected strings are what Go (docker 28's CLI) prints for the same template and data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Template, goJson, goStruct, nilMap, nilSlice, parseFormat } from '../../lib/util/template';
import { UsageError } from '../../lib/util/errors';

const config = goStruct(
  { User: '', Env: ['A=1', 'PATH=/bin'], Entrypoint: nilSlice, Cmd: ['/bin/sh', '-c', 'echo a && echo b > /tmp/x'], Labels: { 'org.example.b': 'two', 'org.example.a': '1' }, Volumes: nilMap },
  { Env: ['A=1', 'PATH=/bin'], Cmd: ['/bin/sh', '-c', 'echo a && echo b > /tmp/x'], Labels: { 'org.example.a': '1', 'org.example.b': 'two' } },
);
const image = goStruct({
  Id: 'sha256:5d67f8a9eaec',
  RepoTags: ['tiny:app', 'example.com/team/tiny:1.0'],
  RepoDigests: [] as string[],
  Os: 'linux',
  Architecture: 'amd64',
  Variant: '',
  Size: 2560,
  Config: config,
  RootFS: goStruct({ Type: 'layers', Layers: ['sha256:45', 'sha256:9e'] }),
});
const run = (t: string) => new Template(t).execute(image);

test('fields, docker functions and Go printing of slices, maps, nil and structs', () => {
  const cases: [string, string][] = [
    ['{{.Id}}', 'sha256:5d67f8a9eaec'],
    ['{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}', 'linux/amd64'],
    ['{{.Config.Env}}', '[A=1 PATH=/bin]'],
    ['{{.Config.Cmd}}', '[/bin/sh -c echo a && echo b > /tmp/x]'],
    ['{{.Config.Labels}}', 'map[org.example.a:1 org.example.b:two]'], // sorted keys
    ['{{.Config.Entrypoint}}|{{json .Config.Entrypoint}}', '[]|null'], // a nil slice
    ['{{.Config.Volumes}}', 'map[]'],
    ['{{json .Config.Labels}}', '{"org.example.a":"1","org.example.b":"two"}'],
    ['{{json .Config}}', '{"Env":["A=1","PATH=/bin"],"Cmd":["/bin/sh","-c","echo a && echo b > /tmp/x"],"Labels":{"org.example.a":"1","org.example.b":"two"}}'],
    ['{{index .RepoTags 0}}', 'tiny:app'],
    ['{{index .Config.Labels "org.example.b"}}|{{index .Config.Labels "missing"}}|', 'two||'],
    ['{{.Config.Labels.missing}}', '<no value>'],
    ['{{range .RepoTags}}<{{.}}>{{end}}', '<tiny:app><example.com/team/tiny:1.0>'],
    ['{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}', '0=tiny:app;1=example.com/team/tiny:1.0;'],
    ['{{range .RepoDigests}}x{{else}}none{{end}}', 'none'],
    ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}', 'org.example.a=1 org.example.b=two '],
    ['{{join .Config.Env ","}}', 'A=1,PATH=/bin'],
    ['{{join .RepoDigests ","}}', ''],
    ['{{println .Os}}{{println}}', 'linux\n\n'],
    ['{{upper .Os}} {{lower "ABC"}} {{title "hello world"}}', 'LINUX abc Hello World'],
    ['{{if .RepoDigests}}y{{else if eq .Os "linux"}}L{{else}}n{{end}}', 'L'],
    ['{{with .RootFS}}{{.Type}}:{{len .Layers}}{{end}}', 'layers:2'],
    ['{{.RootFS}}', '{layers [sha256:45 sha256:9e]}'], // a struct
    ['{{len .RepoTags}} {{.Size}}', '2 2560'],
    ['{{printf "%s has %d tags" .Os (len .RepoTags)}}', 'linux has 2 tags'],
    ['{{.Os | upper | printf "<%s>"}}', '<LINUX>'],
    ['{{split "a:b:c" ":"}} {{truncate "abcdef" 3}} {{pad "x" 1 2}}|', '[a b c] abc  x  |'],
    ['{{not .RepoDigests}} {{and .Os .Size}} {{or .Variant "none"}}', 'true 2560 none'],
    ['  {{- .Os -}}  \n', 'linux'],
    ['a{{/* a comment */}}b', 'ab'],
    ['{{$x := .Os}}{{$x}}-{{$.Architecture}}', 'linux-amd64'],
  ];
  for (const [t, want] of cases) assert.equal(run(t), want, t);
});

test("json as docker's template function prints it: no HTML escaping, maps' keys sorted", () => {
  assert.equal(goJson({ b: '<&>', a: 1 }), '{"a":1,"b":"<&>"}');
});

test('the table directive splits off the row template', () => {
  const plan = parseFormat('table {{.ID}}\\t{{.Size}}');
  assert.equal(plan.table, true);
  assert.equal(plan.template.execute({ ID: 'x', Size: '1B' }), 'x\t1B');
  assert.equal(parseFormat('{{.ID}}').table, false);
});

test('what the engine does not know is a UsageError naming it, before any output', () => {
  const bad: [string, RegExp][] = [
    ['{{.Os', /unclosed action/],
    ['{{range .RepoTags}}', /\{\{range\}\} has no \{\{end\}\}/],
    ['{{end}}', /unexpected \{\{end\}\}/],
    ['{{foo .Os}}', /function "foo" not defined/],
    ['{{template "x"}}', /\{\{template\}\} is not supported/],
    ['{{.Os "x"}}', /can't give argument to non-function \.Os/],
    ['{{$nope}}', /undefined variable: \$nope/],
  ];
  for (const [t, re] of bad) {
    assert.throws(
      () => run(t),
      (err: unknown) => err instanceof UsageError && re.test(err.message) && typeof err.hint === 'string',
      t,
    );
  }
  // A field the struct does not have names the fields it does have.
  assert.throws(() => run('{{.Nope}}'), (err: unknown) => err instanceof UsageError && /can't evaluate field Nope/.test(err.message) && /RepoTags/.test(err.hint!));
  assert.throws(() => run('{{index .RepoTags 5}}'), /index out of range: 5/);
});
