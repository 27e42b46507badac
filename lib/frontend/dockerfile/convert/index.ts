// Dockerfile → build graph, with BuildKit's (dockerfile2llb) meaning: ARG
// scoping, which instructions expand variables, stage references, COPY/ADD
// source kinds, RUN mounts, and the image config accumulated exactly as Docker
// writes it (history strings included). Pure TypeScript: no node: imports.
//
// The work is in converter.ts (driver and shared state) and one file per
// instruction family: from.ts, run.ts, copy.ts, config.ts; stage.ts holds
// the per-stage state they share.

import type { BuildGraph } from '../../../graph/types';
import type { ParsedDockerfile } from '../ast';
import { parseDockerfile } from '../parser';
import { Converter, type ConvertOptions } from './converter';

export type { ConvertOptions, NamedContext } from './converter';

export async function dockerfileToGraph(text: string, opts: ConvertOptions): Promise<BuildGraph> {
  const parsed = parseDockerfile(text, { filename: opts.filename ?? 'Dockerfile' });
  return convertDockerfile(parsed, opts);
}

export async function convertDockerfile(parsed: ParsedDockerfile, opts: ConvertOptions): Promise<BuildGraph> {
  return new Converter(parsed, opts).run();
}
