// The browser-safe library entry, `img/frontend` in package.json's exports: the
// Dockerfile frontend (parser, typed commands, checks, expansion, .dockerignore)
// and its conversion to a build graph, with the graph's types. Everything it
// reaches is pure TypeScript (docs/architecture.md: frontend and graph import
// no `node:` module), so bundlers take it for the browser or a WebAssembly host;
// test/frontend/browser.test.ts runs it in headless Chromium.
export * from './dockerfile/index';
export { dockerfileToGraph, convertDockerfile } from './dockerfile/convert';
export type { ConvertOptions, NamedContext } from './dockerfile/convert';
export type * from '../graph/types';
export { parsePlatform, formatPlatform } from '../images/platform';
export type { ImageConfig, Platform } from '../images/types';
