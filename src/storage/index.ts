import type { StorageBackend } from './backend.ts';
import type { StorageConfig } from './config.ts';
import { LocalStorage } from './local.ts';
import { DEFAULT_RETRY, type RetryInfo, RetryingStorage } from './retry.ts';

export interface OpenOptions {
  /** Told of every retried storage operation (for warnings, logs and metrics). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Told once per process and destination of an optional feature the service lacks (see capabilities). */
  onWarning?: ((message: string) => void) | undefined;
}

/**
 * Opens the backend a storage config describes. Network backends come wrapped in the retry policy; the
 * AWS SDK is only loaded when an S3 destination is configured.
 */
export async function openStorage(config: StorageConfig, options: OpenOptions = {}): Promise<StorageBackend> {
  switch (config.backend) {
    case 'local':
      return new LocalStorage(config.path);
    case 's3': {
      const { S3Storage } = await import('./s3/s3.ts');
      const retry = { ...DEFAULT_RETRY, onRetry: options.onRetry };
      return new RetryingStorage(new S3Storage(config, { retry, onWarning: options.onWarning }), retry);
    }
  }
}
