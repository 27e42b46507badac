// `--name value` options of the bench scripts (they take a few, each with a default).
const argv = process.argv.slice(2);

export function option(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
}

// A bare `--name` switch.
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}
