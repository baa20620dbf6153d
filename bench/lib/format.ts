/** Small formatting helpers shared by the benchmark scripts. */

export const MiB = 1024 * 1024;

export function formatMb(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MB`;
}

export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}

export function formatSeconds(seconds: number): string {
  return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}
