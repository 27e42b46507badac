// The state of one stage while its commands are converted: the filesystem so
// far (a graph ref), the image config being written, the environment that
// expansion and RUN see, and the progress numbering — plus the two things
// every instruction family does with it: name a step and write history.

import type { ImageConfig, Platform } from '../../../images/types';
import type { Ref } from '../../../graph/types';
import type { DeclaredArg } from '../args';
import { envKey, historyEntry } from '../config';
import type { Stage } from '../stages';

export interface StageState {
  stage: Stage;
  label: string; // progress name prefix: "builder", "stage-1", or "" for a lone stage
  platformLabel: string; // multi-platform builds: the stage's platform before the label ("linux/arm64")
  ref: Ref | null; // the filesystem so far; null = empty (scratch)
  img: ImageConfig;
  env: Map<string, string>; // the environment RUN sees and expansion uses (ENV + ARG)
  declared: DeclaredArg[]; // ARGs declared in the stage so far (for RUN history)
  cmdSet: boolean; // CMD written in this stage (ENTRYPOINT then keeps it)
  workdirSet: boolean; // a WORKDIR was given in this stage or the stages it builds on (WorkdirRelativePath)
  platform: Platform;
  cmdIndex: number;
  cmdTotal: number;
  inTrigger: boolean; // running an ONBUILD trigger: progress names say so
}

export function newStageState(stage: Stage, label: string, img: ImageConfig, ref: Ref | null, platform: Platform): StageState {
  return {
    stage,
    label,
    platformLabel: '',
    ref,
    img,
    env: new Map((img.config?.Env ?? []).map((e) => [envKey(e), e.slice(envKey(e).length + 1)] as [string, string])),
    declared: [],
    cmdSet: false,
    workdirSet: false,
    platform,
    cmdIndex: 0,
    cmdTotal: 0,
    inTrigger: false,
  };
}

// The progress name of the stage's next step: "[builder 2/5] RUN make"
// ("[linux/arm64 builder 2/5] RUN make" in a multi-platform build, as BuildKit's).
export function stepName(st: StageState, text: string): string {
  if (st.cmdTotal === 0) return text;
  st.cmdIndex++;
  const width = String(st.cmdTotal).length;
  const onbuild = st.inTrigger ? 'ONBUILD ' : '';
  const prefix = [st.platformLabel, st.label].filter(Boolean).join(' ');
  return `[${prefix ? prefix + ' ' : ''}${String(st.cmdIndex).padStart(width)}/${st.cmdTotal}] ${onbuild}${text}`;
}

// What an instruction leaves in the image history (BuildKit's commitToHistory):
// 'metadata' changes only the config (empty_layer); 'mkdir' is WORKDIR's layer;
// 'step' is a RUN/COPY/ADD layer, whose text BuildKit marks "# buildkit".
export type HistoryKind = 'metadata' | 'mkdir' | 'step';

export function commitToHistory(st: StageState, createdBy: string, kind: HistoryKind, epoch: string | undefined): void {
  (st.img.history ??= []).push(historyEntry(createdBy, kind === 'metadata', epoch, kind === 'step'));
}
