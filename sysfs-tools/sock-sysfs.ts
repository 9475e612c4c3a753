// A KNI interface's vhost-net socket, as kni.ko (ABI 3) exposes it:
//
//   /sys/class/net/<kni>/sock_en   0/1. Writing 1 creates the socket and installs its fd,
//                                  without O_CLOEXEC, in the writing process (EBUSY if
//                                  already enabled); writing 0 detaches it (idempotent).
//   /sys/class/net/<kni>/sock_fd   that fd's number in the process that enabled it, or -1.
//   /sys/class/net/<kni>/vnet_hdr  0/1; EBUSY while the socket is enabled.
//
// A non-CLOEXEC fd installed in a Node process would leak into every child it
// spawns, so enabling happens in the native addon, which sets FD_CLOEXEC at
// once. The addon's enableSocket/disableSocket/closeFd are reached through
// this module only: until native/index.ts exports them they fail with a clear
// message, and once it does nothing here needs to change but this lookup.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as native from '../native/index.js';

const NET = '/sys/class/net';

interface SocketCalls {
  /** Enable the interface's socket; returns its fd in this process, FD_CLOEXEC set. */
  enableSocket(ifname: string): number;
  /** Detach the interface's socket (sock_en = 0). */
  disableSocket(ifname: string): void;
  closeFd(fd: number): void;
}

function call<K extends keyof SocketCalls>(name: K): SocketCalls[K] {
  const fn = (native as unknown as Partial<SocketCalls>)[name];
  if (typeof fn !== 'function') {
    throw new Error(`this build of the native addon has no ${name}() (the KNI socket needs kni.ko ABI 3 and its addon)`);
  }
  return fn as SocketCalls[K];
}

export const enableSocket = (ifname: string): number => call('enableSocket')(ifname);
export const disableSocket = (ifname: string): void => call('disableSocket')(ifname);
export const closeFd = (fd: number): void => call('closeFd')(fd);

export interface SocketStatus {
  ifname: string;
  enabled: boolean;
  /** The fd number in the process that enabled the socket; undefined when disabled. */
  fd: number | undefined;
  vnetHdr: boolean;
}

/** Whether `ifname` is a KNI interface with a socket (ABI 3 attributes present). */
export function isKniSocketInterface(ifname: string): boolean {
  try {
    readFileSync(join(NET, ifname, 'sock_en'));
    return true;
  } catch {
    return false;
  }
}

export function kniSocketInterfaces(): string[] {
  let names: string[];
  try {
    names = readdirSync(NET);
  } catch {
    return [];
  }
  return names.filter(isKniSocketInterface).sort();
}

const attr = (ifname: string, name: string) => readFileSync(join(NET, ifname, name), 'utf8').trim();

export function socketStatus(ifname: string): SocketStatus {
  const enabled = attr(ifname, 'sock_en') === '1';
  const fd = Number(attr(ifname, 'sock_fd'));
  return { ifname, enabled, fd: enabled && fd >= 0 ? fd : undefined, vnetHdr: attr(ifname, 'vnet_hdr') === '1' };
}

/** Set VNET_HDR for the next enable; the kernel refuses (EBUSY) while the socket is enabled. */
export function setVnetHdr(ifname: string, on: boolean): void {
  writeFileSync(join(NET, ifname, 'vnet_hdr'), on ? '1' : '0');
}
