// Worker-thread entry: registers tsx in this thread (the parent may have been started without a loader flag
// that workers inherit), then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
