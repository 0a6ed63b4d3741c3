/**
 * Rasterising a scene into RGB frames: one sample per pixel centre, no anti-aliasing, so every pixel is exactly the
 * background or exactly one palette colour and tests can compare bytes.
 */
import { BOUNDING_RADIUS_FACTOR, centreAt, frameTimeSec, isVisible, type Scene, type SceneObject } from './scene.js';
import { PALETTE, type ShapeName } from './vocabulary.js';

/**
 * Whether the offset (dx, dy) from a shape's centre lies inside it. All shapes have roughly the area of the circle
 * of radius r, so size does not give the shape away.
 */
export function shapeContains(shape: ShapeName, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= 0.8 * r && Math.abs(dy) <= 0.8 * r;
    case 'diamond':
      return Math.abs(dx) + Math.abs(dy) <= 1.15 * r;
    case 'cross': {
      const ax = Math.abs(dx);
      const ay = Math.abs(dy);
      return (ax <= r / 3 && ay <= r) || (ay <= r / 3 && ax <= r);
    }
    case 'triangle':
      // Apex at (0, -r), base from (-r, 0.75r) to (r, 0.75r): the half-width grows linearly from the apex.
      return dy >= -r && dy <= 0.75 * r && Math.abs(dx) <= (dy + r) / 1.75;
  }
}

/**
 * Calls `visit(x, y)` for each pixel the object covers at `timeSec` (nothing when it is not visible): the one
 * rasterisation of a shape, which {@link renderFrame} paints and the frame labels count, so the two cannot disagree.
 */
export function forEachObjectPixel(scene: Pick<Scene, 'size'>, object: SceneObject, timeSec: number, visit: (x: number, y: number) => void): void {
  if (!isVisible(object, timeSec)) return;
  const { size } = scene;
  const c = centreAt(object, timeSec);
  const reach = Math.ceil(BOUNDING_RADIUS_FACTOR * object.radiusPx) + 1;
  const x0 = Math.max(0, Math.floor(c.x - reach));
  const x1 = Math.min(size - 1, Math.ceil(c.x + reach));
  const y0 = Math.max(0, Math.floor(c.y - reach));
  const y1 = Math.min(size - 1, Math.ceil(c.y + reach));
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) if (shapeContains(object.shape, x + 0.5 - c.x, y + 0.5 - c.y, object.radiusPx)) visit(x, y);
}

/** Frame `frameIndex` of the scene as packed RGB bytes, row-major. [size, size, 3] uint8 */
export function renderFrame(scene: Scene, frameIndex: number): Uint8Array {
  const { size } = scene;
  const out = new Uint8Array(size * size * 3);
  const [br, bg, bb] = scene.background;
  for (let i = 0; i < out.length; i += 3) {
    out[i] = br;
    out[i + 1] = bg;
    out[i + 2] = bb;
  }
  const t = frameTimeSec(scene, frameIndex);
  for (const object of scene.objects) {
    const [r, g, b] = PALETTE[object.colour];
    forEachObjectPixel(scene, object, t, (x, y) => {
      const p = (y * size + x) * 3;
      out[p] = r;
      out[p + 1] = g;
      out[p + 2] = b;
    });
  }
  return out;
}

/** Every frame of the scene, in order. For long videos prefer {@link renderFrame} one frame at a time. */
export function renderVideoFrames(scene: Scene): Uint8Array[] {
  return Array.from({ length: scene.numFrames }, (_, i) => renderFrame(scene, i));
}
