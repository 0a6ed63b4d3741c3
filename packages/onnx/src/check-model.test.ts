import { describe, expect, it } from 'vitest';
import { checkModel } from './check-model.js';
import { GraphBuilder } from './graph-builder.js';
import { decodeModel, encodeModel, toModelProto, type ModelProto } from './serialize.js';

/** A valid two-node model as a plain ModelProto, for each test to break one way. */
function validModel(): ModelProto {
  const g = new GraphBuilder('ok');
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.initializer('w', new Float32Array(8), [4, 2]);
  g.output('y', 'float32', ['batch', 2], g.op.sigmoid(g.op.matMul(x, w)));
  return toModelProto(g);
}

const fails = (mutate: (m: ModelProto) => void, message: RegExp) => {
  const m = validModel();
  mutate(m);
  expect(() => checkModel(m)).toThrowError(message);
};

describe('checkModel', () => {
  it('accepts a built model, also after an encode/decode round trip', () => {
    expect(() => checkModel(validModel())).not.toThrow();
    const g = new GraphBuilder('ok');
    g.output('y', 'float32', ['n'], g.op.neg(g.input('x', 'float32', ['n'])));
    expect(() => checkModel(encodeModel(g))).not.toThrow();
    expect(decodeModel(encodeModel(g)).graph?.input?.[0].type?.tensorType?.shape?.dim?.[0].dimParam).toBe('n');
  });

  it('rejects a model without the default opset', () => {
    fails((m) => (m.opsetImport = []), /no opset import for the default ai.onnx domain/);
  });

  it('rejects a node whose domain is not imported', () => {
    fails((m) => (m.graph!.node![1].domain = 'com.microsoft'), /node Sigmoid_0 \(Sigmoid\): domain "com.microsoft" has no opset import/);
  });

  it('rejects nodes out of topological order, naming the node and the input', () => {
    fails((m) => m.graph!.node!.reverse(), /node Sigmoid_0 \(Sigmoid\): input "MatMul_out_0" is not produced by an initializer, a graph input or an earlier node/);
  });

  it('rejects a value defined twice', () => {
    fails((m) => (m.graph!.node![1].output = ['MatMul_out_0']), /output of node Sigmoid_0 \(Sigmoid\) "MatMul_out_0": name already defined/);
  });

  it('rejects an untyped or unshaped graph input and an unsized dimension', () => {
    fails((m) => (m.graph!.input![0].type = {}), /graph input "x": no tensor type/);
    fails((m) => delete m.graph!.input![0].type!.tensorType!.shape, /graph input "x": no shape/);
    fails((m) => (m.graph!.output![0].type!.tensorType!.shape!.dim![0] = {}), /graph output "y": dimension 0 has neither a size nor a symbolic name/);
  });

  it('rejects an initializer that shadows a graph input, or whose bytes do not fit its dims', () => {
    fails((m) => m.graph!.initializer!.push({ name: 'x', dataType: 1, dims: [4], rawData: new Uint8Array(16) }), /initializer "x" shadows the graph input/);
    fails((m) => (m.graph!.initializer![0].dims = [4, 3]), /initializer "w": raw_data has 32 bytes, dims \[4, 3\] need 48/);
  });

  it('rejects a graph output no node produces', () => {
    fails((m) => (m.graph!.output![0].name = 'z'), /graph output "z" is not produced/);
  });
});
