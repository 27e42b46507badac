// Diagnostics go to stderr so stdout stays clean for data (`save`, `-o type=tar`),
// with control characters of quoted text escaped (escape.ts).
import { escapeControls } from './escape';

let debugEnabled = process.env.IMG_DEBUG === '1';

export function setDebug(on: boolean): void {
  debugEnabled = on;
  if (on) process.env.IMG_DEBUG = '1'; // inherited by the re-exec'd namespace child
}

export function isDebug(): boolean {
  return debugEnabled;
}

export function debug(message: string): void {
  if (debugEnabled) process.stderr.write(`DEBU ${escapeControls(message)}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`WARN ${escapeControls(message)}\n`);
}
