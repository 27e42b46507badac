// `img build --help`: img's flags and wording (README), plus docker/buildx's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runImg } from '../helpers/cli';

test('img build --help lists img’s flags with their wording', async () => {
  const r = await runImg(['build', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^build -  Build an image from a Dockerfile\n\nUsage: img build \[OPTIONS\] PATH \| URL \| -\n/);
  for (const [flag, desc] of [
    ['--build-arg list', 'Set build-time variables'],
    ['--cache-from list', 'Buildkit import-cache or Buildx cache-from specification'],
    ['--cache-to list', 'Buildx cache-to specification'],
    ['-f, --file string', "Name of the Dockerfile (Default is 'PATH/Dockerfile')"],
    ['--label list', 'Set metadata for an image'],
    ['--no-cache', 'Do not use cache when building the image'],
    ['--no-console', 'Use non-console progress UI'],
    ['-o, --output string', 'BuildKit output specification (e.g. type=tar,dest=build.tar)'],
    ['--platform list', 'Set platforms for which the image should be built'],
    ['-t, --tag list', "Name and optionally a tag in the 'name:tag' format"],
    ['--target string', 'Set the target build stage to build'],
    ['--iidfile string', 'Write the image ID to the file'],
    ['--secret list', 'Secret to expose to the build'],
    ['--progress string', 'Set type of progress output'],
  ]) {
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith(flag + ' '));
    assert.ok(line, `help shows ${flag}`);
    assert.ok(line.includes(desc), `${flag}: ${line}`);
  }
});

test('img build without a context names what is missing', async () => {
  const r = await runImg(['build']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /missing required argument 'path'/);
});
