// Runs in a scratch project where @bvllm/core was installed from its tarball.
import assert from 'node:assert/strict';
import { initBackend, SafetensorsFile, serializeSafetensors, tf } from '@bvllm/core';

const resolved = import.meta.resolve('@bvllm/core');
assert.ok(resolved.startsWith(new URL(`file://${process.cwd()}/node_modules/`).href), `@bvllm/core resolved to ${resolved}`);

const info = await initBackend();
const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]));
assert.deepEqual(Array.from(product.dataSync()), [19, 22, 43, 50]);

const bytes = serializeSafetensors(new Map([['w', tf.tensor1d([1.5, -2, 65504])], ['ids', tf.tensor1d([7, -1], 'int32')]]), { floatDtype: 'F16' });
const file = SafetensorsFile.fromBytes(bytes);
assert.deepEqual(Array.from(file.readValues('w')), [1.5, -2, 65504]);
assert.deepEqual(Array.from(file.readTensor('ids').dataSync()), [7, -1]);

// Training needs tfjs's gradient registrations, which tfjs-core's CommonJS build lacks.
const grad = tf.grad((x) => tf.sum(tf.square(x)))(tf.tensor1d([1, 2]));
assert.deepEqual(Array.from(grad.dataSync()), [2, 4]);

console.log(JSON.stringify({ backend: info.choice, resolved }));
