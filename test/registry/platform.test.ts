// Platform names and matching as docker/containerd do them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compatiblePlatforms, formatPlatform, hostPlatform, matchPlatform, normalizePlatform, parsePlatform, selectManifest } from '../../lib/images/platform';
import type { Descriptor } from '../../lib/images/types';

const desc = (platform: Descriptor['platform'], n: number): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 1,
  platform,
});

describe('platforms', () => {
  it('knows the host', () => {
    const host = hostPlatform();
    assert.equal(host.os, 'linux');
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    assert.equal(host.architecture, expected[process.arch] ?? host.architecture);
    if (process.arch === 'arm64') assert.equal(host.variant, 'v8');
  });

  it('parses and normalizes OS/ARCH[/VARIANT]', () => {
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('Linux/ARM64/8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.equal(parsePlatform('linux').os, 'linux');
    assert.throws(() => parsePlatform('linux/arm/v7/extra'), (err: Error & { hint?: string }) => /invalid platform "linux\/arm\/v7\/extra"/.test(err.message) && /OS\/ARCH/.test(err.hint ?? ''));
    assert.throws(() => parsePlatform('linux//v7'), /invalid platform/);
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm' }), 'linux/arm/v7');
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' }), { os: 'linux', architecture: 'amd64' });
  });

  it('matches with default variants and prefers exact matches over compatible ones', () => {
    assert.ok(matchPlatform({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
    assert.ok(matchPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm' }));
    assert.ok(!matchPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }));
    assert.ok(!matchPlatform({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }));
    assert.deepEqual(
      compatiblePlatforms({ os: 'linux', architecture: 'arm64' }).map(formatPlatform),
      ['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'],
    );
    const list = [
      desc({ os: 'linux', architecture: 'arm', variant: 'v6' }, 1),
      desc({ os: 'linux', architecture: 'arm', variant: 'v7' }, 2),
      desc({ os: 'linux', architecture: 'amd64' }, 3),
      desc({ os: 'unknown', architecture: 'unknown' }, 4), // attestation manifests
    ];
    assert.equal(selectManifest(list, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest, list[1].digest);
    assert.equal(selectManifest(list, { os: 'linux', architecture: 'arm', variant: 'v8' }).digest, list[1].digest);
    assert.equal(selectManifest(list, { os: 'linux', architecture: 'arm64' }).digest, list[1].digest, 'arm64 runs arm/v7');
    assert.equal(selectManifest(list.slice(0, 1), { os: 'linux', architecture: 'arm' }).digest, list[0].digest, 'v7 runs v6');
    assert.throws(() => selectManifest(list, { os: 'linux', architecture: 'ppc64le' }), (err: Error & { hint?: string }) => {
      assert.match(err.message, /no matching manifest for linux\/ppc64le/);
      assert.equal(err.hint, 'available platforms: linux/arm/v6, linux/arm/v7, linux/amd64 — choose one with --platform');
      return true;
    });
  });
});
