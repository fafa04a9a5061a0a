/**
 * Hugging Face's linear schedule (get_linear_schedule_with_warmup), exactly: the learning rate of
 * 0-based step k is peak·k/warmup during warmup, then decays linearly to 0 at `total`.
 */
export function linearLr(peak: number, step: number, total: number, warmup: number): number {
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  return (peak * Math.max(0, total - step)) / Math.max(1, total - warmup);
}
