// The one platform module (lib/images/platform.ts): names, normalisation and
// matching as containerd does them, and the platform ARGs as BuildKit defines them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
  parsePlatformOrNull,
  platformArgs,
  selectManifest,
} from '../../lib/images/platform';
import type { Descriptor } from '../../lib/images/types';
import { NotFoundError, UsageError } from '../../lib/util/errors';

const desc = (platform: Descriptor['platform'], n: number): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 1,
  platform,
});

describe('platforms', () => {
  it('knows the host, normalised (arm64 without a variant)', () => {
    const host = hostPlatform();
    assert.equal(host.os, 'linux');
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    assert.equal(host.architecture, expected[process.arch] ?? host.architecture);
    if (process.arch === 'arm64' || process.arch === 'x64') assert.equal(host.variant, undefined);
    assert.deepEqual(normalizePlatform(host), host);
  });

  it('normalises exactly as containerd platforms.Normalize', () => {
    const cases: [string, string, string][] = [
      // architecture, variant in → normalised os/arch[/variant]
      ['x86_64', '', 'linux/amd64'],
      ['x86-64', '', 'linux/amd64'],
      ['AMD64', 'V1', 'linux/amd64'],
      ['amd64', 'v3', 'linux/amd64/v3'],
      ['aarch64', '', 'linux/arm64'],
      ['arm64', 'v8', 'linux/arm64'],
      ['arm64', '8', 'linux/arm64'],
      ['arm64', 'v9', 'linux/arm64/v9'],
      ['armhf', '', 'linux/arm/v7'],
      ['armhf', 'v6', 'linux/arm/v7'], // armhf means v7 whatever the variant says
      ['armel', '', 'linux/arm/v6'],
      ['arm', '', 'linux/arm/v7'],
      ['arm', '7', 'linux/arm/v7'],
      ['arm', '5', 'linux/arm/v5'],
      ['arm', '8', 'linux/arm/v8'],
      ['arm', 'v6', 'linux/arm/v6'],
      ['i386', 'whatever', 'linux/386'],
      ['386', '', 'linux/386'],
      ['i686', '', 'linux/i686'], // not one of containerd's aliases
      ['ppc64le', '', 'linux/ppc64le'],
    ];
    for (const [architecture, variant, want] of cases) {
      assert.equal(formatPlatform({ os: 'Linux', architecture, variant: variant || undefined }), want, `${architecture}/${variant}`);
    }
    assert.deepEqual(normalizePlatform({ os: 'macos', architecture: 'aarch64' }), { os: 'darwin', architecture: 'arm64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), { os: 'linux', architecture: 'arm64' });
  });

  it('parses specifiers as containerd platforms.Parse, then normalises as BuildKit does for --platform', () => {
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('Linux/ARM64/8'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('armel'), { os: 'linux', architecture: 'arm', variant: 'v6' });
    assert.deepEqual(parsePlatform('linux'), { ...hostPlatform(), os: 'linux' });
    for (const [bad, why] of [
      ['linux/arm/v7/extra', 'too many "/"-separated parts'],
      ['linux//v7', 'an empty part'],
      ['linux/*', 'wildcards are not supported'],
      ['pdp11', 'unknown operating system or architecture'],
      ['linux/arm 64', '"arm 64" has characters other than letters, digits, "_", "." and "-"'],
    ]) {
      assert.throws(() => parsePlatform(bad), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.equal(err.message, `invalid platform "${bad}": ${why}`);
        assert.match(err.hint ?? '', /OS\/ARCH\[\/VARIANT\]/);
        return true;
      });
      assert.equal(parsePlatformOrNull(bad), null);
    }
    assert.deepEqual(parsePlatformOrNull('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  });

  it('platform ARGs as BuildKit defines them for amd64, arm64 and arm/v7 targets', () => {
    const build = parsePlatform('linux/amd64');
    const args = (target: string) => Object.fromEntries(platformArgs(parsePlatform(target), build));
    const buildArgs = { BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '' };
    assert.deepEqual(args('linux/amd64'), { ...buildArgs, TARGETPLATFORM: 'linux/amd64', TARGETOS: 'linux', TARGETARCH: 'amd64', TARGETVARIANT: '' });
    assert.deepEqual(args('linux/arm64'), { ...buildArgs, TARGETPLATFORM: 'linux/arm64', TARGETOS: 'linux', TARGETARCH: 'arm64', TARGETVARIANT: '' });
    assert.deepEqual(args('linux/arm64/v8'), args('linux/arm64'));
    assert.deepEqual(args('linux/arm/v7'), { ...buildArgs, TARGETPLATFORM: 'linux/arm/v7', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7' });
    assert.deepEqual(args('linux/arm'), args('linux/arm/v7'));
    // an arm64 build host (the platform is normalised whatever the caller passes)
    const onArm = Object.fromEntries(platformArgs({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'aarch64', variant: 'v8' }));
    assert.deepEqual([onArm.BUILDPLATFORM, onArm.BUILDARCH, onArm.BUILDVARIANT], ['linux/arm64', 'arm64', '']);
  });

  it('matches with default variants and prefers exact matches over compatible ones', () => {
    assert.ok(matchPlatform({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
    assert.ok(matchPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm' }));
    assert.ok(!matchPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }));
    assert.ok(!matchPlatform({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }));
    assert.deepEqual(
      compatiblePlatforms({ os: 'linux', architecture: 'arm64' }).map(formatPlatform),
      ['linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'],
    );
    assert.deepEqual(compatiblePlatforms({ os: 'linux', architecture: 'amd64', variant: 'v3' }).map(formatPlatform), [
      'linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386',
    ]);
    const list = [
      desc({ os: 'linux', architecture: 'arm', variant: 'v6' }, 1),
      desc({ os: 'linux', architecture: 'arm', variant: 'v7' }, 2),
      desc({ os: 'linux', architecture: 'amd64' }, 3),
      desc({ os: 'unknown', architecture: 'unknown' }, 4), // attestation manifests
      desc({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 5),
      desc({ os: 'linux', architecture: '386' }, 6),
    ];
    assert.equal(selectManifest(list, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest, list[1].digest);
    assert.equal(selectManifest(list, { os: 'linux', architecture: 'arm', variant: 'v8' }).digest, list[1].digest);
    assert.equal(selectManifest(list, parsePlatform('linux/arm64')).digest, list[4].digest, 'arm64 matches arm64/v8 in an index');
    assert.equal(selectManifest(list.slice(0, 3), { os: 'linux', architecture: 'arm64' }).digest, list[1].digest, 'arm64 runs arm/v7');
    assert.equal(selectManifest(list.slice(0, 1), { os: 'linux', architecture: 'arm' }).digest, list[0].digest, 'v7 runs v6');
    assert.equal(selectManifest(list.slice(3), { os: 'linux', architecture: 'amd64' }).digest, list[5].digest, 'amd64 runs 386');
    assert.throws(() => selectManifest(list.slice(0, 4), { os: 'linux', architecture: 'ppc64le' }, 'docker.io/library/busybox:latest'), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      // The image, the platform asked for and the platforms it has (attestations left out).
      assert.equal(err.message, 'no matching manifest for linux/ppc64le in the manifest list entries of docker.io/library/busybox:latest: it has linux/arm/v6, linux/arm/v7, linux/amd64');
      assert.equal(err.hint, 'build or pull for one of linux/arm/v6, linux/arm/v7, linux/amd64 (--platform), or use a base image that has linux/ppc64le');
      return true;
    });
  });
});
