/**
 * TensorFlow.js itself (the pure-JS @tensorflow/tfjs devDependency, cpu
 * backend) as the independent reference of the TensorFlow.js tests: loading
 * model.json directories the way tf.loadLayersModel does over HTTP, and
 * turning models built in TensorFlow.js into model.json directories.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';

/** The @tensorflow/tfjs module. */
export type Tfjs = typeof TF;

let loaded: Promise<Tfjs | null> | undefined;

/** Why TensorFlow.js tests skip, or false when @tensorflow/tfjs is installed. */
export function tfjsMissing(): string | false {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs');
    return false;
  } catch {
    return '@tensorflow/tfjs (a devDependency) is not installed: npm install';
  }
}

/** Loads TensorFlow.js on its cpu backend, silencing its banner about tfjs-node. */
export function loadTfjs(): Promise<Tfjs> {
  loaded ??= (async () => {
    const warn = console.warn;
    const log = console.log;
    console.warn = () => {};
    console.log = () => {};
    try {
      const tf = createRequire(import.meta.url)('@tensorflow/tfjs') as Tfjs;
      await tf.setBackend('cpu');
      await tf.ready();
      tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
      return tf;
    } finally {
      console.warn = warn;
      console.log = log;
    }
  })();
  return loaded.then((tf) => {
    if (!tf) throw new Error('@tensorflow/tfjs failed to load');
    return tf;
  });
}

/** Reads a model.json directory as tf.loadLayersModel's HTTP loader would (shards concatenated per manifest). */
export async function tfjsLoadDir(tf: Tfjs, dir: string): Promise<TF.LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: TF.io.WeightsManifestEntry[] }[];
  };
  const parts = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p))));
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData }),
  );
}

/**
 * Saves a TensorFlow.js model into `dir` as model.json plus shards of at most
 * `shardBytes` (split the way tfjs' converter splits them).
 */
export async function tfjsSaveDir(model: TF.LayersModel, dir: string, shardBytes = 4 << 20): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save({
    save: async (a: TF.io.ModelArtifacts) => {
      const data = new Uint8Array(a.weightData as ArrayBuffer);
      const n = Math.max(1, Math.ceil(data.byteLength / shardBytes));
      const paths: string[] = [];
      for (let i = 0; i < n; i++) {
        const p = `group1-shard${i + 1}of${n}.bin`;
        writeFileSync(join(dir, p), data.subarray(i * shardBytes, (i + 1) * shardBytes));
        paths.push(p);
      }
      const json = {
        format: a.format ?? 'layers-model',
        generatedBy: a.generatedBy,
        convertedBy: a.convertedBy ?? null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths, weights: a.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
}
