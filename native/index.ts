// Typed wrapper over the raw binding: the only module the rest of kniv imports.
import { createRequire } from 'node:module';
import { constants } from 'node:os';

interface RawBinding {
  abiVersion: number;
  info(path?: string): { abiVersion: number; kthreadMode: 'single' | 'multiple' };
}

const require = createRequire(import.meta.url);
// Loaded from dist/native/index.js, two levels below the project root.
const raw = require('../../native/build/Release/kniv.node') as RawBinding;

/** An error from a system call made by the addon, shaped like Node's own. */
export class KniError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(message: string, errno: number, syscall: string) {
    super(message);
    this.name = 'KniError';
    this.errno = errno;
    this.syscall = syscall;
    this.code = errnoName(errno);
  }
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) {
    if (value === errno) return name;
  }
  return 'UNKNOWN';
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as { message: string; errno?: unknown; syscall?: unknown };
    if (typeof e.errno === 'number' && typeof e.syscall === 'string') {
      throw new KniError(e.message, e.errno, e.syscall);
    }
    throw err;
  }
}

/** The ABI version this addon was built against (KNI_ABI_VERSION). */
export const addonAbiVersion: number = raw.abiVersion;

export interface ModuleInfo {
  abiVersion: number;
  kthreadMode: 'single' | 'multiple';
}

/** Ask the loaded kni.ko what it is, through KNI_IOCTL_INFO on /dev/kni. */
export function moduleInfo(devicePath?: string): ModuleInfo {
  return wrap(() => raw.info(devicePath));
}
