import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

// Compiled files live in dist/<folder>/, sources in <folder>/: both two levels deep.
const here = dirname(fileURLToPath(import.meta.url));
export const projectRoot: string = here.includes('/dist/')
  ? join(here, '..', '..')
  : join(here, '..');
