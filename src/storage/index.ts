import type { StorageConfig } from '../config/types.ts';
import type { StorageBackend } from './backend.ts';
import { LocalStorage } from './local.ts';

/** Opens the backend a storage config describes. */
export function openStorage(config: StorageConfig): StorageBackend {
  switch (config.backend) {
    case 'local':
      return new LocalStorage(config.path);
  }
}
