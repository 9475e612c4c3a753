// The KNI raw socket of an interface (the vhost-net backend), behind a small
// adapter: `/sys/class/net/<kni>/sock_en` installs the socket's fd in the
// process that writes 1 to it, so only native code that sets close-on-exec
// right away (native/index.ts enableSocket) may do it in a process that also
// spawns children.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { closeFd, disableSocket, enableSocket } from '../../native/index.js';
import { DriverError } from '../drivers.js';

export interface KniSocketApi {
  enableSocket(ifname: string): number;
  disableSocket(ifname: string): void;
  closeFd(fd: number): void;
}

export const nativeSocketApi: KniSocketApi = { enableSocket, disableSocket, closeFd };

const attr = (ifname: string, name: string) => `/sys/class/net/${ifname}/${name}`;

export class KniSocket {
  constructor(private readonly api: KniSocketApi = nativeSocketApi) {}

  /** Whether kni.ko has the socket attributes for this interface. */
  supported(ifname: string): boolean {
    return existsSync(attr(ifname, 'sock_en'));
  }

  enable(ifname: string): number {
    if (!this.supported(ifname)) throw new DriverError('ENOTSUP', 'this kni.ko has no KNI socket (no sock_en attribute)');
    try {
      return this.api.enableSocket(ifname);
    } catch (err) {
      const e = err as { code?: string; message: string };
      throw new DriverError(e.code ?? 'EIO', e.message);
    }
  }

  disable(ifname: string): void {
    if (!this.supported(ifname)) return;
    this.api.disableSocket(ifname);
  }

  closeFd(fd: number): void {
    this.api.closeFd(fd);
  }

  /** vnet_hdr: null when the attribute does not exist. */
  vnetHdr(ifname: string): boolean | null {
    try {
      return readFileSync(attr(ifname, 'vnet_hdr'), 'utf8').trim() === '1';
    } catch {
      return null;
    }
  }

  setVnetHdr(ifname: string, on: boolean): void {
    if (!existsSync(attr(ifname, 'vnet_hdr'))) throw new DriverError('ENOTSUP', 'this kni.ko has no vnet_hdr attribute');
    try {
      writeFileSync(attr(ifname, 'vnet_hdr'), on ? '1' : '0');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EBUSY') throw new DriverError('EBUSY', `${ifname}: vnet_hdr cannot change while the socket is enabled`);
      throw err;
    }
  }
}
