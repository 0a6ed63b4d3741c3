import { InvalidArgumentError as FlagError } from 'commander';

/** Commander parsers for numeric flags; a bad value becomes commander's one-line "option … argument invalid". */
function parseNumber(predicate: (n: number) => boolean, expected: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !predicate(n)) throw new FlagError(`expected ${expected}`);
    return n;
  };
}

export const positiveInt = parseNumber((n) => Number.isSafeInteger(n) && n > 0, 'a positive integer');
export const nonNegativeInt = parseNumber((n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
export const finiteNumber = parseNumber(Number.isFinite, 'a number');
export const positiveNumber = parseNumber((n) => Number.isFinite(n) && n > 0, 'a positive number');
export const nonNegativeNumber = parseNumber((n) => Number.isFinite(n) && n >= 0, 'a non-negative number');

/** `--runtime`: the engine every inference module (tower, both Q-Former stages, LLM) runs on. */
export function runtimeName(value: string): 'tfjs' | 'onnx' {
  if (value !== 'tfjs' && value !== 'onnx') throw new FlagError('expected tfjs or onnx');
  return value;
}

export const RUNTIME_FLAG_HELP = 'inference engine of every module: onnx (onnxruntime-node, default unless the model config says otherwise) or tfjs';
