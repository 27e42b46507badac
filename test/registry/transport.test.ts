// The registry client's HTTP exchanges (node:http) against the real registry: a body
// read slower than the body limit is not a stall (the limit is the registry's silence,
// not the reader's pace), bodies dumped or read whole; and a listener that never
// accepts, for the connect limit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeAgents, header, send, stallOf } from '../../lib/registry/transport';
import { imageFromLayer, type BuiltImage } from '../fixtures/images';
import { tarOf } from '../fixtures/layers';
import { startRegistry, type Registry } from '../fixtures/registry';

describe('registry transport', () => {
  let reg: Registry;
  let img: BuiltImage;
  const saved = { body: process.env.IMG_REGISTRY_BODY_TIMEOUT, connect: process.env.IMG_REGISTRY_CONNECT_TIMEOUT };

  before(async () => {
    reg = await startRegistry();
    // 8 MiB of random bytes: more than the socket and the stream buffer hold, so a
    // paused reader really leaves the registry waiting.
    img = imageFromLayer({ tar: await tarOf([{ name: 'big.bin', body: randomBytes(8 << 20) }]) });
    await reg.seed('transport/big', 'latest', img);
  });

  after(async () => {
    for (const [k, v] of [['IMG_REGISTRY_BODY_TIMEOUT', saved.body], ['IMG_REGISTRY_CONNECT_TIMEOUT', saved.connect]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await closeAgents();
    await reg?.stop();
  });

  it('a reader that pauses longer than IMG_REGISTRY_BODY_TIMEOUT still gets the whole blob', async () => {
    process.env.IMG_REGISTRY_BODY_TIMEOUT = '300ms';
    const layer = img.layers[0];
    const res = await send({ method: 'GET', url: `http://${reg.host}/v2/transport/big/blobs/${layer.digest}` });
    assert.equal(res.status, 200);
    assert.equal(header(res, 'content-length'), String(layer.size));
    const hash = createHash('sha256');
    let size = 0;
    let paused = false;
    await new Promise<void>((resolve, reject) => {
      res.body.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
        if (!paused) {
          paused = true;
          res.body.pause();
          setTimeout(() => res.body.resume(), 1000);
        }
      });
      res.body.once('end', resolve);
      res.body.once('error', reject);
    });
    assert.equal(size, layer.size);
    assert.equal(`sha256:${hash.digest('hex')}`, layer.digest);
  });

  it('small bodies read whole (json, text); a HEAD and a big body dumped; the next exchange goes through', async () => {
    delete process.env.IMG_REGISTRY_BODY_TIMEOUT;
    const manifest = await send({ method: 'GET', url: `http://${reg.host}/v2/transport/big/manifests/latest`, headers: { accept: img.manifest.mediaType } });
    assert.equal(manifest.status, 200);
    assert.equal(header(manifest, 'docker-content-digest'), img.manifest.digest);
    assert.deepEqual(await manifest.body.json(), JSON.parse(img.blobs.get(img.manifest.digest)!.toString()));
    const missing = await send({ method: 'GET', url: `http://${reg.host}/v2/transport/big/manifests/nope` });
    assert.equal(missing.status, 404);
    assert.match(await missing.body.text(), /MANIFEST_UNKNOWN/);
    // A HEAD has no body to read; dump() resolves at once.
    const head = await send({ method: 'HEAD', url: `http://${reg.host}/v2/transport/big/blobs/${img.layers[0].digest}` });
    assert.equal(head.status, 200);
    await head.body.dump();
    // The big blob dumped after its first bytes: the connection is dropped, not read to the end.
    const big = await send({ method: 'GET', url: `http://${reg.host}/v2/transport/big/blobs/${img.layers[0].digest}` });
    const t = Date.now();
    await big.body.dump();
    assert.ok(Date.now() - t < 5000);
    const again = await send({ method: 'GET', url: `http://${reg.host}/v2/` });
    assert.equal(again.status, 200);
    await again.body.dump();
  });

  it('a connection the other side never accepts fails at IMG_REGISTRY_CONNECT_TIMEOUT with the connect stall', async () => {
    // A listener whose process is blocked never accepts: once its queue (backlog 1) is
    // full of our first connections, the kernel drops the next SYNs.
    const child = spawn(
      process.execPath,
      ['-e', "require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { console.log(this.address().port); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000) })"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fillers: net.Socket[] = [];
    try {
      const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
      for (let i = 0; i < 3; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      await new Promise((r) => setTimeout(r, 200));
      process.env.IMG_REGISTRY_CONNECT_TIMEOUT = '300ms';
      const t = Date.now();
      const err = await send({ method: 'GET', url: `http://127.0.0.1:${port}/v2/`, retry: false }).then(
        () => assert.fail('the exchange should stall'),
        (e: unknown) => e,
      );
      assert.equal(stallOf(err), 'connectMs', String(err));
      assert.equal((err as { code?: string }).code, 'IMG_HTTP_CONNECT_TIMEOUT');
      assert.match(String((err as Error).message), /no connection within 300ms/);
      assert.ok(Date.now() - t < 5000, `took ${Date.now() - t} ms`);
    } finally {
      delete process.env.IMG_REGISTRY_CONNECT_TIMEOUT;
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    }
  });
});
