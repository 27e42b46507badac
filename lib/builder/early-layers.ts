// Layers of the image exported while later steps still run. A step's committed snapshot
// never changes, so the blob of each layer the image keeps can be made as soon as its
// step is done: diff → tar → compress → hash → store then overlaps the next RUN instead
// of queuing behind the last step, and the exporter finds the blob in the layer memo
// (export/layer-memo.ts makes each one once, whoever asks first). Only the steps whose
// layers the image keeps — each root's rootfs chain, not other stages' steps nor
// mounts' outputs — and only when an output is an image.
import { prepareLayer, type ExportEnv, type ImageFormat } from '../export/index';
import type { BuildGraph, Ref, VertexId } from '../graph/types';
import type { Executor, Executors } from '../solver/types';
import { debug } from '../util/log';

// The steps whose own layer ends up in a root's image: from the root down its rootfs
// inputs (RUN's rootfs, COPY's base) to the source it starts from.
export function layerSteps(vertices: BuildGraph['vertices'], roots: (Ref | null)[]): Set<VertexId> {
  const steps = new Set<VertexId>();
  for (let ref of roots) {
    while (ref && ref.output === 0 && !steps.has(ref.vertex)) {
      const v = vertices[ref.vertex];
      const below = v?.kind === 'exec' ? v.rootfs : v?.kind === 'file' ? v.base : -1;
      if (v?.kind === 'exec' || v?.kind === 'file') steps.add(v.id);
      ref = below >= 0 ? v!.inputs[below] : null;
    }
  }
  return steps;
}

export class EarlyLayers {
  private readonly started: Promise<void>[] = [];

  constructor(
    private readonly env: ExportEnv,
    private readonly format: ImageFormat,
    private readonly steps: Set<VertexId>,
  ) {}

  // The executors, with each listed step's new layer started as the step returns.
  wrap(executors: Executors): Executors {
    const out: Record<string, Executor> = { ...(executors as Record<string, Executor>) };
    for (const kind of ['exec', 'file'] as const) {
      const ex = executors[kind] as Executor | undefined;
      if (!ex) continue;
      const wrapped: Executor = Object.create(ex);
      wrapped.run = async (v, ctx) => {
        const result = await ex.run(v, ctx);
        const slot = result.layers.at(-1);
        if (this.steps.has(v.id) && slot?.snapshot) {
          // A failure here is the exporter's to report: it makes the layer again.
          this.started.push(prepareLayer(this.env, this.format, slot).catch((err) => debug(`early export of ${slot.snapshot}: ${(err as Error).message}`)));
        }
        return result;
      };
      out[kind] = wrapped;
    }
    return out as Executors;
  }

  // Resolves once every started layer is stored or has failed (before the build lets go
  // of the store lock, also when it fails).
  async settled(): Promise<void> {
    await Promise.all(this.started);
  }
}
