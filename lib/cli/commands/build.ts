// img build [OPTIONS] PATH | URL | -
// Flags follow img's help text plus docker/buildx's common ones.
import { Option } from 'commander';
import { NotFoundError, UnsupportedError, UsageError } from '../../util/errors';
import { startupMarks } from '../../util/startup';
import { contentTrustOption, parseFixedBool, refuse, tolerate } from '../refuse';
import type { RegisterCommand } from './index';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export interface BuildFlags {
  buildArg: string[];
  cacheFrom: string[];
  cacheTo: string[];
  file?: string;
  label: string[];
  cache: boolean; // --no-cache → false
  console: boolean; // --no-console → false
  output: string[];
  platform: string[];
  tag: string[];
  target?: string;
  progress: string;
  quiet?: boolean;
  iidfile?: string;
  metadataFile?: string;
  secret: string[];
  ssh: string[];
  network: string;
  pull?: boolean;
  push?: boolean;
  addHost: string[];
  buildContext: string[];
  check?: boolean;
  load?: boolean;
  call?: string;
  allow: string[];
  shmSize?: string;
  ulimit: string[];
  cacheFilter: string[];
  annotation: string[]; // --no-cache-filter (commander names a --no- option by what follows)
}

// buildx's --provenance/--sbom: img writes no attestations, so only "off" is honoured.
function noAttestation(flag: string): (v: string) => string {
  return (v: string) => {
    const s = v.trim().toLowerCase();
    if (['false', '0', 'f', 'disabled=true'].includes(s)) return v;
    throw new UnsupportedError(`img does not support ${flag}=${v}: img writes no attestation manifests (provenance, SBOM)`, {
      hint: `drop ${flag}, or pass ${flag}=false`,
    });
  };
}

// --allow: BuildKit's entitlements. security.insecure lets RUN --security=insecure run
// (with every capability of img's user namespace); RUN --network=host shares img's
// network, which needs no grant here, so network.host is accepted and changes nothing.
function parseAllow(v: string, prev: string[] = []): string[] {
  const out = [...prev];
  for (const e of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (e === 'network.host' || e === 'security.insecure') out.push(e);
    else if (e === 'device' || e.startsWith('device=')) {
      throw new UnsupportedError(`img does not support --allow ${e}: RUN --device is not supported`, { hint: 'drop it' });
    } else throw new UsageError(`unknown entitlement ${e}`, { hint: 'use --allow network.host or --allow security.insecure' });
  }
  return out;
}

// buildx's --call: `build` (the default) and `check` (as --check); the others print
// the Dockerfile's outline or targets, which img does not.
function parseCall(v: string): string {
  const s = v.trim().toLowerCase();
  if (s === 'build' || s === 'check') return s;
  throw new UnsupportedError(`img does not support --call=${v}`, { hint: 'use --call=check (or --check) for the build checks, or --call=build' });
}

const NO_LIMITS = 'img does not set resource limits on RUN steps';
const LIMIT_HINT = 'to limit the whole build, run img under one (e.g. systemd-run --user --scope -p MemoryMax=2G img build …)';

export const register: RegisterCommand = (program, globals) =>
  tolerate(
    refuse(build(program, globals), [
      { flags: '--attest <list>', why: 'img writes no attestation manifests (provenance, SBOM)', hint: 'drop it' },
    ]),
    [
      { flags: '--builder <string>', why: 'img has no builder instances: it builds in this process', hint: 'drop --builder' },
      { flags: '--cgroup-parent <string>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--cpu-period <int>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--cpu-quota <int>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '-c, --cpu-shares <int>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--cpuset-cpus <string>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--cpuset-mems <string>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '-m, --memory <bytes>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--memory-swap <bytes>', why: NO_LIMITS, hint: LIMIT_HINT },
      { flags: '--isolation <string>', why: 'img has one isolation: runc in a user namespace', hint: 'drop --isolation' },
      { flags: '--security-opt <strings>', why: 'img runs RUN steps with its own fixed, unprivileged profile', hint: 'for a privileged step use RUN --security=insecure with --allow security.insecure' },
      { flags: '--squash', why: 'img does not squash layers', hint: 'for one layer, end with a stage FROM scratch that does COPY --from=<stage> / /' },
    ],
  );

