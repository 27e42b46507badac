// The inline backend (--cache-to type=inline, BuildKit's BUILDKIT_INLINE_CACHE): the
// records go into the image config as "moby.buildkit.cache.v0", their results'
// "layer" counting the image's own layers, so the image is its own cache and
// `--cache-from IMAGE` reads it (envelope.ts). Only results whose chain is a
// prefix of the image's layers can be named this way: inline is mode=min.
import type { Digest } from '../images/types';
import { buildConfig, marshalRecords, type ExportEntry } from './format';

// The field's value (a Go []byte: base64 of the records' JSON), or undefined when
// no result lies on the image's chain.
export function inlineCacheField(entries: ExportEntry[], imageLayers: Digest[]): string | undefined {
  const onChain = (layers: { digest: Digest }[]): boolean => layers.length <= imageLayers.length && layers.every((l, i) => l.digest === imageLayers[i]);
  const kept = entries.map((e) => (e.result && onChain(e.result.layers) ? e : { ...e, result: undefined }));
  const { config } = buildConfig(kept);
  if (!config.records.some((r) => r.results.length)) return undefined;
  // A layer's depth in its chain is its position in the image.
  const depth = config.layers.map(() => 0);
  config.layers.forEach((l, i) => (depth[i] = l.parent === -1 ? 0 : depth[l.parent] + 1));
  const records = config.records.map((r) => ({ ...r, results: r.results.map((x) => ({ ...x, layer: depth[x.layer] })) }));
  return Buffer.from(JSON.stringify(marshalRecords(records))).toString('base64');
}
