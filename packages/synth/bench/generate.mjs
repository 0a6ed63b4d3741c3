// Generation speed of the synthetic benchmark (videos/s) and how often uniform sampling misses the brief event.
// Run after `pnpm --filter @bvllm/synth build`: `pnpm --filter @bvllm/synth bench`. Prints figures; asserts nothing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { buildItem, generateBenchmark, oneFpsFrameIndices, parseSynthConfig, renderFrame, uniformFrameIds } from '../dist/index.js';

const root = mkdtempSync(join(tmpdir(), 'bvllm-synth-bench-'));
const cases = [
  { name: 'default 64 px, 8–12 s @ 4 fps', settings: { counts: { train: 40, val: 0, test: 0 } } },
  { name: '96 px, 8–12 s @ 8 fps', settings: { counts: { train: 20, val: 0, test: 0 }, size: 96, fps: 8 } },
  { name: 'long (10 s, 1 min, 10 min) @ 4 fps', settings: { counts: { train: 0, val: 0, test: 3 }, long: true } },
];

try {
  console.log(`cpus ${availableParallelism()}`);
  for (const { name, settings } of cases) {
    for (const concurrency of [1, 2]) {
      const outDir = join(root, `${name.length}-${concurrency}`);
      const s = await generateBenchmark({ outDir, seed: 0, concurrency, ...settings });
      const totalFrames = JSON.parse(readFileSync(s.files.scenes, 'utf8')).reduce((n, x) => n + x.scene.numFrames, 0);
      console.log(
        `${name.padEnd(36)} concurrency ${concurrency}: ${s.videos} videos in ${s.elapsedSec.toFixed(2)} s = ` +
          `${s.videosPerSec.toFixed(2)} videos/s, ${(totalFrames / s.elapsedSec).toFixed(0)} frames/s`,
      );
    }
  }

  // Rendering alone, without ffmpeg.
  const config = parseSynthConfig({ outDir: 'unused' });
  const item = buildItem(config, 'train', 0);
  const t0 = performance.now();
  let frames = 0;
  while (performance.now() - t0 < 1000) frames += (renderFrame(item.scene, frames % item.scene.numFrames), 1);
  console.log(`renderFrame 64 px: ${(frames / ((performance.now() - t0) / 1000)).toFixed(0)} frames/s`);

  // How often K uniform picks from the 1-fps frames (VideoLLaMA2 frame_sample) see the brief event.
  for (const k of [2, 4, 8]) {
    const cfg = parseSynthConfig({ outDir: 'unused', tasks: ['brief-event'] });
    let hits = 0;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const { scene, question } = buildItem(cfg, 'test', i);
      const sampled = oneFpsFrameIndices(scene.numFrames, scene.fps);
      const picks = uniformFrameIds(sampled.length, k).map((j) => sampled[j] / scene.fps);
      if (picks.some((t) => t >= question.eventSec[0] && t < question.eventSec[1])) hits++;
    }
    console.log(`uniform K=${k} of the 1-fps frames sees the brief event in ${((100 * hits) / n).toFixed(1)}% of 200 videos (placed to dodge K=4)`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
