// How much a model's answers depend on the video: the stage-2 loss on training samples with each sample's own frame
// features, with another video's, and with all-zero features. Equal losses mean the LLM ignores the visual tokens.
// Usage: node bench/visual-reliance.mjs <modelDir> <synthDir> [samples=64] [annotations=<synthDir>/train.json]
// (pass a recipe's `<work>/captions.json` to measure how much the captions depend on the video).
import { join } from 'node:path';
import { Rng, initBackend, tf } from '@bvllm/core';
import { collateBvllm, loadModel, precomputeFeatures, stageDataset } from '@bvllm/pipeline';
import { stage2Config } from '@bvllm/trainer';

const [modelDir, dataDir, count = '64', annotations = join(dataDir ?? '', 'train.json')] = process.argv.slice(2);
if (!modelDir || !dataDir) throw new Error('usage: node bench/visual-reliance.mjs <modelDir> <synthDir> [samples]');
await initBackend();
const model = loadModel(modelDir);
const config = stage2Config.parse({ stage: 'stage2', data: { annotations, folder: dataDir }, numFrames: model.config.vision.trainFrames });
const dataset = stageDataset(model, config);
const samples = Array.from({ length: Math.min(Number(count), dataset.length) }, (_, i) => dataset.get(i));
const features = await precomputeFeatures(model, { length: samples.length, get: (i) => samples[i] }, config.numFrames);
const batch = collateBvllm(model, samples, features);
const loss = (b) => tf.tidy(() => model.loss(b, { training: false, rng: Rng.fromSeed(0) }).dataSync()[0]);
const own = loss(batch);
// Samples come in pairs (MCQA and open form of one video): shift by two to pair each question with another video.
const other = loss(batch.map((s, i) => ({ ...s, features: batch[(i + 2) % batch.length].features })));
const zeros = batch.map((s) => ({ ...s, features: { ...s.features, cls: tf.zerosLike(s.features.cls), patches: tf.zerosLike(s.features.patches) } }));
const zero = loss(zeros);
console.log(`loss with own video ${own.toFixed(5)}, another video ${other.toFixed(5)}, zero features ${zero.toFixed(5)} (${samples.length} samples)`);
console.log(`reliance: another video raises the loss by ${(((other - own) / own) * 100).toFixed(2)}%`);
tf.dispose(zeros.flatMap((s) => [s.features.cls, s.features.patches]));
model.dispose();
