// Shared fixtures for the converter tests: a fake image resolver, a one-call
// build, lookups by progress name, and JSON snapshots under this directory.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { dockerfileToGraph, type ConvertOptions } from '../../../lib/frontend/dockerfile/convert';
import type { BuildGraph, Vertex } from '../../../lib/graph/types';
import type { ContainerConfig, ImageConfig, Platform } from '../../../lib/images/types';

export const DIGEST_A = 'sha256:' + 'a'.repeat(64);
export const BASE_DIFF = ('sha256:' + '1'.repeat(64)) as `sha256:${string}`;

// Images the fake registry knows; everything else resolves to null.
export const IMAGES: Record<string, ContainerConfig> = {
  'docker.io/library/alpine:3.19': { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
  'docker.io/library/busybox:latest': { Env: ['PATH=/bin'], Cmd: ['sh'] },
  'docker.io/library/golang:1.22': {
    Env: ['PATH=/usr/local/go/bin:/usr/bin:/bin', 'GOPATH=/go', 'GOLANG_VERSION=1.22.0'],
    Cmd: ['bash'],
    WorkingDir: '/go',
  },
  'docker.io/library/node:20': {
    Env: ['PATH=/usr/bin:/bin', 'NODE_VERSION=20.0.0'],
    Entrypoint: ['docker-entrypoint.sh'],
    Cmd: ['node'],
    ExposedPorts: { '9229/tcp': {} },
    Labels: { maintainer: 'node' },
    User: 'node',
  },
  'docker.io/library/onbuild:latest': {
    Env: ['PATH=/bin'],
    OnBuild: ['COPY app.txt /app/', 'RUN echo triggered'],
  },
};

export function imageConfig(ref: string, platform: Platform): ImageConfig | null {
  const c = IMAGES[ref];
  if (!c) return null;
  return {
    architecture: platform.architecture,
    os: platform.os,
    config: JSON.parse(JSON.stringify(c)),
    rootfs: { type: 'layers', diff_ids: [BASE_DIFF] },
    history: [{ created_by: `/bin/sh -c #(nop) base ${ref}` }],
  };
}

export const resolved: string[] = [];
export const resolver: ConvertOptions['resolveImageConfig'] = async (ref, platform) => {
  resolved.push(`${ref} ${platform.os}/${platform.architecture}`);
  const config = imageConfig(ref, platform);
  return config ? { ref, digest: DIGEST_A, config } : null;
};

export function build(text: string, opts: Partial<ConvertOptions> = {}): Promise<BuildGraph> {
  return dockerfileToGraph(text, { resolveImageConfig: resolver, ...opts });
}

export function vertices(g: BuildGraph): Vertex[] {
  return Object.values(g.vertices);
}

// The one vertex whose name contains `part`.
export function named(g: BuildGraph, part: string): Vertex {
  const hits = vertices(g).filter((v) => v.name.includes(part));
  assert.equal(hits.length, 1, `expected one vertex named like ${JSON.stringify(part)}, got ${hits.map((v) => v.name).join(' | ') || 'none'}`);
  return hits[0];
}

export function root(g: BuildGraph): Vertex {
  assert.ok(g.root, 'graph has a root');
  return g.vertices[g.root.vertex];
}

export function input(g: BuildGraph, v: Vertex, i: number): Vertex {
  return g.vertices[v.inputs[i].vertex];
}

// The chain of names from the root down the rootfs/base input.
export function chain(g: BuildGraph): string[] {
  const out: string[] = [];
  let v: Vertex | undefined = g.root ? g.vertices[g.root.vertex] : undefined;
  while (v) {
    out.unshift(v.name);
    const i = v.kind === 'exec' ? v.rootfs : v.kind === 'file' ? v.base : -1;
    v = i >= 0 ? g.vertices[v.inputs[i].vertex] : undefined;
  }
  return out;
}

export function history(g: BuildGraph): string[] {
  return (g.config.history ?? []).map((h) => `${h.created_by}${h.empty_layer ? ' (empty)' : ''}`);
}

// A readable, id-free structure: vertices by name with inputs by name.
export function shape(g: BuildGraph): unknown {
  const nameOf = (id: string): string => (g.vertices[id] ? `${g.vertices[id].kind}:${g.vertices[id].name}` : id);
  const vs = vertices(g)
    .map((v) => {
      const { id: _id, inputs, ...rest } = v;
      return { ...rest, inputs: inputs.map((i) => `${nameOf(i.vertex)}#${i.output}`) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { root: g.root ? nameOf(g.root.vertex) : null, vertices: vs, config: g.config, warnings: g.warnings, secrets: g.secrets, ssh: g.ssh };
}

// Compares against test/frontend/graphs/<name>.json; UPDATE_SNAPSHOTS=1 rewrites it.
export function snapshot(name: string, value: unknown): void {
  const file = path.join(__dirname, `${name}.json`);
  const text = JSON.stringify(value, null, 2) + '\n';
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    writeFileSync(file, text);
    return;
  }
  assert.ok(existsSync(file), `snapshot ${file} is missing: run with UPDATE_SNAPSHOTS=1 to create it`);
  assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(file, 'utf8')), `snapshot ${name} differs (UPDATE_SNAPSHOTS=1 to accept)`);
}

export async function rejects(p: Promise<unknown>, re: RegExp, line?: number): Promise<void> {
  await assert.rejects(p, (e: Error & { line?: number }) => {
    assert.match(e.message, re);
    if (line !== undefined) assert.equal(e.line, line, `error line for ${e.message}`);
    return true;
  });
}
