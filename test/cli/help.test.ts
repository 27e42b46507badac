// Help texts keep img's (cobra's) layout for the store commands.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runImg } from '../helpers/cli';

const GLOBALS = (state: string) => `Global Flags:
  -b, --backend string   backend for snapshots ([auto native overlayfs fuse-overlayfs]) (default "auto")
  -d, --debug            enable debug logging
  -s, --state string     directory to hold the global state (default "${state}")`;

const env = { XDG_DATA_HOME: '/home/user/.local/share' };
const STATE = '/home/user/.local/share/img';

describe('help texts', () => {
  it('img ls -h', async () => {
    const r = await runImg(['ls', '-h'], { env });
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout.trimEnd(),
      `ls -  List images and digests.

Usage: img ls [OPTIONS]

Flags:
  -a, --all             Show all images (img keeps no intermediate images)
      --digests         Show digests
  -f, --filter list     Filter output based on conditions provided
      --format string   Format output using a custom template: "table", "table TEMPLATE", "json" or a Go TEMPLATE
  -h, --help            help for ls
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
      --tree            List multi-platform images as a tree (img ls always does)

${GLOBALS(STATE)}`,
    );
  });

  it('img tag -h and img rm -h', async () => {
    const tag = await runImg(['tag', '--help'], { env });
    assert.equal(
      tag.stdout.trimEnd(),
      `tag -  Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.

Usage: img tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]

Flags:
  -h, --help   help for tag

${GLOBALS(STATE)}`,
    );
    const rm = await runImg(['help', 'rm'], { env });
    assert.equal(
      rm.stdout.trimEnd(),
      `rm -  Remove one or more images.

Usage: img rm [OPTIONS] IMAGE [IMAGE...]

Aliases:
  rm, rmi

Flags:
  -f, --force   Force removal of the image (every name of an ID; a missing image is no error)
  -h, --help    help for rm

${GLOBALS(STATE)}`,
    );
  });

  it('img save -h lists its flags', async () => {
    const r = await runImg(['save', '-h'], { env });
    assert.equal(r.code, 0);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'save -  Save an image to a tar archive (streamed to STDOUT by default).');
    assert.equal(lines[2], 'Usage: img save [OPTIONS] IMAGE [IMAGE...]');
    // Flag order is help.ts's business; the rows themselves are img's.
    for (const row of [
      '      --format string   image output format (docker|oci) (default "docker")',
      '  -h, --help            help for save',
      '  -o, --output string   write to a file, instead of STDOUT',
    ]) {
      assert.ok(lines.includes(row), `missing row: ${row}\n${r.stdout}`);
    }
  });

  it('the top-level help lists the store commands with img descriptions', async () => {
    const r = await runImg(['-h'], { env });
    for (const [cmd, desc] of [
      ['ls', 'List images and digests.'],
      ['rm', 'Remove one or more images.'],
      ['save', 'Save an image to a tar archive (streamed to STDOUT by default).'],
      ['tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.'],
      ['version', 'Show the version information.'],
    ]) {
      assert.match(r.stdout, new RegExp(`^  ${cmd} +${desc.replace(/[.()]/g, '\\$&')}$`, 'm'));
    }
  });
});
