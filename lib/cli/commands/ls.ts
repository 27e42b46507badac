// img ls: NAME SIZE CREATED AT UPDATED AT DIGEST, tab-aligned like img's tabwriter;
// an index's stored platforms follow it as rows of their own (as `docker image ls --tree`).
// img images: the same images in docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE).
// Both take docker images' flags: -q, --format, --digests, --no-trunc, -a, --filter.
import type { Command } from 'commander';
import type { RegisterCommand } from './index';

interface ListFlags {
  filter: string[];
  quiet?: boolean;
  format?: string;
  digests?: boolean;
  trunc: boolean; // --no-trunc → false
  all?: boolean;
  tree?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function listCommand(cmd: Command): Command {
  return (
    cmd
      .option('-f, --filter <list>', 'Filter output based on conditions provided', collect, [] as string[])
      .option('-q, --quiet', 'Only show image IDs')
      .option('--format <string>', 'Format output using a custom template: "table", "table TEMPLATE", "json" or a Go TEMPLATE')
      .option('--digests', 'Show digests')
      .option('--no-trunc', "Don't truncate output")
      // img keeps no intermediate images, and lists an index's platforms under it.
      .option('-a, --all', 'Show all images (img keeps no intermediate images)')
      .option('--tree', 'List multi-platform images as a tree (img ls always does)')
  );
}

export const register: RegisterCommand = (program, globals) =>
  listCommand(program.command('ls').description('List images and digests.').usage('[OPTIONS]')).action((flags: ListFlags) =>
    list(globals().state, flags, 'img'),
  );

// docker's `images`: scripts reading its table or its -q/--format output work unchanged.
export const registerImages: RegisterCommand = (program, globals) =>
  listCommand(program.command('images').description("List images (docker's table: REPOSITORY TAG IMAGE ID CREATED SIZE).").usage('[OPTIONS]')).action(
    (flags: ListFlags) => list(globals().state, flags, 'docker'),
  );

// One row as docker's image formatter offers it to --format (and img's NAME as .Name).
interface ImageView {
  Containers: string;
  CreatedAt: string;
  CreatedSince: string;
  Digest: string;
  ID: string;
  Name: string;
  Repository: string;
  SharedSize: string;
  Size: string;
  Tag: string;
  UniqueSize: string;
  VirtualSize: string;
}

const HEADER: ImageView = {
  Containers: 'CONTAINERS',
  CreatedAt: 'CREATED AT',
  CreatedSince: 'CREATED',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  Name: 'NAME',
  Repository: 'REPOSITORY',
  SharedSize: 'SHARED SIZE',
  Size: 'SIZE',
  Tag: 'TAG',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'SIZE',
};

async function list(state: string, flags: ListFlags, style: 'img' | 'docker'): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { listImages } = require('../../images/list') as typeof import('../../images/list');
  const { bytesSize, tabwrite, timeAgo } = require('../../util/units') as typeof import('../../util/units');
  const { escapeControls } = require('../../util/escape') as typeof import('../../util/escape');
  const { goStruct, parseFormat } = require('../../util/template') as typeof import('../../util/template');
  // A bad template fails before the store is read, as docker's does.
  const plan = flags.quiet ? parseFormat('{{.ID}}') : flags.format && flags.format !== 'json' && flags.format !== 'table' ? parseFormat(flags.format) : null;
  const images = await listImages(state, flags.filter);
  const now = Date.now();
  const out = (s: string) => process.stdout.write(escapeControls(s));

  if (style === 'img' && !flags.quiet && (!flags.format || flags.format === 'table')) {
    // img's own table shows full digests always (--digests, --no-trunc: nothing to add).
    const rows = [['NAME', 'SIZE', 'CREATED AT', 'UPDATED AT', 'DIGEST']];
    for (const img of images) {
      rows.push([img.familiar, bytesSize(img.size), timeAgo(img.createdAt, now), timeAgo(img.updatedAt, now), img.target.digest]);
      const platforms = img.platforms ?? [];
      platforms.forEach((p, i) => rows.push([`${i === platforms.length - 1 ? '└─' : '├─'} ${p.platform}`, bytesSize(p.size), '', '', p.digest]));
    }
    out(tabwrite(rows));
    return;
  }

