// What `kniv sock` knows of KNI sockets: the native addon's socket calls
// (enableSocket marks the descriptor close-on-exec at once, so that it
// reaches only the child it is handed to), and which interfaces have one.
// docs/abi.md ("KNI socket") describes the sysfs attributes behind them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as native from '../native/index.js';

export { closeFd, disableSocket, enableSocket, setVnetHdr } from '../native/index.js';

const NET = '/sys/class/net';

export interface SocketStatus {
  ifname: string;
  enabled: boolean;
  /** The fd number in the process that enabled the socket; undefined when disabled. */
  fd: number | undefined;
  vnetHdr: boolean;
}

/** Whether `ifname` is a KNI interface with a socket (ABI 4 attributes present). */
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

export function socketStatus(ifname: string): SocketStatus {
  const s = native.socketStatus(ifname);
  return { ifname, enabled: s.enabled, fd: s.enabled && s.fd >= 0 ? s.fd : undefined, vnetHdr: s.vnetHdr };
}
