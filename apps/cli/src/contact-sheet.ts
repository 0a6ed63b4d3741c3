/**
 * `--show-frames`: a PNG contact sheet of the frames the model chose, in the order the LLM saw them, each with its
 * timestamp and selection weight written under it and a bar whose length is the weight. A picture a user can
 * check the selector against.
 */
import { writeFileSync } from 'node:fs';
import { openFrameStream, type PipelineConfig, type SelectionSummary } from '@bvllm/pipeline';
import { samplingOptionsSchema } from '@bvllm/vision-encoder';
import { PNG } from 'pngjs';

const TILE = 128;
const CAPTION = 24;
const GAP = 4;

// A 3×5 pixel font for the caption characters, one row per string, '#' = ink.
const GLYPHS: Record<string, string[]> = {
  '0': ['###', '#.#', '#.#', '#.#', '###'],
  '1': ['.#.', '##.', '.#.', '.#.', '###'],
  '2': ['###', '..#', '###', '#..', '###'],
  '3': ['###', '..#', '###', '..#', '###'],
  '4': ['#.#', '#.#', '###', '..#', '..#'],
  '5': ['###', '#..', '###', '..#', '###'],
  '6': ['###', '#..', '###', '#.#', '###'],
  '7': ['###', '..#', '..#', '..#', '..#'],
  '8': ['###', '#.#', '###', '#.#', '###'],
  '9': ['###', '#.#', '###', '..#', '###'],
  '.': ['...', '...', '...', '...', '.#.'],
  s: ['...', '###', '#..', '..#', '###'],
  w: ['...', '#.#', '#.#', '###', '###'],
  '=': ['...', '###', '...', '###', '...'],
  ' ': ['...', '...', '...', '...', '...'],
};

function drawText(png: PNG, text: string, x0: number, y0: number, scale: number): void {
  let x = x0;
  for (const ch of text) {
    const glyph = GLYPHS[ch] ?? GLYPHS[' '];
    glyph.forEach((row, gy) =>
      [...row].forEach((cell, gx) => {
        if (cell !== '#') return;
        for (let dy = 0; dy < scale; dy++)
          for (let dx = 0; dx < scale; dx++) {
            const px = x + gx * scale + dx;
            const py = y0 + gy * scale + dy;
            if (px < png.width && py < png.height) png.data.set([255, 255, 255, 255], (py * png.width + px) * 4);
          }
      }),
    );
    x += 4 * scale;
  }
}

/** Nearest-neighbour copy of an RGB frame into a TILE × TILE cell. */
function drawFrame(png: PNG, rgb: Uint8Array, width: number, height: number, x0: number, y0: number): void {
  for (let y = 0; y < TILE; y++)
    for (let x = 0; x < TILE; x++) {
      const sx = Math.min(width - 1, Math.floor((x * width) / TILE));
      const sy = Math.min(height - 1, Math.floor((y * height) / TILE));
      const s = (sy * width + sx) * 3;
      png.data.set([rgb[s], rgb[s + 1], rgb[s + 2], 255], ((y0 + y) * png.width + x0 + x) * 4);
    }
}

/** Decodes the video in chunks again and keeps only the kept frames (a long video never sits decoded in memory). */
export async function writeContactSheet(path: string, video: string, selection: SelectionSummary, config: Pick<PipelineConfig, 'vision'>): Promise<void> {
  const stream = await openFrameStream(video, samplingOptionsSchema.parse(config.vision.sampling));
  const wanted = new Set(selection.frames.map((f) => f.frameIndex));
  const kept = new Map<number, Uint8Array>();
  let width = 0;
  let height = 0;
  let index = 0;
  for await (const chunk of stream.chunks(8)) {
    ({ width, height } = chunk);
    for (const rgb of chunk.frames) if (wanted.has(index++)) kept.set(index - 1, rgb);
  }
  const n = selection.frames.length;
  const png = new PNG({ width: n * (TILE + GAP) + GAP, height: TILE + CAPTION + 2 * GAP });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  selection.frames.forEach((frame, i) => {
    const x0 = GAP + i * (TILE + GAP);
    const rgb = kept.get(frame.frameIndex);
    if (rgb) drawFrame(png, rgb, width, height, x0, GAP);
    const bar = Math.round(frame.weight * TILE);
    for (let y = 0; y < 3; y++) for (let x = 0; x < bar; x++) png.data.set([80, 200, 120, 255], ((GAP + TILE + 1 + y) * png.width + x0 + x) * 4);
    drawText(png, `${frame.timestampSec.toFixed(1)}s w=${frame.weight.toFixed(2)}`, x0, GAP + TILE + 7, 2);
  });
  writeFileSync(path, PNG.sync.write(png));
}
