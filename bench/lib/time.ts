/** Time helpers shared by the runner and the workers. */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** CLOCK_MONOTONIC in ms: comparable across processes on one machine. */
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Sleeps until the monotonic clock reads `atMs`. */
export function sleepUntil(atMs: number): Promise<void> {
  return sleep(atMs - monoMs());
}
