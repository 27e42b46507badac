// Marks of this process's start-up, in ms since Node's time origin (its exec):
// where main() began, and where the command had loaded its modules and began
// its work. --debug prints the split at exit (lib/cli/main.ts); bench/startup.ts reads it.
export const startupMarks: { main?: number; work?: number } = {};
