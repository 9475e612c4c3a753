// Prometheus text exposition (format 0.0.4): request latencies kept here,
// interface counters and VM states read from the service at scrape time.
import type { Service } from './service.js';
import { VM_STATES, type Counters } from './schemas.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series {
  counts: number[];
  sum: number;
  count: number;
}

/** Request durations by method, route pattern and status: one histogram. */
export class RequestHistogram {
  private readonly series = new Map<string, Series>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = JSON.stringify([method, route, String(status)]);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) s.counts[i]!++;
    s.sum += seconds;
    s.count++;
  }

  render(out: string[]): void {
    const name = 'kniv_http_request_duration_seconds';
    out.push(`# HELP ${name} Time to answer an API request.`, `# TYPE ${name} histogram`);
    for (const [key, s] of this.series) {
      const [method, route, status] = JSON.parse(key) as [string, string, string];
      const l = `method="${esc(method)}",route="${esc(route)}",status="${status}"`;
      BUCKETS.forEach((b, i) => out.push(`${name}_bucket{${l},le="${b}"} ${s.counts[i]}`));
      out.push(`${name}_bucket{${l},le="+Inf"} ${s.count}`, `${name}_sum{${l}} ${s.sum}`, `${name}_count{${l}} ${s.count}`);
    }
  }
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

const NETDEV: [keyof Counters['netdev'], string, string][] = [
  ['rxPackets', 'kniv_interface_rx_packets_total', 'Packets the netdev received (port to host stack or socket).'],
  ['rxBytes', 'kniv_interface_rx_bytes_total', 'Bytes the netdev received.'],
  ['rxDropped', 'kniv_interface_rx_dropped_total', 'Packets the netdev dropped on receive.'],
  ['txPackets', 'kniv_interface_tx_packets_total', 'Packets the netdev sent towards the port.'],
  ['txBytes', 'kniv_interface_tx_bytes_total', 'Bytes the netdev sent.'],
  ['txDropped', 'kniv_interface_tx_dropped_total', 'Packets the netdev dropped on transmit.'],
];

const DATAPLANE: [keyof Counters['dataPlane'], string][] = [
  ['toKernelPackets', 'Frames from the port queued to the kernel.'],
  ['toKernelBytes', 'Bytes from the port queued to the kernel.'],
  ['toPortPackets', 'Frames from the kernel sent on the port.'],
  ['toPortBytes', 'Bytes from the kernel sent on the port.'],
  ['toKernelGso', 'Of the frames queued to the kernel: GSO super-frames, queued whole.'],
  ['toPortGso', 'Of the frames sent on the port: GSO super-frames the port took whole.'],
  ['toPortCut', 'Of the frames sent on the port: GSO super-frames the data plane cut into segments.'],
  ['dropNoBuffer', 'Port frames dropped: the buffer pool was empty or too short for the frame.'],
  ['dropRxFull', 'Port frames dropped: rx_q was full.'],
  ['dropTooBig', 'Port frames dropped: larger than a KNI frame may be, or a super-frame the kernel cannot take.'],
  ['dropPortError', 'Frames the port refused.'],
  ['badBuffer', 'Invalid buffers seen from the kernel.'],
  ['portErrors', 'Receive errors on the port.'],
  ['requests', 'Control requests and notifications handled.'],
  ['sleeps', 'Times the data plane slept until the port or the kernel woke it.'],
  ['kernelKicks', "Doorbells rung: kni.ko's thread was asleep when work was queued for it."],
];

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function renderMetrics(service: Service, requests: RequestHistogram): string {
  const out: string[] = [];
  const ifaces = service.interfaces.list();
  const counters = ifaces.filter((i) => i.counters !== null);

  out.push('# HELP kniv_interface_up 1 when the interface exists and its data plane runs.', '# TYPE kniv_interface_up gauge');
  for (const i of ifaces) out.push(`kniv_interface_up{interface="${esc(i.name)}"} ${i.state === 'active' ? 1 : 0}`);
  out.push('# HELP kniv_interface_socket_attached 1 when a VM holds the interface socket.', '# TYPE kniv_interface_socket_attached gauge');
  for (const i of ifaces) out.push(`kniv_interface_socket_attached{interface="${esc(i.name)}"} ${i.socket.attached ? 1 : 0}`);

  for (const [key, name, help] of NETDEV) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const i of counters) out.push(`${name}{interface="${esc(i.name)}"} ${i.counters!.netdev[key]}`);
  }
  for (const [key, help] of DATAPLANE) {
    const name = `kniv_dataplane_${snake(key)}_total`;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const i of counters) out.push(`${name}{interface="${esc(i.name)}"} ${i.counters!.dataPlane[key]}`);
  }

  const states = service.vms.states();
  out.push('# HELP kniv_vm_state 1 for the state each VM is in.', '# TYPE kniv_vm_state gauge');
  for (const [vm, state] of states) {
    for (const s of VM_STATES) out.push(`kniv_vm_state{vm="${esc(vm)}",state="${s}"} ${s === state ? 1 : 0}`);
  }
  out.push('# HELP kniv_vms VMs by state.', '# TYPE kniv_vms gauge');
  for (const s of VM_STATES) out.push(`kniv_vms{state="${s}"} ${[...states.values()].filter((x) => x === s).length}`);

  out.push('# HELP kniv_event_subscribers Clients following the event stream.', '# TYPE kniv_event_subscribers gauge');
  out.push(`kniv_event_subscribers ${service.bus.subscribers}`);
  requests.render(out);
  return `${out.join('\n')}\n`;
}
