/**
 * The lease record: what the object `<target>/<target>.lease.json` (catalog/layout.ts) holds, how it is
 * written, and how it is read back from storage, which is untrusted. Whatever is at the key counts: an
 * object that is not a lease datasaver wrote holds the target until it is as old as a lease would live,
 * and a lease claiming to last longer than MAX_LEASE_TTL_SECONDS after its object was last written
 * expires then.
 */
import { z } from 'zod';
import { leaseKey } from '../catalog/layout.ts';
import { MAX_LEASE_TTL_SECONDS } from '../config/target.ts';
import { readCapped } from '../pipeline/read.ts';
import { type StorageBackend, StorageNotFoundError } from '../storage/backend.ts';

/** A lease is a few hundred bytes; anything much bigger is not one and is not read whole. */
const MAX_LEASE_BYTES = 64 * 1024;

/** Who holds a lease, and what for. */
export interface LeaseHolder {
  host: string;
  pid: number;
  /** `readlink /proc/self/ns/pid` ('' where unknown): a pid names the same process only in one namespace. */
  pidNamespace: string;
  /**
   * /proc/sys/kernel/random/boot_id ('' where unknown): the initial PID namespace has the same id on every
   * Linux host, and host names repeat (cloned VMs, `localhost`), so only the boot id tells this machine's
   * pids from another's. Absent in leases of older datasaver versions.
   */
  bootId?: string | undefined;
  /** The holder's start time (/proc/<pid>/stat field 22, clock ticks since boot): a reused pid differs. */
  startTime?: string | undefined;
  /** Random, per run: tells this run's lease from any other's. */
  token: string;
  /** What the holder is doing: backup, prune, resume. */
  operation: string;
}

/** The lease of one target in one destination, as stored (JSON). */
export interface LeaseRecord {
  target: string;
  holder: LeaseHolder;
  /** ISO 8601 times: when the holder took it, and when it expires unless renewed. */
  acquiredAt: string;
  expiresAt: string;
}

/** What a lease may hold as its holder's host name, PID namespace, boot id and start time. */
const HOST_NAME = /^[A-Za-z0-9_.:-]{1,253}$/;
export const PID_NAMESPACE = /^[A-Za-z0-9_:[\]-]{0,64}$/;
export const BOOT_ID = /^[0-9a-f-]{0,64}$/;
const START_TIME = /^\d{0,20}$/;

/** Storage is untrusted: what is printed from a lease (host, operation) holds no terminal escapes. */
const leaseSchema = z.looseObject({
  target: z.string(),
  holder: z.looseObject({
    host: z.string().regex(HOST_NAME),
    pid: z.number().int().nonnegative(),
    pidNamespace: z.string().regex(PID_NAMESPACE),
    bootId: z.string().regex(BOOT_ID).optional(),
    startTime: z.string().regex(START_TIME).optional(),
    token: z.string().regex(/^[A-Za-z0-9_:-]{1,128}$/),
    operation: z.string().regex(/^[a-z-]{1,32}$/),
  }),
  acquiredAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
}) satisfies z.ZodType<LeaseRecord>;

/** Describes a holder for messages: `host db-1, pid 42, backup since 2026-...`. */
export function describeHolder(lease: LeaseRecord): string {
  const h = lease.holder;
  return `host ${h.host}, pid ${h.pid}, ${h.operation} since ${lease.acquiredAt}`;
}

/**
 * What a lease key holds: a lease, nothing (undefined), or something unreadable, returned as a lease of an
 * unknown holder that expires `ttlMs` after the object was last written. Rejects with the storage's
 * errors, or the signal's reason.
 */
export async function readLease(
  storage: StorageBackend,
  target: string,
  ttlMs: number,
  signal: AbortSignal | undefined,
): Promise<LeaseRecord | undefined> {
  const key = leaseKey(target);
  const info = await storage.stat(key, { signal });
  if (!info) return undefined;
  let text: string | undefined;
  if (info.size <= MAX_LEASE_BYTES) {
    // The object may have grown since the stat: reading stops at the cap whatever it says.
    const tooLarge = new Error('larger than a lease');
    try {
      const body = await readCapped(await storage.get(key, { signal }), MAX_LEASE_BYTES, () => tooLarge);
      text = body.toString('utf8');
    } catch (err) {
      signal?.throwIfAborted();
      if (err instanceof StorageNotFoundError) return undefined; // released meanwhile
      if (err !== tooLarge) throw err;
    }
  }
  const parsed = text === undefined ? undefined : safeParse(text);
  if (parsed && parsed.target === target) {
    // Renewals rewrite the object, so a live holder's lease is never older than its TTL.
    const latest = info.modified.getTime() + MAX_LEASE_TTL_SECONDS * 1000;
    if (Date.parse(parsed.expiresAt) <= latest) return parsed;
    return { ...parsed, expiresAt: new Date(latest).toISOString() };
  }
  // Not a lease datasaver wrote: it holds the target until it is as old as a lease would live.
  return {
    target,
    holder: {
      host: 'unknown',
      pid: 0,
      pidNamespace: '',
      bootId: '',
      token: `unreadable:${info.modified.getTime()}`,
      operation: 'unknown',
    },
    acquiredAt: info.modified.toISOString(),
    expiresAt: new Date(info.modified.getTime() + ttlMs).toISOString(),
  };
}

function safeParse(text: string): LeaseRecord | undefined {
  try {
    const result = leaseSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

/** The object a lease is stored as: pretty JSON, for whoever looks at the bucket. */
export function leaseBody(lease: LeaseRecord): Buffer[] {
  return [Buffer.from(`${JSON.stringify(lease, null, 2)}\n`)];
}
