/**
 * The micro-batches of a step that `rank` computes: dealt round-robin (0, n, 2n, ... to rank 0), so
 * the global batch and its micro-batches are the ones a single process forms, whatever n is.
 */
export function shareOf<T>(micro: readonly T[], rank: number, size: number): T[] {
  return micro.filter((_, i) => i % size === rank);
}
