// Which steps' layers a build exports while later steps run (builder/early-layers.ts):
// those of the final image — each root's rootfs chain — and no other stage's, so an
// early start never stores a blob the image does not name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerSteps } from '../../lib/builder/early-layers';
import type { BuildGraph } from '../../lib/graph/types';
import { build } from '../frontend/graphs/helpers';

const names = (g: BuildGraph, ids: Set<string>) => [...ids].map((id) => g.vertices[id].name).sort();

test('early layers: the final stage’s RUN and COPY steps, not a build stage’s nor a mount’s source', async () => {
  const g = await build(`FROM busybox AS deps
RUN echo deps > /deps
RUN echo more > /more

FROM busybox AS tool
RUN echo tool > /tool

FROM busybox
COPY --from=deps /deps /deps
RUN --mount=type=bind,from=tool,target=/t cat /t/tool > /copied
WORKDIR /app
COPY --link --from=deps /more /more
`);
  assert.deepEqual(names(g, layerSteps(g.vertices, [g.root])), [
    '[stage-2 2/5] COPY --from=deps /deps /deps',
    '[stage-2 3/5] RUN --mount=type=bind,from=tool,target=/t cat /t/tool > /copied',
    '[stage-2 4/5] WORKDIR /app',
    '[stage-2 5/5] COPY --link --from=deps /more /more',
  ]);
});

test('early layers: a build that only names its base image exports none; scratch roots are fine', async () => {
  const g = await build('FROM busybox\nENV A=1\n');
  assert.deepEqual([...layerSteps(g.vertices, [g.root])], []);
  assert.deepEqual([...layerSteps({}, [null])], []);
});
