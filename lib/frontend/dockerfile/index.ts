// Public API of the Dockerfile frontend's text layer: parser, typed commands,
// build checks, expansion, .dockerignore (pure TypeScript; bundles for a
// neutral platform). The converter to the build graph is convert/index.ts.
export type * from './ast';
export { DockerfileError, ShellExpansionError, locateShellError, suggest, editDistance } from './errors';
export type { DockerfileErrorOptions } from './errors';
export { parseDockerfile, extractFlags, parseWords } from './parser';
export type { ParseOptions } from './parser';
export { expandWord, expandWords, lexWords, matchShellPattern } from './shell';
export type { EnvLookup, ExpandResult, ExpandOptions, LexerOptions } from './shell';
export { parseDockerignore, PatternMatcher, dockerignoreFileFor, matchPattern, cleanPath } from './dockerignore';
export { resolveSyntax, syntaxOf, detectSyntax, parseCheckDirective, BUILTIN_FRONTEND_VERSION, KNOWN_DIRECTIVES } from './directives';
export type { SyntaxInfo, CheckConfig } from './directives';
export { parseHeredocWord, heredocsFromLine, chompHeredocContent } from './heredoc';
export { INSTRUCTIONS, INSTRUCTION_FLAGS, HEREDOC_INSTRUCTIONS, flagAvailable, parseGoDuration, goDurationError, isKeyword } from './instructions/table';
export type { Keyword, FlagKind, FlagSpec } from './instructions/table';
export { commandsOf, parseCommand } from './instructions/parse';
export type { CommandOptions } from './instructions/parse';
export type * from './instructions/commands';
export type { MountFlag, MountField, MountSpec } from './instructions/mounts';
export { lint, lintShort, RULES, checkPolicy, applyCheckPolicy } from './lint';
export type { LintWarning, RuleInfo, CheckPolicy } from './lint';
