// The shape of `img doctor`'s answer and its two renderings. A check is one
// row: what this environment has, and — when it is short of the best — what
// that costs a build and the one change that fixes it. `fail` means a build
// cannot work here (the command exits 1); `warn` means it works, degraded.
import { tabwrite } from '../util/units';

export type Status = 'ok' | 'warn' | 'fail' | 'info';

export interface Check {
  id: string; // stable key for scripts and tests: kernel, userns, subids, helpers, mapping, proc, overlayfs, ...
  title: string;
  status: Status;
  found: string;
  cost?: string; // what a build loses (warn, fail)
  fix?: string; // the one change that fixes it
}

// What a build here would use, from the trials.
export interface Verdict {
  builds: boolean;
  mapping: string; // "subordinate ranges", "single id", "none (root)", "none"
  backend: string; // overlayfs, fuse-overlayfs, native
  proc: string; // "fresh", "host"
}

export interface DoctorReport {
  checks: Check[];
  verdict: Verdict;
}

export function formatTable(r: DoctorReport): string {
  const rows: string[][] = [['CHECK', 'STATUS', 'FOUND']];
  for (const c of r.checks) {
    rows.push([c.title, c.status, c.found]);
    if (c.cost) rows.push(['', '', `→ ${c.cost}`]);
    if (c.fix) rows.push(['', '', `fix: ${c.fix}`]);
  }
  const v = r.verdict;
  const summary = v.builds
    ? `img can build here: mapping ${v.mapping}, backend ${v.backend}, /proc ${v.proc}`
    : `img cannot build here: ${r.checks
        .filter((c) => c.status === 'fail')
        .map((c) => c.title)
        .join(', ')} (see fix above)`;
  return `${tabwrite(rows)}${summary}\n`;
}

export function formatJson(r: DoctorReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
