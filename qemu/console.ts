// Watches the appliance kernel's serial console: keeps a tail for error reports
// and recognises the lines that mean the kernel is in trouble, whatever the
// command running in the VM says about itself.

/** Console lines that make a VM run fail. Each is a kernel self-report of a bug. */
export const KERNEL_PROBLEM_PATTERNS: readonly RegExp[] = [
  /\bBUG: /, // BUG_ON, sleeping in atomic, bad page state, KASAN/KFENCE reports ...
  /\bkernel BUG at /,
  /\bWARNING: /, // WARN_ON and friends: "WARNING: CPU: 0 PID: 1 at ..."
  /\bOops\b/,
  /\bgeneral protection fault\b/,
  /\brefcount_t: /,
  /\blist_(add|del) corruption\b/,
  /\bKASAN\b/,
  /\bUBSAN: /,
  /\bKernel panic\b/,
  /\bsoft lockup\b/,
  /\bhard LOCKUP\b/,
  /\bINFO: task .* blocked for more than\b/,
  /\brcu: INFO: .*detected stalls?\b/,
];

export function kernelProblem(line: string): boolean {
  return KERNEL_PROBLEM_PATTERNS.some((re) => re.test(line));
}

export class ConsoleWatcher {
  private readonly tail: string[] = [];
  private partial = '';
  /** The first line that reported a kernel problem, if any. */
  problem: string | undefined;

  constructor(
    private readonly tailLines = 60,
    private readonly echo?: (line: string) => void,
  ) {}

  feed(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  lastLines(): string[] {
    const lines = this.partial ? [...this.tail, this.partial] : [...this.tail];
    return lines.slice(-this.tailLines);
  }

  private line(raw: string): void {
    // Serial consoles deliver stray carriage returns and control characters.
    const line = raw.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    this.tail.push(line);
    if (this.tail.length > this.tailLines) this.tail.shift();
    if (this.problem === undefined && kernelProblem(line)) this.problem = line;
    this.echo?.(line);
  }
}
