/**
 * The block workers' kernel (docs/design.md §4.10): plain CommonJS evaluated by each Worker, so no
 * TypeScript loader is needed there. It only hashes (sha256 or BLAKE3, as the repository says) and
 * (de)compresses (zstd); framing and checks stay in block-codec.ts on the calling thread. Tasks
 * work on a slot (copy in, copy out) or in place on views of shared memory (see block-pool.ts).
 */

/** Evaluated by the Worker; results go into the task's slot or the posted answer. */
export const kernelSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zstd = require(workerData.bindingPath);
const blake3 = workerData.hashName === 'blake3' ? require(workerData.blake3BindingPath).blake3 : null;
const hashOf = blake3 ?? ((data) => createHash('sha256').update(data).digest());
const headroom = workerData.headroomBytes;
const level = workerData.level;
const cctx = level === null ? null : new zstd.CCtx();
const dctx = new zstd.DCtx();
const slots = workerData.slots.map((s) => ({ input: Buffer.from(s.input), output: Buffer.from(s.output) }));
const view = (ref) => Buffer.from(ref.memory, ref.offsetBytes, ref.lengthBytes);
parentPort.on('message', (task) => {
  try {
    if (task.op === 'encodeInPlace') {
      const data = view(task.data);
      const object = view(task.object);
      const hash = hashOf(data);
      let codec = 0;
      let payloadBytes = data.length;
      if (cctx !== null) {
        let compressedBytes = Infinity;
        try {
          compressedBytes = cctx.compress(object.subarray(headroom), data, level);
        } catch {
          // The frame does not fit in one block: incompressible, stored as is.
        }
        if (compressedBytes <= data.length * (1 - workerData.minSaving)) {
          codec = 1;
          payloadBytes = compressedBytes;
        }
      }
      if (codec === 0) data.copy(object, headroom);
      parentPort.postMessage({ id: task.id, hash, codec, payloadBytes });
      return;
    }
    if (task.op === 'decodeInPlace') {
      const payload = view(task.payload);
      const plain = view(task.into);
      if (task.codec === 1) {
        const written = dctx.decompress(plain, payload);
        if (written !== plain.length) throw new Error('decompressed length mismatch');
      } else {
        if (payload.length !== plain.length) throw new Error('stored length mismatch');
        payload.copy(plain);
      }
      parentPort.postMessage({ id: task.id, hash: hashOf(plain) });
      return;
    }
    const slot = slots[task.slot];
    if (task.op === 'encode') {
      const data = slot.input.subarray(0, task.lengthBytes);
      const hash = hashOf(data);
      let codec = 0;
      let payloadBytes = data.length;
      if (cctx !== null) {
        const compressedBytes = cctx.compress(slot.output.subarray(headroom), data, level);
        if (compressedBytes <= data.length * (1 - workerData.minSaving)) {
          codec = 1;
          payloadBytes = compressedBytes;
        }
      }
      parentPort.postMessage({ id: task.id, hash, codec, payloadBytes });
    } else if (task.op === 'decode') {
      const plain = slot.output.subarray(0, task.lengthBytes);
      const written = dctx.decompress(plain, slot.input.subarray(0, task.payloadBytes));
      if (written !== task.lengthBytes) throw new Error('decompressed length mismatch');
      parentPort.postMessage({ id: task.id, hash: hashOf(plain) });
    } else {
      const data = slot.input.subarray(0, task.lengthBytes);
      parentPort.postMessage({ id: task.id, hash: hashOf(data) });
    }
  } catch (error) {
    parentPort.postMessage({ id: task.id, error: String(error && error.message || error) });
  }
});
`;
