/** What every API router gets: the adapters, created once in app.ts. */
import type { Iam } from './iam/iam.js';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';

export interface ServerSettings {
  /** The base URL clients use (`http://127.0.0.1:7420`), for self links and gcloud config lines. */
  readonly publicUrl: string;
  readonly dataDir: string;
}

export interface AppDeps {
  readonly store: Store;
  readonly iam: Iam;
  readonly logger: Logger;
  readonly settings: ServerSettings;
}
