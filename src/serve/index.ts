/** `advml serve`: a web page and a JSON API to watch adversarial examples happen. */
export { startServer, CURVE_EPS, SLIDER_MAX_EPS, type ServeOptions, type ServeEvent, type RunningServer, type ModelState, type ModelStatus } from './server.js';
export { WorkerPool, BusyError, TimeoutError, JobError, runInOwnWorker, type PoolOptions, type RunOptions } from './pool.js';
export { planModels, resnet50Available, defaultCacheDir, DEMO_MODELS, RESNET50, type ModelPlan, type PlannedModel, type DemoPlan, type TestSet } from './models.js';
export { loadSamples, sampleInfo, SAMPLE_PHOTOS, SKIMAGE_DATA, type Sample, type SampleInfo, type SampleKind } from './samples.js';
export { probeImage, prepareImage, IMAGE_FORMATS, type ImageLimits } from './images.js';
export { StaticFiles, defaultWebRoot, type StaticFile } from './static.js';
export { HttpError } from './http.js';
export type * from './protocol.js';
