/** Reading and restoring a globals script (pg_dumpall --globals-only) from storage. */
import { UsageError } from '../../util/errors.ts';
import type { ConnectionConfig, DumpInspection, GlobalsReport } from '../engine.ts';

export async function inspectGlobals(
  _source: AsyncIterable<Buffer>,
  _signal: AbortSignal | undefined,
): Promise<DumpInspection> {
  throw new UsageError('reading a globals script is not available yet');
}

export async function restoreGlobals(
  _connection: ConnectionConfig,
  _source: AsyncIterable<Buffer>,
  _signal: AbortSignal | undefined,
): Promise<GlobalsReport> {
  throw new UsageError('restoring a globals script is not available yet');
}
