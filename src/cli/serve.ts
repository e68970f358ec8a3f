/**
 * `advml serve`: a web page to see adversarial examples happen, on the demo's
 * MNIST models, checkpoints, or the ImageNet ResNet50 when present.
 */
import { type ServeEvent, startServer } from '../serve/index.js';
import { type Command, UsageError, numberOption, parseOptions, positiveInt } from './command.js';

/** The `advml serve` command: see its help text and docs/serve.md. */
export const serve: Command = {
  name: 'serve',
  help: `Usage: advml serve [--port P] [--host ADDR] [--model NAME_OR_CHECKPOINT ...] [options]

Starts a web server with one page: pick or drop an image, one to three
models, a method (with its target class, steps and step size where it has
them), eps (pixel units) and the label source, and see the clean image, the
perturbation magnified and the adversarial image with the top-5 before and
after, for each model; and accuracy against eps on test images, for one or
two methods. The page opens on a digit and an eps where PGD fools the plain
model and not the fast-AT one, found at start-up by attacking the samples.
Attacks run in a worker thread; the page and its API are served from this
machine only (no external URLs).

Models (--model, repeatable; default: the three demo models, and resnet50
when its weights are installed):
  mnist-plain, mnist-adversarial, mnist-fast-at, demo (all three)
                    MNIST CNNs: plain, the paper's step l.l. training, fast
                    adversarial training at eps 48. Each is taken from
                    DEMO_DIR/ROLE.safetensors (plain, adversarial: what 'advml
                    demo' writes; fast-at) or the start-up cache; otherwise
                    trained at start-up on --train-images MNIST images (a few
                    seconds each) into a cache folder in the system's
                    temporary folder, and reused by later starts
  resnet50          the ImageNet ResNet50 (when available)
  FILE              a checkpoint written by advml

Options:
  --port P           TCP port (default 8000; 0 picks a free one)
  --host ADDR        interface to listen on (default 127.0.0.1: this machine only)
  --model M          a model, see above (repeatable)
  --demo-dir DIR     where 'advml demo' wrote its models (default runs/demo)
  --train-images N   MNIST images per model for the start-up training (default 10000)
  --cache-dir DIR    parent of the start-up training cache (default: $TMPDIR/advml-serve)
  --workers N        worker threads running attacks (default 1)
  --max-pending N    requests admitted at once, running plus queued (default 4);
                     beyond it the server answers 503
  --timeout S        seconds one attack or curve may take (default 60); 504 past it
  --max-upload-mb N  largest upload in MiB (default 8)
  --max-megapixels N largest image in megapixels (default 25)
  --quiet            print only the URL and errors
  -h, --help         show this help`,
  async run(argv) {
    const { values: o } = parseOptions('serve', argv, {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      model: { type: 'string', multiple: true },
      'demo-dir': { type: 'string' },
      'train-images': { type: 'string' },
      'cache-dir': { type: 'string' },
      workers: { type: 'string' },
      'max-pending': { type: 'string' },
      timeout: { type: 'string' },
      'max-upload-mb': { type: 'string' },
      'max-megapixels': { type: 'string' },
      quiet: { type: 'boolean' },
    });
    const port = o.port === undefined ? 8000 : numberOption('serve', 'port', o.port, { integer: true, min: 0, max: 65535 });
    const positive = (name: string, value: string | undefined, fallback: number): number =>
      value === undefined ? fallback : numberOption('serve', name, value, { greaterThan: 0 });
    const quiet = o.quiet ?? false;
    const print = (e: ServeEvent): void => {
      switch (e.type) {
        case 'listening':
          console.log(`advml serve: listening on ${e.url}/`);
          break;
        case 'model':
          if (!quiet || e.status === 'failed') {
            (e.status === 'failed' ? console.error : console.log)(`model ${e.name}: ${e.status}${e.message ? ` (${e.message})` : ''}`);
          }
          break;
        case 'progress':
          if (!quiet && (e.done === e.total || e.done % 50 === 0)) console.log(`  training ${e.name}: step ${e.done}/${e.total}`);
          break;
        case 'request':
          if (!quiet) console.log(`${e.method} ${e.path} ${e.status} ${e.ms.toFixed(0)} ms`);
          break;
        case 'story':
          if (!quiet) console.log(e.story.status === 'found' ? `opening view: ${e.story.story.method} at eps ${e.story.story.eps} on sample ${e.story.story.sample} (${e.story.story.models.join(' fooled, ')} holds)` : `opening view: none (${e.story.status === 'none' ? e.story.reason : 'pending'})`);
          break;
        case 'error':
          console.error(`advml serve: ${e.message}`);
          break;
      }
    };
    const server = await startServer({
      port,
      host: o.host,
      models: o.model,
      demoDir: o['demo-dir'],
      cacheDir: o['cache-dir'],
      trainImages: positiveInt('serve', 'train-images', o['train-images'], 10_000),
      workers: positiveInt('serve', 'workers', o.workers, 1),
      maxPending: positiveInt('serve', 'max-pending', o['max-pending'], 4),
      timeoutMs: positive('timeout', o.timeout, 60) * 1000,
      maxUploadBytes: Math.round(positive('max-upload-mb', o['max-upload-mb'], 8) * 1024 * 1024),
      maxPixels: Math.round(positive('max-megapixels', o['max-megapixels'], 25) * 1e6),
      onEvent: print,
    }).catch((e: unknown) => {
      const message = (e as Error).message;
      if (/--model/.test(message)) throw new UsageError(`advml serve: ${message}`);
      throw e;
    });
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        console.log('advml serve: stopping');
        void server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};
