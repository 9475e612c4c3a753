import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

// Compiled files live in dist/<folder>/ (the bundled command in dist/kniv/),
// sources in <folder>/: both two levels deep.
const here = dirname(fileURLToPath(import.meta.url));
export const projectRoot: string = here.includes('/dist/')
  ? join(here, '..', '..')
  : join(here, '..');

/**
 * The kniv command as installed (the package's bin): one bundle of
 * dist/bin/kniv.js and everything it imports, built by scripts/setup.sh.
 */
export const knivCommand = join(projectRoot, 'dist', 'kniv', 'kniv.js');
