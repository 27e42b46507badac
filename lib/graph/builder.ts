// Helpers to assemble a BuildGraph: add vertices (id = digest of the
// definition, so identical work dedupes to one vertex), walk them in
// topological order, and drop what the root does not reach.

import { canonicalDefinition, digestOfCanonical } from './digest';
import type { Ref, Vertex, VertexId } from './types';

// A vertex as the producer describes it: everything but the computed id.
export type Def<V> = V extends Vertex ? Omit<V, 'id'> : never;

export class GraphBuilder {
  readonly vertices: Record<VertexId, Vertex> = {};
  // The canonical JSON each id was computed from (lets callers re-key cheaply).
  readonly canonical = new Map<VertexId, string>();

  // Adds a vertex and returns a ref to its output. When an identical vertex
  // exists already, the first one's name wins (like BuildKit's progress).
  add(def: Def<Vertex>, output = 0): Ref {
    const { name, ...rest } = stripUndefined(def) as Omit<Vertex, 'id'>;
    const canonical = canonicalDefinition(rest as Omit<Vertex, 'id' | 'name'>);
    const id = digestOfCanonical(canonical);
    if (!this.vertices[id]) {
      this.vertices[id] = { id, name, ...rest } as Vertex;
      this.canonical.set(id, canonical);
    } else if (rest.noCacheStage) this.vertices[id].noCacheStage = true; // shared work: a filtered stage's step still runs
    return { vertex: id, output };
  }

  get(id: VertexId): Vertex | undefined {
    return this.vertices[id];
  }
}

// Drops undefined members (recursively) so stored vertices equal their JSON form.
function stripUndefined<T>(v: T): T {
  if (Array.isArray(v)) return v.map(stripUndefined) as T;
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = stripUndefined(x);
  return out as T;
}

// Vertices reachable from the roots, inputs before their users.
export function topoOrder(vertices: Record<VertexId, Vertex>, roots?: VertexId[]): Vertex[] {
  const out: Vertex[] = [];
  const state = new Map<VertexId, 1 | 2>(); // 1 visiting, 2 done
  const start = roots ?? Object.keys(vertices).sort();
  // Iterative DFS: graphs from generated Dockerfiles can be thousands deep.
  for (const r of start) {
    if (state.get(r) === 2) continue;
    const stack: { id: VertexId; next: number }[] = [{ id: r, next: 0 }];
    state.set(r, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const v = vertices[top.id];
      if (!v) throw new Error(`graph: vertex ${top.id} is referenced but missing`);
      if (top.next < v.inputs.length) {
        const dep = v.inputs[top.next++].vertex;
        const s = state.get(dep);
        if (s === 1) throw new Error(`graph: cycle through ${dep}`);
        if (s === undefined) {
          state.set(dep, 1);
          stack.push({ id: dep, next: 0 });
        }
      } else {
        state.set(top.id, 2);
        out.push(v);
        stack.pop();
      }
    }
  }
  return out;
}

// Keeps only vertices the roots reach.
export function prune(vertices: Record<VertexId, Vertex>, roots: VertexId[]): Record<VertexId, Vertex> {
  const kept: Record<VertexId, Vertex> = {};
  for (const v of topoOrder(vertices, roots)) kept[v.id] = v;
  return kept;
}

// Direct dependents of each vertex (for schedulers that run as inputs finish).
export function dependents(vertices: Record<VertexId, Vertex>): Map<VertexId, VertexId[]> {
  const m = new Map<VertexId, VertexId[]>();
  for (const v of Object.values(vertices)) {
    for (const i of v.inputs) {
      const l = m.get(i.vertex);
      if (l) {
        if (!l.includes(v.id)) l.push(v.id);
      } else m.set(i.vertex, [v.id]);
    }
  }
  return m;
}
