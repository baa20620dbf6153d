/** Versions of client tools and servers, compared without running anything. */

/** A version as a tool prints it (`15.18`, `7.2.4`), with its first two numbers. */
export interface ToolVersion {
  version: string;
  major: number;
  minor: number;
}

/** `version` with its major and minor numbers (missing ones are 0). */
export function toolVersion(version: string): ToolVersion {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return { version, major, minor };
}

/** Whether `v` is `major.minor` or newer. */
export function atLeast(v: { major: number; minor: number }, major: number, minor = 0): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/**
 * The major version in a recorded tool version (a manifest's `pg_dump 15.18`): its first number; 0 when
 * there is none (an older manifest without one), which callers take as "nothing to check".
 */
export function recordedMajor(recorded: string | undefined): number {
  return Number(/(\d+)/.exec(recorded ?? '')?.[1] ?? 0);
}
