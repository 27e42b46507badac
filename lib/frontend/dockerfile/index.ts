// Public API of the Dockerfile frontend's text layer (pure TypeScript; bundles
// for a neutral platform). The converter to the build graph lives beside it.
export type * from './ast';
export { DockerfileError, ShellExpansionError, locateShellError, suggest, editDistance } from './errors';
export type { DockerfileErrorOptions } from './errors';
export { parseDockerfile, syntaxOf, extractFlags, parseWords } from './parser';
export type { ParseOptions } from './parser';
export { expandWord, expandWords, lexWords, matchShellPattern } from './shell';
export type { EnvLookup, ExpandResult, ExpandOptions, LexerOptions } from './shell';
export { parseDockerignore, PatternMatcher, dockerignoreFileFor, matchPattern, cleanPath } from './dockerignore';
export { resolveSyntax, detectSyntax, parseCheckDirective, BUILTIN_FRONTEND_VERSION, KNOWN_DIRECTIVES } from './directives';
export type { SyntaxInfo, CheckConfig } from './directives';
export { parseHeredocWord, heredocsFromLine, chompHeredocContent } from './heredoc';
export { INSTRUCTIONS, INSTRUCTION_FLAGS, HEREDOC_INSTRUCTIONS, flagAvailable, parseGoDuration, goDurationError, isKeyword } from './instructions';
export type { Keyword, FlagKind, FlagSpec } from './instructions';
