/**
 * The closed answer vocabulary. Every answer the benchmark can ask for is one of these words, a count or an option
 * letter, so a tiny LLM with a small tokenizer can learn them; the names are also the words the questions use.
 */

/** Shape names, in the order the config lists them. */
export const SHAPES = ['circle', 'square', 'triangle', 'cross', 'diamond'] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Colour names. */
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'white'] as const;
export type ColourName = (typeof COLOURS)[number];

/**
 * sRGB of each colour. Saturated and far apart in both luma and chroma, because yuv420p halves the chroma resolution
 * and H.264 quantises it; each stays recognisable in the middle of a shape after a round trip through the encoder.
 */
export const PALETTE: Readonly<Record<ColourName, readonly [number, number, number]>> = {
  red: [230, 40, 40],
  green: [40, 200, 60],
  blue: [50, 90, 240],
  yellow: [245, 225, 40],
  purple: [165, 60, 210],
  white: [245, 245, 245],
};

/** Directions of motion in image coordinates: `up` is towards row 0. */
export const DIRECTIONS = ['left', 'right', 'up', 'down'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** Counting answers: how many shapes of one colour appear. */
export const COUNTS = ['1', '2', '3', '4'] as const;

/** MCQA option letters; a question has at most four options. */
export const OPTION_LETTERS = ['A', 'B', 'C', 'D'] as const;
