import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph-builder.js';
import { linear } from './layers.js';
import { writeModel } from './serialize.js';
import { lazyWeight } from './weights.js';

/** 64 MiB of float32: one [4096, 4096] linear weight. */
const SIDE = 4096;

/** A chain of `count` lazy [SIDE, SIDE] linears whose values are made only when written (issue #18 memory test). */
function chain(count: number): GraphBuilder {
  const g = new GraphBuilder('chain');
  let x = g.input('x', 'float32', ['n', SIDE]);
  for (let i = 0; i < count; i++) x = linear(g, x, `layer${i}`, lazyWeight([SIDE, SIDE], () => new Float32Array(SIDE * SIDE).fill(i / count)));
  g.output('y', 'float32', ['n', SIDE], x);
  return g;
}

describe('writeModel memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-mem-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // maxRSS is this process's high-water mark (vitest's forks pool runs each test file in its own process), so the
  // small export runs first: if the large one held its weights, its 1 GiB of them would raise the mark past it.
  it('peak RSS stays flat from 4 to 16 weights of 64 MiB: lazy weights are loaded, written and dropped one at a time', () => {
    const peaks: number[] = [];
    for (const count of [4, 16]) {
      const written = writeModel(chain(count), join(dir, `chain${count}.onnx`));
      expect(statSync(written.dataPath!).size).toBeGreaterThanOrEqual(count * SIDE * SIDE * 4);
      peaks.push(process.resourceUsage().maxRSS * 1024);
      rmSync(written.dataPath!);
    }
    const growth = peaks[1] - peaks[0];
    expect(growth, `peak RSS ${peaks.map((p) => `${(p / 2 ** 20).toFixed(0)} MiB`).join(' → ')}`).toBeLessThan(300 * 2 ** 20);
  });
});
