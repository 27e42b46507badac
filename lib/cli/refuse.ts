// docker's flags that img does not take. Scripts move from `docker` to `img`
// unchanged, so such a flag must fail with an error naming it and saying what
// to do instead — never be dropped silently, nor end as commander's bare
// "unknown option". Each one is a hidden option that throws when parsed (before
// the command does any work).
import { Option, type Command } from 'commander';
import { UnsupportedError } from '../util/errors';
import { warn } from '../util/log';

export interface Refusal {
  // commander's flags, e.g. '--shm-size <bytes>' or '-m, --memory <bytes>' or '--squash'
  flags: string;
  // why img does not take it, e.g. 'img does not limit the memory of RUN steps'
  why: string;
  // what to do instead
  hint: string;
}

export function refuse(cmd: Command, refusals: Refusal[]): Command {
  for (const r of refusals) {
    const opt = new Option(r.flags).hideHelp();
    cmd.addOption(opt);
    // commander emits `option:NAME` as it parses the flag, before any action runs.
    cmd.on(`option:${opt.name()}`, () => {
      const shown = opt.long ?? opt.short ?? r.flags;
      throw new UnsupportedError(`img ${cmd.name()} does not support ${shown}: ${r.why}`, { hint: r.hint });
    });
  }
  return cmd;
}

// docker flags that `docker buildx build` itself takes and ignores (hidden, kept so old
// `docker build` scripts run): img takes them too, so those scripts run unchanged, but says
// on stderr that the flag has no effect rather than dropping it silently.
export function tolerate(cmd: Command, ignored: Refusal[]): Command {
  for (const r of ignored) {
    const opt = new Option(r.flags).hideHelp();
    cmd.addOption(opt);
    let said = false; // once per flag, however often it is repeated
    cmd.on(`option:${opt.name()}`, () => {
      if (said) return;
      said = true;
      warn(`img ${cmd.name()} ignores ${opt.long ?? opt.short ?? r.flags}: ${r.why}; ${r.hint}`);
    });
  }
  return cmd;
}

// A boolean docker flag whose only meaningful value is the one img always has
// (e.g. `docker build --rm`): accepted; `--flag=false` (the other behaviour) refused.
export function parseFixedBool(flag: string, fixed: boolean, why: string, hint: string): (v: string) => boolean {
  return (v: string) => {
    const s = v.trim().toLowerCase();
    const b = ['1', 't', 'true'].includes(s) ? true : ['0', 'f', 'false'].includes(s) ? false : null;
    if (b === null) throw new UnsupportedError(`invalid value "${v}" for ${flag}: expected true or false`, { hint: `use ${flag}=${fixed}` });
    if (b !== fixed) throw new UnsupportedError(`img does not support ${flag}=${b}: ${why}`, { hint });
    return b;
  };
}

// docker's hidden --disable-content-trust (build, pull, push): img never verifies nor signs
// Docker Content Trust, so only its `true` form is taken; `why`/`hint` say so for the command.
export function contentTrustOption(description: string, why: string, hint: string): Option {
  return new Option('--disable-content-trust [bool]', description).preset('true').argParser(parseFixedBool('--disable-content-trust', true, why, hint)).hideHelp();
}
