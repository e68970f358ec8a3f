/** `advml serve`: a web page and a JSON API to watch adversarial examples happen. */
export { startServer, type ServeOptions, type ServeEvent, type RunningServer } from './server.js';
export { CURVE_EPS, SLIDER_MAX_EPS } from './routes.js';
export { MAX_MODELS, MAX_CURVE_METHODS } from './requests.js';
export { STORY_EPS, STORY_METHOD, type StoryState } from './story.js';
export { ModelRegistry, type ModelEvent, type ReadyModel } from './model-registry.js';
export { WorkerPool, BusyError, TimeoutError, JobError, runInOwnWorker, type PoolOptions, type RunOptions } from './pool.js';
export { planModels, resnet50Available, defaultCacheDir, DEMO_MODELS, DEMO_ROLES, RESNET50, type ModelPlan, type PlannedModel, type DemoTraining } from './models.js';
export { loadSamples, sampleInfo, SAMPLE_PHOTOS, SKIMAGE_DATA, type Sample, type SampleInfo, type SampleKind } from './samples.js';
export { probeImage, prepareImage, IMAGE_FORMATS, type ImageLimits } from './images.js';
export { StaticFiles, defaultWebRoot, type StaticFile } from './static.js';
export { HttpError } from './http.js';
export type * from './api-types.js';
export type { ModelSource, ModelRef, PreparedImage, AttackTarget, AttackJob, ClassProbabilities, CurveJob, CurveResult, InfoJob, TrainJob, DemoRole, Job, JobResults, JobMessage, WorkerMessage } from './protocol.js';
