// The real KniDriver: kni.ko through the native addon (/dev/kni, one data plane
// thread per interface), the netdev through sysfs and `ip` (argv, no shell).
import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { DataPlane, Kni, type KniInterface } from '../../native/index.js';
import { DriverError, type Availability, type KniDriver, type KniHandle, type LinkState } from '../drivers.js';
import { maxMtuOf } from '../interfaces.js';
import type { Counters, InterfaceCreate } from '../schemas.js';
import { KniSocket } from './kni-socket.js';

const IFF_UP = 0x1;

const sys = (ifname: string, name: string) => readFileSync(`/sys/class/net/${ifname}/${name}`, 'utf8').trim();
const sysNum = (ifname: string, name: string) => Number(sys(ifname, name));

/** Buffers hold a frame of maxMtu plus its Ethernet header and kni.ko's 64-byte buffer header. */
export function bufSizeFor(maxMtu: number): number {
  return Math.ceil((maxMtu + 18 + 64) / 64) * 64;
}

async function ip(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new DriverError('EIO', (r.stderr || r.stdout || `ip exited with ${r.exitCode}`).trim());
}

class NativeHandle implements KniHandle {
  readonly name: string;

  constructor(
    private readonly iface: KniInterface,
    private readonly dataPlane: DataPlane,
    private readonly socket: KniSocket,
  ) {
    this.name = iface.name;
  }

  link(): LinkState {
    const up = (parseInt(sys(this.name, 'flags'), 16) & IFF_UP) !== 0;
    let carrier = false;
    if (up) {
      try {
        carrier = sys(this.name, 'carrier') === '1';
      } catch {
        // EINVAL while down: no carrier to read
      }
    }
    return {
      ifindex: sysNum(this.name, 'ifindex'),
      mac: sys(this.name, 'address'),
      mtu: sysNum(this.name, 'mtu'),
      up,
      carrier,
      vnetHdr: this.socket.vnetHdr(this.name),
    };
  }

  counters(): Counters {
    const stat = (n: string) => sysNum(this.name, `statistics/${n}`);
    return {
      netdev: {
        rxPackets: stat('rx_packets'),
        rxBytes: stat('rx_bytes'),
        rxDropped: stat('rx_dropped'),
        txPackets: stat('tx_packets'),
        txBytes: stat('tx_bytes'),
        txDropped: stat('tx_dropped'),
      },
      dataPlane: { ...this.iface.stats() },
    };
  }

  // MTU, address and up are requests kni.ko hands to the data plane, which
  // accepts them in its own thread (no request handler is set).
  setMtu(mtu: number): Promise<void> {
    return ip(['link', 'set', 'dev', this.name, 'mtu', String(mtu)]);
  }

  setMac(mac: string): Promise<void> {
    return ip(['link', 'set', 'dev', this.name, 'address', mac]);
  }

  setUp(up: boolean): Promise<void> {
    return ip(['link', 'set', 'dev', this.name, up ? 'up' : 'down']);
  }

  setCarrier(on: boolean): void {
    this.iface.setCarrier(on);
  }

  setVnetHdr(on: boolean): void {
    this.socket.setVnetHdr(this.name, on);
  }

  /** The socket through /dev/kni (KNI_IOCTL_SOCKET), close-on-exec; sysfs' sock_en stays for other tools. */
  enableSocket(): number {
    try {
      return this.iface.openSocket();
    } catch (err) {
      const e = err as { code?: string; message: string };
      throw new DriverError(e.code ?? 'EIO', e.message);
    }
  }

  disableSocket(): void {
    this.socket.disable(this.name);
  }

  release(): void {
    this.dataPlane.stop();
    this.iface.release();
  }
}

export class NativeKniDriver implements KniDriver {
  private kni: Kni | undefined;

  constructor(
    private readonly devicePath = '/dev/kni',
    private readonly socket = new KniSocket(),
  ) {}

  available(): Availability {
    if (!existsSync(this.devicePath)) return { ok: false, reason: `kni.ko is not loaded (${this.devicePath} does not exist)` };
    try {
      this.open();
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `${this.devicePath}: ${(err as Error).message}` };
    }
  }

  private open(): Kni {
    this.kni ??= new Kni(this.devicePath);
    return this.kni;
  }

  async create(spec: InterfaceCreate): Promise<KniHandle> {
    if (spec.port.kind === 'packet' && !existsSync(`/sys/class/net/${spec.port.ifname}`)) {
      throw new DriverError('ENODEV', `no host interface named ${JSON.stringify(spec.port.ifname)}`);
    }
    const maxMtu = maxMtuOf(spec);
    const iface = this.open().create({
      name: spec.name,
      mac: spec.mac,
      mtu: spec.mtu,
      maxMtu,
      bufSize: bufSizeFor(maxMtu),
      ...(spec.kthreadCpu === undefined ? {} : { bind: true, cpu: spec.kthreadCpu }),
    });
    let dataPlane: DataPlane;
    try {
      if (spec.vnetHdr !== undefined) this.socket.setVnetHdr(spec.name, spec.vnetHdr);
      dataPlane = new DataPlane([{ iface, port: spec.port }]);
    } catch (err) {
      iface.release();
      throw err;
    }
    return new NativeHandle(iface, dataPlane, this.socket);
  }

  closeFd(fd: number): void {
    this.socket.closeFd(fd);
  }

  close(): void {
    this.kni?.close();
    this.kni = undefined;
  }
}
