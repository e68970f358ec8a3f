/**
 * A TorchScript module held by libtorch's JIT: the engine-level handle that
 * src/models/torchscript.ts builds an advml Module around. Its parameters and
 * buffers come back as Tensors that share storage and autograd identity with
 * the JIT module's own, so an optimizer step on them is a step of the module.
 */
import { native, type Handle, type NativeArg } from './native.js';
import { Tensor } from './tensor.js';

/** An opaque reference to a loaded TorchScript module. */
interface ScriptHandle {
  readonly __scriptHandle: unique symbol;
}

export class ScriptModule {
  private handle: ScriptHandle | null;

  /** Loads a module from the bytes of a `torch.jit.save` file (errors start with 'jitLoad:'). */
  constructor(bytes: Uint8Array | ScriptHandle) {
    this.handle = bytes instanceof Uint8Array ? (native.jitLoad(bytes) as ScriptHandle) : bytes;
  }

  /**
   * A frozen copy for inference (torch.jit.freeze: weights as constants, batch
   * norm folded into convolutions, dropout gone); this module must be in eval mode.
   */
  freeze(): ScriptModule {
    return new ScriptModule(native.jitFreeze(this.h) as ScriptHandle);
  }

  private get h(): NativeArg {
    if (!this.handle) throw new Error('ScriptModule: the module has been freed');
    return this.handle as unknown as NativeArg;
  }

  /** [name, tensor] for every parameter, with PyTorch's dotted names, in PyTorch's order. */
  namedParameters(): [string, Tensor][] {
    return (native.jitParameters(this.h) as [string, Handle][]).map(([n, t]) => [n, new Tensor(t)]);
  }

  /** [name, tensor] for every buffer (batch-norm statistics), in PyTorch's order. */
  namedBuffers(): [string, Tensor][] {
    return (native.jitBuffers(this.h) as [string, Handle][]).map(([n, t]) => [n, new Tensor(t)]);
  }

  /** Names of the module's methods. */
  methods(): string[] {
    return native.jitMethods(this.h) as string[];
  }

  /** Sets training mode on the module and every submodule (batch norm, dropout). */
  train(on: boolean): void {
    native.jitTrain(this.h, on);
  }

  /** forward(x); a tuple output gives its first tensor. */
  forward(x: Tensor): Tensor {
    return new Tensor(native.jitForward(this.h, x.handle) as Handle);
  }

  /** The module with its current weights, in torch.jit.save's format. */
  serialize(): Uint8Array {
    return native.jitSave(this.h) as Uint8Array;
  }

  /** Frees the module. */
  free(): void {
    if (this.handle) native.jitFree(this.handle as unknown as NativeArg);
    this.handle = null;
  }
}
