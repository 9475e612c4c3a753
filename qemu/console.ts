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

/** How many console lines before a problem line, and after it, make its excerpt. */
export const EXCERPT_BEFORE = 10;
export const EXCERPT_AFTER = 30;

/**
 * One kernel self-report: its first line, where it stood on the console, and
 * the lines around it. An Oops's RIP, Code and call trace follow its first
 * line, so the excerpt keeps growing until EXCERPT_AFTER more lines arrived.
 */
export interface KernelProblem {
  line: string;
  /** Its number among all console lines seen, from 0. */
  lineNo: number;
  excerpt: string[];
}

/** A kernel's banner (not printed under `quiet`); a reboot shows it again. */
export const KERNEL_START = /Linux version \d/;

export class ConsoleWatcher {
  private readonly tail: string[] = [];
  private partial = '';
  /** Whether the last problem's excerpt still takes lines. */
  private excerptOpen = false;
  /** Every problem report, in order; a report's follow-on lines do not start another. */
  readonly problems: KernelProblem[] = [];
  /** How many whole lines have been seen. */
  lineCount = 0;
  /** The line count when the machine last reset (markBoot) or a kernel banner was seen; -1 before. */
  lastBootStart = -1;

  constructor(
    private readonly tailLines = 60,
    private readonly echo?: (line: string) => void,
  ) {}

  /** The first line that reported a kernel problem, if any. */
  get problem(): string | undefined {
    return this.problems[0]?.line;
  }

  /** Problems whose first line came at or after console line `lineNo`. */
  problemsSince(lineNo: number): KernelProblem[] {
    return this.problems.filter((p) => p.lineNo >= lineNo);
  }

  /**
   * The machine reset (qemu's RESET event): what follows is a new boot, so
   * the last report's excerpt takes no more lines.
   */
  markBoot(): void {
    this.excerptOpen = false;
    this.lastBootStart = this.lineCount;
  }

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
    const lineNo = this.lineCount++;
    const open = this.problems.at(-1);
    // A kernel starting again (a reboot) ends the last report.
    if (KERNEL_START.test(line)) {
      this.excerptOpen = false;
      this.lastBootStart = lineNo;
    }
    if (open === undefined || lineNo - open.lineNo > EXCERPT_AFTER) this.excerptOpen = false;
    if (this.excerptOpen) open!.excerpt.push(line);
    // A report prints several matching lines (an Oops's "Kernel panic" after
    // its "general protection fault"): those belong to the open excerpt.
    else if (kernelProblem(line)) {
      this.problems.push({ line, lineNo, excerpt: [...this.tail.slice(-EXCERPT_BEFORE), line] });
      this.excerptOpen = true;
    }
    this.tail.push(line);
    if (this.tail.length > Math.max(this.tailLines, EXCERPT_BEFORE)) this.tail.shift();
    this.echo?.(line);
  }
}

/** A problem as a failure message shows it: the first line, then the excerpt. */
export function formatProblem(p: KernelProblem): string {
  return `${p.line}\n--- console around it ---\n${p.excerpt.join('\n')}\n---`;
}
