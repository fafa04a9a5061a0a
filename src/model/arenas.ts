// Flat storage for parameters and everything shaped like them (gradients, fp32 master weights,
// AdamW moments): one buffer per decay group, every parameter a view into it. Whole-model work
// (zeroing the gradients, the global norm, AdamW, all-reduce, broadcast) is then a few calls on
// large buffers instead of one per tensor, and every role shares the same layout, so the element i
// of the grad arena belongs to the element i of the weight arena.
import { Tensor, keep, ops, type DType, type Device } from '../tensor/index.js';

/** Norm weights get no weight decay (as in Hugging Face's Trainer), so they live in their own arena. */
export type DecayGroup = 'decay' | 'no_decay';

export interface ArenaEntry {
  name: string;
  shape: readonly number[];
  /** First element of the parameter in its group's arena. */
  offset: number;
  numel: number;
}

export interface ArenaGroupLayout {
  group: DecayGroup;
  entries: ArenaEntry[];
  /** Elements of the arena, padding included. */
  numel: number;
}

// Each view starts on a multiple of 32 elements (64 bytes in bf16, the allocator's alignment), so
// the kernels see parameters aligned exactly as separately allocated ones were. Padding is zero in
// every role and stays zero: its gradient is 0, so AdamW leaves its weight and moments at 0.
const ALIGN = 32;

/** The arena layout of named shapes, groups in the order decay, no-decay; names keep their order within a group. */
export class ArenaLayout {
  readonly groups: ArenaGroupLayout[];
  /** Every parameter's group and place, in the order the shapes were given. */
  readonly byName = new Map<string, { group: number; entry: ArenaEntry }>();

  constructor(
    readonly shapes: ReadonlyMap<string, readonly number[]>,
    groupOf: (name: string) => DecayGroup,
  ) {
    const groups: ArenaGroupLayout[] = [
      { group: 'decay', entries: [], numel: 0 },
      { group: 'no_decay', entries: [], numel: 0 },
    ];
    for (const [name, shape] of shapes) {
      const g = groups[groupOf(name) === 'decay' ? 0 : 1];
      const numel = shape.reduce((a, b) => a * b, 1);
      g.entries.push({ name, shape, offset: g.numel, numel });
      g.numel += Math.ceil(numel / ALIGN) * ALIGN;
    }
    this.groups = groups.filter((g) => g.entries.length > 0);
    const place = new Map<string, { group: number; entry: ArenaEntry }>();
    this.groups.forEach((g, gi) => g.entries.forEach((entry) => place.set(entry.name, { group: gi, entry })));
    for (const name of shapes.keys()) this.byName.set(name, place.get(name)!);
  }

  /**
   * Zeroed arenas of a dtype (one per group) and a view per name, the map in the shapes' order.
   * The views share their arena's memory: disposing them does not free it, disposing the arena
   * (after the views) does.
   */
  allocate(dtype: DType, device: Device = 'cpu'): Arenas {
    const flats = this.groups.map((g) => keep(Tensor.zeros([g.numel], dtype, device)));
    const views = new Map<string, Tensor>();
    for (const [name, { group, entry }] of this.byName) {
      const row = flats[group].rows(entry.offset, entry.numel);
      views.set(name, keep(row.reshape(entry.shape)));
      row.dispose();
    }
    return new Arenas(this, flats, views);
  }
}

/** One role's storage: the flat arenas and the per-parameter views into them. */
export class Arenas {
  constructor(
    readonly layout: ArenaLayout,
    /** One per group of the layout, in its order. */
    readonly flats: Tensor[],
    readonly views: Map<string, Tensor>,
  ) {}

  /** Where the flats (and so every view) live. */
  get device(): Device {
    return this.flats[0]?.device ?? 'cpu';
  }

  /** Copies tensors of the same names and shapes in (casting if the dtypes differ). */
  copyFrom(src: ReadonlyMap<string, Tensor>, what: string): void {
    for (const [name, dst] of this.views) {
      const t = src.get(name);
      if (!t) throw new Error(`${what}: missing ${name}`);
      if (t.shape.join() !== dst.shape.join()) throw new Error(`${what}: ${name} is ${t.describe()}, expected [${dst.shape.join(', ')}]`);
      ops.cast(t, dst.dtype as 'bf16' | 'f32', dst);
    }
  }

  dispose(): void {
    for (const t of this.views.values()) t.dispose();
    for (const t of this.flats) t.dispose();
  }
}
