/**
 * Re-chunks a byte stream into buffers of about `size` bytes (the last one may be smaller).
 *
 * Dump tools write through a pipe in small pieces (pg_dump averages ~8 KB per read), and every stage of
 * the pipeline (meters, compressor, hash, storage writes) pays a fixed cost per chunk. Joining them once,
 * at the head of the pipeline, makes the whole pipeline run at close to the speed of the dump itself.
 */
export async function* coalesce(source: AsyncIterable<Buffer>, size = 1024 * 1024): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of source) {
    pending.push(chunk);
    bytes += chunk.length;
    if (bytes >= size) {
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
      pending = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
}
