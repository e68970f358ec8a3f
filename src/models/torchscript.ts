/**
 * TorchScript models (`torch.jit.save` of a scripted or traced module) as
 * advml Modules. libtorch's JIT runs the graph; its parameters and buffers are
 * registered here under PyTorch's dotted names (as a tree of child modules,
 * so state dicts, safetensors, optimizers, data-parallel broadcasts and the
 * trainer see them as they see a zoo model's), and they are the JIT module's
 * own tensors: a step of advml's optimizer is a step of the TorchScript model,
 * and `saveTorchScript` writes it back with the trained weights.
 */
import { ScriptModule, type Tensor, manualSeed, randint, scope, stateStamp } from '../engine/index.js';
import { checkZipArchive, readRegularFileSync, writeFileAtomicSync } from '../io/index.js';
import { Module, parametersFrozen } from '../nn/index.js';

/** One level of the module tree, holding what the JIT module has at that path. */
class ScriptScope extends Module {
  forward(_x: Tensor): Tensor {
    throw new Error('a TorchScript submodule runs only as part of its whole module');
  }

  child(name: string): ScriptScope {
    const existing = this.namedChildren().find(([n]) => n === name);
    return (existing?.[1] as ScriptScope | undefined) ?? this.registerModule(name, new ScriptScope());
  }

  add(kind: 'parameter' | 'buffer', name: string, t: Tensor): void {
    if (kind === 'parameter') this.registerParameter(name, t);
    else this.registerBuffer(name, t);
  }
}

/**
 * Frozen passes on unchanged weights before a frozen copy is made: freezing
 * costs about as much as a few passes, so a model whose weights change every
 * step or two (adversarial examples inside training) keeps running unfrozen,
 * while evaluation and iterative attacks get the frozen copy at once.
 */
const FREEZE_AFTER = 3;

/** A TorchScript model; `forward` runs the JIT module in this module's training mode. */
export class TorchScriptModule extends ScriptScope {
  private readonly script: ScriptModule;
  private scriptTraining: boolean | null = null;
  private frozen: { stamp: string; script: ScriptModule } | null = null;
  private pending = { stamp: '', calls: 0 };

  /** Loads the module from the bytes of a .pt file; `source` names it in errors. */
  constructor(bytes: Uint8Array, source = 'TorchScript module') {
    super();
    try {
      this.script = new ScriptModule(bytes);
    } catch (e) {
      const why = (e as Error).message.replace(/^jitLoad: /, '').split('\n')[0];
      throw new Error(`${source}: not a loadable TorchScript file (torch.jit.save format): ${why}`);
    }
    if (!this.script.methods().includes('forward')) {
      this.script.free();
      throw new Error(`${source}: the TorchScript module has no forward method`);
    }
    for (const [kind, list] of [['parameter', this.script.namedParameters()], ['buffer', this.script.namedBuffers()]] as const) {
      for (const [name, t] of list) {
        const path = name.split('.');
        const leaf = path.pop() as string;
        let at: ScriptScope = this;
        for (const part of path) at = at.child(part);
        at.add(kind, leaf, t);
      }
    }
  }

  override forward(x: Tensor): Tensor {
    if (this.scriptTraining !== this.training) {
      this.script.train(this.training);
      this.scriptTraining = this.training;
    }
    // The JIT's dropout draws from libtorch's global stream, which takes no
    // generator: in a run with its own dropout stream, that stream seeds it
    // before every training pass, so the masks follow the run's seed and rank.
    if (!this.training && parametersFrozen()) {
      const frozen = this.frozenScript();
      if (frozen) return frozen.forward(x);
    }
    if (this.training && this.dropoutGenerator) manualSeed(scope(() => randint(0, 2 ** 31, [1], { generator: this.dropoutGenerator }).item()));
    return this.script.forward(x);
  }

  /**
   * The frozen copy (torch.jit.freeze: batch norm folded into convolutions,
   * weights as constants) for the current weights, made once they have stayed
   * the same for FREEZE_AFTER frozen passes; null until then. Any in-place
   * write to a weight or buffer (an optimizer step, loadStateDict) changes
   * the stamp and retires the copy.
   */
  private frozenScript(): ScriptModule | null {
    const stamp = stateStamp([...this.stateDict().values()]).join(',');
    if (this.frozen?.stamp === stamp) return this.frozen.script;
    if (this.pending.stamp !== stamp) this.pending = { stamp, calls: 0 };
    if (++this.pending.calls < FREEZE_AFTER) return null;
    this.releaseCaches();
    this.frozen = { stamp, script: this.script.freeze() };
    return this.frozen.script;
  }

  protected override releaseCaches(): void {
    this.frozen?.script.free();
    this.frozen = null;
  }

  /** The model with its current weights, in torch.jit.save's format. */
  serialize(): Uint8Array {
    return this.script.serialize();
  }

  override dispose(): void {
    super.dispose();
    this.script.free();
  }
}

/** Loads a .pt file (its archive checked entry by entry first) as a TorchScript model in training mode. */
export function loadTorchScript(path: string): TorchScriptModule {
  const bytes = readRegularFileSync(path, { what: 'TorchScript model' });
  checkZipArchive(bytes, path);
  return new TorchScriptModule(bytes, path);
}

/** Writes a TorchScript model with its current weights to `path` (atomically), loadable by torch.jit.load. */
export function saveTorchScript(module: TorchScriptModule, path: string): void {
  writeFileAtomicSync(path, module.serialize());
}