function build(program: Parameters<RegisterCommand>[0], globals: Parameters<RegisterCommand>[1]) {
  return program
    .command('build')
    .description('Build an image from a Dockerfile')
    .usage('[OPTIONS] PATH | URL | -')
    .argument('<path>')
    .option('--build-arg <list>', 'Set build-time variables', collect, [])
    .option('--cache-from <list>', 'Buildkit import-cache or Buildx cache-from specification', collect, [])
    .option('--cache-to <list>', 'Buildx cache-to specification', collect, [])
    .option('-f, --file <string>', "Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    .option('--label <list>', 'Set metadata for an image', collect, [])
    .option('--no-cache', 'Do not use cache when building the image')
    .option('--no-cache-filter <list>', 'Do not cache specified stages', collect, [])
    .option('--no-console', 'Use non-console progress UI')
    .option('-o, --output <string>', 'BuildKit output specification (e.g. type=tar,dest=build.tar)', collect, [])
    .option('--platform <list>', 'Set platforms for which the image should be built', collect, [])
    .option('-t, --tag <list>', "Name and optionally a tag in the 'name:tag' format", collect, [])
    .option('--target <string>', 'Set the target build stage to build')
    .addOption(new Option('--progress <string>', 'Set type of progress output (auto, tty, plain, rawjson, quiet)').default('auto'))
    .option('-q, --quiet', 'Suppress the build output and print image ID on success')
    .option('--iidfile <string>', 'Write the image ID to the file')
    .option('--metadata-file <string>', 'Write build result metadata to the file')
    .option('--secret <list>', 'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")', collect, [])
    .option('--ssh <list>', 'SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")', collect, [])
    .addOption(new Option('--network <string>', 'Set the networking mode for the RUN instructions during build').choices(['default', 'none', 'host']).default('default'))
    .option('--pull', 'Always attempt to pull all referenced images')
    .option('--push', 'Shorthand for --output=type=registry')
    .option('--annotation <list>', 'Add annotation to the image', collect, [])
    .option('--add-host <list>', 'Add a custom host-to-IP mapping (format: "host:ip")', collect, [])
    .option('--build-context <list>', 'Additional build contexts (e.g., name=path)', collect, [])
    .option('--check', 'Run the build checks and print their warnings, build nothing (exit 1 when any is found)')
    .option('--call <string>', 'Set method for evaluating build ("build", "check")', parseCall)
    .option('--load', 'Store the image in the local image store (the default unless --push or another --output is given)')
    .option('--allow <list>', 'Allow extra privileged entitlement (e.g., "network.host", "security.insecure")', parseAllow, [])
    .option('--shm-size <bytes>', 'Shared memory size for build containers (default 64m)')
    .option('--ulimit <ulimit>', 'Ulimit options (e.g. nofile=1024:2048)', collect, [])
    .addOption(new Option('--provenance <string>', 'Provenance attestation: img makes none, only "false" is accepted').preset('true').argParser(noAttestation('--provenance')))
    .addOption(new Option('--sbom <string>', 'SBOM attestation: img makes none, only "false" is accepted').preset('true').argParser(noAttestation('--sbom')))
    // docker's legacy-builder flags whose only meaning img always has.
    .addOption(new Option('--rm [bool]', 'Remove intermediate containers after a successful build (always: img keeps none)').preset('true').argParser(parseFixedBool('--rm', true, 'img never keeps the containers of RUN steps', 'drop --rm=false')).hideHelp())
    .addOption(new Option('--force-rm [bool]', 'Always remove intermediate containers (always: img keeps none)').preset('true').argParser(parseFixedBool('--force-rm', true, 'img never keeps the containers of RUN steps', 'drop --force-rm=false')).hideHelp())
    .addOption(new Option('--compress', 'No effect: img reads the build context directly, with no daemon to send it to').hideHelp())
    .addOption(contentTrustOption('Skip image verification (always: img does not verify Docker Content Trust)', 'img does not verify Docker Content Trust signatures', 'pin base images by digest (FROM name@sha256:…) instead'))
    .action(async (contextArg: string, flags: BuildFlags) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const g = globals();
      if (flags.call === 'check') flags.check = true;
      // buildx --progress=quiet: no progress and no messages (only -q prints the ID).
      const progressQuiet = flags.progress === 'quiet';
      if (progressQuiet) flags.progress = 'auto';
      const { enterUserNamespace } = require('../../exec/userns') as typeof import('../../exec/userns');

      const opts = require('../../builder/options') as typeof import('../../builder/options');
      const { parseCacheFrom, parseCacheTo } = require('../../builder/cache') as typeof import('../../builder/cache');
      const { parseProgressMode } = require('../../progress/index') as typeof import('../../progress/index');
      const { parsePlatform } = require('../../images/platform') as typeof import('../../images/platform');
      const { parseReference } = require('../../images/reference') as typeof import('../../images/reference');
      for (const t of flags.tag) {
        try {
          parseReference(t);
        } catch (err) {
          throw new UsageError(`invalid tag "${t}": ${(err as Error).message}`, { hint: "use NAME[:TAG], e.g. -t myimage:1.0", cause: err });
        }
      }
      if (flags.output.length > 1) {
        throw new UnsupportedError('only one --output is supported', { hint: 'build once per output, or use -t to store the image and `img save` it' });
      }
      let outputs = opts.withPush(flags.output.map((o) => opts.parseOutput(o, flags.tag)), Boolean(flags.push), flags.tag);
      if (flags.load) outputs = opts.withLoad(outputs, flags.tag);
      outputs = opts.withAnnotations(outputs, flags.annotation.flatMap(opts.parseAnnotationFlag), flags.tag);
      const env = process.env;
      const buildOpts: import('../../builder/options').BuildOptions = {
        stateDir: g.state,
        backend: g.backend,
        context: contextArg,
        file: flags.file,
        buildArgs: opts.parseKeyValues(flags.buildArg, '--build-arg', env),
        labels: opts.parseKeyValues(flags.label, '--label', env),
        noCache: flags.cache === false,
        cacheFrom: flags.cacheFrom.map(parseCacheFrom),
        cacheTo: flags.cacheTo.map(parseCacheTo),
        target: flags.target,
        platforms: flags.platform.flatMap((p) => p.split(',')).filter(Boolean).map(parsePlatform),
        tags: flags.tag,
        outputs,
        progress: parseProgressMode(flags.progress),
        noConsole: flags.console === false,
        quiet: Boolean(flags.quiet) || progressQuiet,
        iidfile: flags.iidfile,
        metadataFile: flags.metadataFile,
        secrets: flags.secret.map(opts.parseSecret),
        ssh: flags.ssh.map(opts.parseSsh),
        network: flags.network as 'default' | 'none' | 'host',
        pull: Boolean(flags.pull),
        addHosts: flags.addHost.flatMap((h) => h.split(',')).filter(Boolean).map(opts.parseAddHost),
        buildContexts: flags.buildContext.map(opts.parseBuildContext),
        sourceDateEpoch: opts.parseSourceDateEpoch(env.SOURCE_DATE_EPOCH),
        check: Boolean(flags.check),
        shmSize: flags.shmSize !== undefined ? opts.parseShmSize(flags.shmSize) : undefined,
        rlimits: opts.parseUlimits(flags.ulimit),
        allowInsecure: flags.allow.includes('security.insecure'),
        noCacheFilter: flags.cacheFilter.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
      };
      for (const s of buildOpts.secrets) {
        if (s.src) {
          const fs = require('node:fs') as typeof import('node:fs');
          if (!fs.existsSync(s.src)) throw new NotFoundError(`--secret id=${s.id}: file ${s.src} not found`, { hint: 'fix src= to name an existing file' });
        }
      }

      // Unprivileged, the build's snapshots need the user namespace (img-launch
      // normally entered it before Node started).
      await enterUserNamespace({ reason: 'build' });

      const { runBuild } = require('../../builder/index') as typeof import('../../builder/index');
      const dataOnStdout = buildOpts.outputs.some((o) => (o.type === 'tar' || o.type === 'docker' || o.type === 'oci') && !o.dest);
      // Human messages go to stdout like img, unless stdout carries the tar.
      const say = (s: string) => (dataOnStdout ? process.stderr : process.stdout).write(s + '\n');
      const display = buildOpts.tags.length ? fullName(buildOpts.tags[0]) : null;
      if (!buildOpts.quiet && !buildOpts.check && display) say(`Building ${display}`);
      startupMarks.work = performance.now();
      const outcome = await runBuild(buildOpts, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, cwd: process.cwd(), env });
      if (buildOpts.check) {
        // As `docker build --check`: a check that found something fails.
        if (outcome.warnings.some((w) => w.rule)) process.exitCode = 1;
        return;
      }
      if (buildOpts.quiet) {
        if (flags.quiet && outcome.imageId && !dataOnStdout) process.stdout.write(outcome.imageId + '\n');
        return;
      }
      if (buildOpts.outputs.every((o) => o.type === 'cacheonly') && buildOpts.outputs.length) {
        say(`Successfully built: cache only, no output written${buildOpts.cacheTo.length ? ' (cache exported)' : ''}`);
        return;
      }
      // What was made: the image's name, else what the outputs wrote ("files in out/").
      const shortId = outcome.imageId ? outcome.imageId.slice('sha256:'.length, 'sha256:'.length + 12) : null;
      say(`Successfully built ${outcome.names[0] ?? display ?? (outcome.written.length ? outcome.written.join(', ') : shortId)}`);

      function fullName(t: string): string {
        const { formatReference } = require('../../images/reference') as typeof import('../../images/reference');
        const r = parseReference(t);
        return formatReference(r.tag || r.digest ? r : { ...r, tag: 'latest' });
      }
    });
}
