// A writer for the "newc" cpio format, the one the kernel unpacks as initramfs.
// Entries are built in memory: an appliance initramfs is a few megabytes.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

function record(
  ino: number,
  name: string,
  mode: number,
  data: Uint8Array,
  rdev: { major: number; minor: number } = { major: 0, minor: 0 },
): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const header = Buffer.from(
    '070701' +
      [
        ino,
        mode,
        0, // uid
        0, // gid
        mode & S_IFDIR ? 2 : 1, // nlink
        0, // mtime: fixed, so identical inputs give identical archives
        data.length,
        0, // devmajor
        0, // devminor
        rdev.major,
        rdev.minor,
        nameBytes.length,
        0, // check
      ]
        .map(hex8)
        .join(''),
    'ascii',
  );
  return [header, nameBytes, pad4(header.length + nameBytes.length), Buffer.from(data), pad4(data.length)];
}

export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (path === '' || path.split('/').includes('..')) {
      throw new Error(`cpio: bad path ${JSON.stringify(e.path)}`);
    }
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array()));
        break;
      case 'file':
        parts.push(...record(ino++, path, S_IFREG | (e.mode ?? 0o644), e.data));
        break;
      case 'symlink':
        parts.push(...record(ino++, path, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8')));
        break;
      case 'chardev':
        parts.push(...record(ino++, path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(), e));
        break;
    }
  }
  parts.push(...record(0, 'TRAILER!!!', 0, new Uint8Array()));
  return Buffer.concat(parts);
}
