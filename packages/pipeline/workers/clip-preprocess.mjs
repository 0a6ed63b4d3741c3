// The CLIP preprocessing thread of `ClipPool` (src/inference/clip-pool.ts). Plain JavaScript so that it loads as is
// from the package's source (under vitest) and from its build; it imports the built @bvllm/vision-encoder.
import { parentPort } from 'node:worker_threads';
import { preprocessClip } from '@bvllm/vision-encoder';

parentPort.on('message', ({ id, rgb, width, height, options }) => {
  try {
    const pixels = preprocessClip(rgb, width, height, options);
    parentPort.postMessage({ id, pixels }, [pixels.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: { message: error instanceof Error ? error.message : String(error), code: error?.code } });
  }
});
