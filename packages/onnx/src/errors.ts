import { BvllmError } from '@bvllm/core';

/**
 * A graph that is not a valid ONNX model, or a builder call that would make one invalid. The message names the
 * node or tensor and says what was expected.
 */
export class OnnxGraphError extends BvllmError {
  constructor(message: string) {
    super('ONNX_GRAPH', message);
  }
}

/** onnxruntime refused to load or run a model; `file` names the model (a path, or `<bytes>` for an in-memory one). */
export class OrtSessionError extends BvllmError {
  constructor(
    readonly file: string,
    action: string,
    cause: unknown,
  ) {
    super('ONNX_RUNTIME', `${file}: onnxruntime failed to ${action}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
