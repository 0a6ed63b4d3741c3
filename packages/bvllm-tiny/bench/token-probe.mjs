// Is a frame's content in its tokens? For the frames the visual path keeps (1 fps, "Describe the video."), a linear
// probe learns to name the colour–shape pairs each frame shows (labels from `scenes.json`) from four places along
// the path: the tower's [CLS], its patch tokens, the spatial Q-Former's R tokens and the projected visual tokens the
// LLM reads. Trained on training videos' frames, scored on test videos' frames (micro-F1 over pairs, and frames with
// every pair right). High F1 at the Q-Former and projector with a poor `describe` score: the facts reach the LLM and
// it does not read them. Low F1: they are lost before it.
// Usage: node bench/token-probe.mjs <modelDir> <synthDir> [trainVideos=300] [testVideos=100]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, initBackend, tf } from '@bvllm/core';
import { disposeFeatures, disposeVisualPath, loadModel, videoFeatures } from '@bvllm/pipeline';
import { PAIR_CLASSES, frameLabels } from '@bvllm/synth';

const [modelDir, dataDir, trainCount = '300', testCount = '100'] = process.argv.slice(2);
if (!modelDir || !dataDir) throw new Error('usage: node bench/token-probe.mjs <modelDir> <synthDir> [trainVideos] [testVideos]');
await initBackend();
const model = loadModel(modelDir);
const scenes = JSON.parse(readFileSync(join(dataDir, 'scenes.json'), 'utf8'));
const grid = Math.sqrt(model.vision.numPatches);
const PLACES = ['tower [CLS]', 'tower patches', 'spatial Q-Former tokens', 'projected visual tokens'];

/** Per kept frame: the four feature vectors and the frame's pair labels. */
async function keptFrames(split, count) {
  const rows = { features: PLACES.map(() => []), labels: [] };
  const question = model.tokenizeQuestion('Describe the video.');
  for (const record of scenes.filter((r) => r.video.startsWith(`videos/${split}-`)).slice(0, count)) {
    const features = await videoFeatures(model, join(dataDir, record.video));
    const path = model.visualPath(features, question, { training: false, rng: Rng.fromSeed(0) });
    const spatial = path.spatialTokens.arraySync();
    const visual = path.visualEmbeds.arraySync();
    const perFrame = spatial[0].length;
    const cls = features.cls.arraySync();
    const patches = features.patches.arraySync();
    path.merged.groups.forEach((group, k) => {
      const frame = group[0];
      rows.features[0].push(cls[frame]);
      rows.features[1].push(patches[frame].flat());
      rows.features[2].push(spatial[k].flat());
      rows.features[3].push(visual.slice(k * perFrame, (k + 1) * perFrame).flat());
      rows.labels.push([...frameLabels(record.scene, Math.round(features.timestampsSec[frame] * record.scene.fps), grid).present]);
    });
    disposeVisualPath(path);
    disposeFeatures(features);
  }
  tf.dispose([question.inputIds, question.attentionMask]);
  return rows;
}

/** Micro-F1 over pairs and the share of frames with every pair right, of 0/1 `predicted` against `truth` `[F, C]`. */
function agreement(predicted, truth) {
  const tp = tf.sum(tf.mul(predicted, truth)).dataSync()[0];
  const f1 = (2 * tp) / (tf.sum(predicted).dataSync()[0] + tf.sum(truth).dataSync()[0]);
  const exact = tf.mean(tf.cast(tf.all(tf.equal(predicted, truth), 1), 'float32')).dataSync()[0];
  return { f1, exact };
}

/** Logistic-regression probe on standardised features; returns its agreement on the training and the test frames. */
function probe(trainX, trainY, testX, testY) {
  return tf.tidy(() => {
    const x = tf.tensor2d(trainX);
    const mean = tf.mean(x, 0);
    const std = tf.add(tf.sqrt(tf.mean(tf.square(tf.sub(x, mean)), 0)), 1e-6);
    const norm = (t) => tf.div(tf.sub(t, mean), std);
    const xs = norm(x);
    const ys = tf.tensor2d(trainY);
    const w = tf.variable(tf.zeros([xs.shape[1], PAIR_CLASSES]));
    const b = tf.variable(tf.zeros([PAIR_CLASSES]));
    const optimizer = tf.train.adam(1e-2);
    for (let step = 0; step < 1000; step++)
      optimizer.minimize(() => tf.add(tf.losses.sigmoidCrossEntropy(ys, tf.add(tf.matMul(xs, w), b)), tf.mul(1e-4, tf.sum(tf.square(w)))));
    const predict = (features) => tf.cast(tf.greater(tf.add(tf.matMul(features, w), b), 0), 'float32');
    const result = { train: agreement(predict(xs), ys), test: agreement(predict(norm(tf.tensor2d(testX))), tf.tensor2d(testY)) };
    optimizer.dispose();
    w.dispose();
    b.dispose();
    return result;
  });
}

const train = await keptFrames('train', Number(trainCount));
const test = await keptFrames('test', Number(testCount));
const pct = (x) => (100 * x).toFixed(1);
console.log(`| probe reads pairs from | micro-F1 train / test | frames all right, train / test |`);
console.log(`|---|---|---|`);
PLACES.forEach((place, i) => {
  const { train: fit, test: held } = probe(train.features[i], train.labels, test.features[i], test.labels);
  console.log(`| ${place} | ${pct(fit.f1)} / ${pct(held.f1)} | ${pct(fit.exact)} / ${pct(held.exact)} |`);
});
const prior = agreement(tf.zeros([test.labels.length, PAIR_CLASSES]), tf.tensor2d(test.labels));
console.log(`| (nothing: predict no pair) | — / ${pct(prior.f1)} | — / ${pct(prior.exact)} |`);
console.log(`\n${train.labels.length} training frames, ${test.labels.length} test frames (kept by the visual path); ${modelDir}`);
model.dispose();