  const views = await imageViews(state, images, flags.trunc, now);
  if (flags.format === 'json' && !flags.quiet) {
    const { goJson } = require('../../util/template') as typeof import('../../util/template');
    for (const v of views) {
      const { Name: _n, ...docker } = v; // docker's JSON has no Name
      out(`${goJson(docker)}\n`);
    }
    return;
  }
  const digestCol = flags.digests ? '{{.Digest}}\t' : '';
  const { template, table } = plan ?? parseFormat(`table {{.Repository}}\t{{.Tag}}\t${digestCol}{{.ID}}\t{{.CreatedSince}}\t{{.Size}}`);
  const lines = views.map((v) => template.execute(goStruct({ ...v })));
  if (!table) {
    for (const l of lines) out(`${l}\n`);
    return;
  }
  const header = template.execute(goStruct({ ...HEADER }));
  out(tabwrite([header, ...lines].map((l) => l.split('\t')), { minwidth: 10, tabwidth: 1, padding: 3, padchar: ' ' }));
}

// docker's rows: one per name, newest image first; an image kept only under its ID
// (an unnamed `img load`) is <none>:<none>.
async function imageViews(state: string, images: import('../../images/list').ImageListing[], trunc: boolean, now: number): Promise<ImageView[]> {
  const { inspectImages, isIdName } = require('../../images/inspect') as typeof import('../../images/inspect');
  const { parseReference, familiarName } = require('../../images/reference') as typeof import('../../images/reference');
  const { humanSize, timeAgo } = require('../../util/units') as typeof import('../../util/units');
  // The ID, creation time and unpacked size `img inspect` shows (docker's SIZE is the latter).
  // `found` follows `names`, less the ones in `missing` (a manifest not stored here).
  const { found, missing } = await inspectImages(state, images.map((i) => i.name));
  const gone = new Set(missing);
  let next = 0;
  const rows: (ImageView & { created: number })[] = [];
  for (const img of images) {
    const obj = gone.has(img.name) ? undefined : found[next++];
    const id = typeof obj?.Id === 'string' ? obj.Id : img.target.digest;
    const created = typeof obj?.Created === 'string' ? Date.parse(obj.Created) || 0 : 0;
    const size = typeof obj?.Size === 'number' ? obj.Size : img.size;
    let repository = '<none>';
    let tag = '<none>';
    if (!isIdName(img.name)) {
      try {
        const ref = parseReference(img.name);
        repository = familiarName({ domain: ref.domain, path: ref.path });
        tag = ref.tag ?? '<none>';
      } catch {
        repository = img.name;
      }
    }
    rows.push({
      created,
      Containers: 'N/A',
      CreatedAt: created ? goTimeString(created) : '',
      CreatedSince: created ? timeAgo(new Date(created), now) : 'N/A',
      Digest: img.target.digest,
      ID: trunc ? id.replace(/^sha256:/, '').slice(0, 12) : id,
      Name: img.familiar,
      Repository: repository,
      SharedSize: 'N/A',
      Size: humanSize(size, 3),
      Tag: tag,
      UniqueSize: 'N/A',
      VirtualSize: humanSize(size, 3),
    });
  }
  rows.sort((a, b) => b.created - a.created || (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  return rows.map(({ created: _c, ...v }) => v);
}

// Go's time.Time.String() in the local zone: "2024-01-01 00:00:00 +0000 UTC".
function goTimeString(ms: number): string {
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const local = new Date(ms + offset * 60_000).toISOString();
  const abs = Math.abs(offset);
  const zone = `${offset >= 0 ? '+' : '-'}${String(Math.trunc(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  let name = 'UTC';
  if (offset !== 0) {
    name = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? zone;
  }
  return `${local.slice(0, 10)} ${local.slice(11, 19)} ${zone} ${name}`;
}
