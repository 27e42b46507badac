// Build checks the converter runs (convert/checks.ts): BuildKit's rule names
// and message texts (docs/frontend/dockerfile/docs/rules), the lines they
// point at, and `# check=` over all rules together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build, resolver } from './graphs/helpers';
import { DockerfileError } from '../../lib/frontend/dockerfile/errors';
import type { BuildGraph } from '../../lib/graph/types';
import { findError } from '../../lib/util/errors';

const rules = (g: BuildGraph) => g.warnings.filter((w) => w.rule).map((w) => [w.line, w.rule, w.message]);

test('JSONArgsRecommended: shell-form CMD/ENTRYPOINT, unless the stage (or its base image) has a SHELL', async () => {
  assert.deepEqual(rules(await build('FROM busybox\nCMD echo hi\nENTRYPOINT exec app\n')), [
    [2, 'JSONArgsRecommended', 'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals'],
    [3, 'JSONArgsRecommended', 'JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals'],
  ]);
  assert.deepEqual(rules(await build('FROM busybox\nSHELL ["/bin/sh", "-ec"]\nCMD echo hi\n')), []);
  assert.deepEqual(rules(await build('FROM busybox\nCMD ["echo", "hi"]\n')), []);
  // A base whose config has a Shell counts as a SHELL (BuildKit reads the stage's image config).
  const withShell = await build('FROM busybox\nCMD echo hi\n', {
    resolveImageConfig: async (ref, p) => {
      const r = await resolver(ref, p);
      if (r?.config.config) r.config.config.Shell = ['/bin/ash', '-c'];
      return r;
    },
  });
  assert.deepEqual(rules(withShell), []);
  // A stage built on a stage with a SHELL inherits it.
  assert.deepEqual(rules(await build('FROM busybox AS base\nSHELL ["/bin/sh", "-c"]\nFROM base\nCMD echo hi\n')), []);
});

test('UndefinedVar: expanded words only (not RUN), declared ARGs count, typos get a suggestion', async () => {
  const g = await build('FROM busybox\nENV PATH=$PAHT:/app\nCOPY a$foo /x\nARG declared\nLABEL a=$declared\nRUN echo $nothere\nWORKDIR /$ALSO_MISSING\n');
  assert.deepEqual(rules(g), [
    [2, 'UndefinedVar', "Usage of undefined variable '$PAHT' (did you mean $PATH?)"],
    [3, 'UndefinedVar', "Usage of undefined variable '$foo'"],
    [7, 'UndefinedVar', "Usage of undefined variable '$ALSO_MISSING'"],
  ]);
});

test('WorkdirRelativePath: the first WORKDIR of a stage chain, relative, is reported; later ones are not', async () => {
  assert.deepEqual(rules(await build('FROM busybox\nWORKDIR app\nWORKDIR sub\n')), [
    [2, 'WorkdirRelativePath', 'Relative workdir "app" can have unexpected results if the base image changes'],
  ]);
  assert.deepEqual(rules(await build('FROM busybox AS base\nWORKDIR /srv\nFROM base\nWORKDIR app\n')), []);
});

test('SecretsUsedInArgOrEnv: names made of secret words, "public" clears them', async () => {
  const g = await build('FROM busybox\nARG API_KEY\nARG PUBLIC_KEY\nARG KEYBOARD=1\nENV DB_password=x AUTH=y\n');
  assert.deepEqual(rules(g), [
    [2, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ARG "API_KEY")'],
    [5, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "DB_password")'],
    [5, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "AUTH")'],
  ]);
});

test('ExposeInvalidFormat and ExposeProtoCasing, after expansion', async () => {
  const g = await build('FROM busybox\nARG P=8080/TCP\nEXPOSE 80:80 $P 53/udp\n');
  assert.deepEqual(rules(g), [
    // BuildKit sorts the specs as written before expanding them: $P comes first.
    [3, 'ExposeProtoCasing', "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase"],
    [3, 'ExposeInvalidFormat', "EXPOSE instruction should not define an IP address or host-port mapping, found '80:80'"],
  ]);
});

test('FROM lines: UndefinedArgInFrom, InvalidDefaultArgInFrom, FromPlatformFlagConstDisallowed, RedundantTargetPlatform', async () => {
  assert.deepEqual(rules(await build('ARG VERSION=\nFROM busybox$VERSIN\n')), [
    [2, 'UndefinedArgInFrom', "FROM argument 'VERSIN' is not declared (did you mean VERSION?)"],
  ]);
  assert.deepEqual(rules(await build('ARG IMAGE\nFROM $IMAGE\n', { buildArgs: { IMAGE: 'busybox' } })), [
    [2, 'InvalidDefaultArgInFrom', 'Default value for ARG $IMAGE results in empty or invalid base image name'],
  ]);
  assert.deepEqual(rules(await build('ARG IMAGE=busybox\nFROM $IMAGE\n')), []);
  const plat = await build('FROM --platform=linux/amd64 busybox AS build\nFROM --platform=linux/amd64 busybox AS build-amd64\nFROM --platform=$TARGETPLATFORM busybox\n', {
    targetPlatform: { os: 'linux', architecture: 'amd64' },
  });
  assert.deepEqual(rules(plat), [
    [1, 'FromPlatformFlagConstDisallowed', 'FROM --platform flag should not use constant value "linux/amd64"'],
    [3, 'RedundantTargetPlatform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior'],
  ]);
});

test('# check=: skip some or all, error=true fails with every kept rule (warnings attached), experimental rules on request', async () => {
  const body = 'FROM busybox as b\nCMD echo hi\n';
  assert.deepEqual(rules(await build(`# check=skip=all\n${body}`)), []);
  assert.deepEqual(
    rules(await build(`# check=skip=FromAsCasing\n${body}`)).map((r) => r[1]),
    ['JSONArgsRecommended'],
  );
  const err = await build(`# check=error=true\n${body}`).then(
    () => assert.fail('error=true fails the conversion'),
    (e: unknown) => e,
  );
  const de = findError(err, DockerfileError)!;
  assert.ok(de, String(err));
  assert.equal(de.reason, 'lint violation found for rules: FromAsCasing, JSONArgsRecommended');
  assert.deepEqual(de.warnings?.map((w) => w.rule), ['FromAsCasing', 'JSONArgsRecommended']);
  assert.equal((await build(`# check=skip=FromAsCasing,JSONArgsRecommended;error=true\n${body}`)).warnings.length, 0);

  // Experimental rules run only when named (or all).
  const ignored = 'FROM busybox\n# builds the app\nARG version=1\nCOPY secret.txt /\n';
  assert.deepEqual(rules(await build(ignored, { dockerignore: ['secret.txt'] })), []);
  assert.deepEqual(rules(await build(`# check=experimental=all\n${ignored}`, { dockerignore: ['secret.txt'] })), [
    [4, 'InvalidDefinitionDescription', 'Comment for ARG should follow the format: `# version <description>`'],
    [5, 'CopyIgnoredFile', 'Attempting to Copy file "secret.txt" that is excluded by .dockerignore'],
  ]);
});

test('--check converts every stage (allStages), so unused stages are checked too', async () => {
  const text = 'FROM busybox AS unused\nCMD echo hi\nFROM busybox\nCMD ["ok"]\n';
  assert.deepEqual(rules(await build(text)), []);
  assert.deepEqual(rules(await build(text, { allStages: true })).map((r) => r.slice(0, 2)), [[2, 'JSONArgsRecommended']]);
});
