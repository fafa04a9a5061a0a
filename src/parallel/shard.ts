/**
 * The micro-batches of a step that `rank` computes: dealt round-robin (0, n, 2n, ... to rank 0), so
 * the global batch and its micro-batches are the ones a single process forms, whatever n is.
 */
export function shareOf<T>(micro: readonly T[], rank: number, size: number): T[] {
  return micro.filter((_, i) => i % size === rank);
}

// Shards start on multiples of 32 elements, as the arena's parameter views do, so the kernels see
// the same alignment on a shard as on a whole arena.
const SHARD_ALIGN = 32;

/**
 * ZeRO-1's split of a flat arena of `numel` elements over `size` ranks: contiguous ranges in rank
 * order, every one but the last of the same aligned length (the last ones may be shorter or empty).
 * A range may cut through a parameter: AdamW is elementwise, and each decay group is its own arena.
 */
export function shardCounts(numel: number, size: number): number[] {
  const per = Math.ceil(numel / (size * SHARD_ALIGN)) * SHARD_ALIGN;
  return Array.from({ length: size }, (_, r) => Math.max(0, Math.min(per, numel - r * per)));
}

/** Where rank `rank`'s range of `counts` starts. */
export function shardOffset(counts: readonly number[], rank: number): number {
  return counts.slice(0, rank).reduce((a, b) => a + b, 0);
}
