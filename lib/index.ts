// Public library API of img (package "main"). Add exports; do not remove.
export { ContentStore } from './content/store';
export { ImageStore, type ImageRecord } from './images/store';
export { parseReference, formatReference, familiarName, normalizeName, type Reference } from './images/reference';
export { collectGarbage, withStoreLock, registerCacheRoot, removeCacheRoot, pruneIngest } from './images/gc';
export { writeDockerArchive } from './export/docker-archive';
export { writeOciArchive, type ExportImage } from './export/oci-layout';
export { parseDockerfile, expandWord, expandWords, parseDockerignore, PatternMatcher, DockerfileError } from './frontend/dockerfile/index';
export { convertDockerfile, dockerfileToGraph, type ConvertOptions } from './frontend/dockerfile/convert';
export type * from './graph/types';
export { GraphBuilder, topoOrder, prune } from './graph/builder';
export { sha256Hex, vertexDigest, canonicalJson } from './graph/digest';
export { RegistryClient, type ClientOptions, type PushBlobResult } from './registry/client';
export { pullImage, type PullOptions, type PullResult, type PullEvent } from './registry/pull';
export { pushImage, type PushOptions, type PushResult, type PushEvent } from './registry/push';
export { getCredentials, storeCredentials, eraseCredentials, dockerConfigPath, type AuthConfig } from './registry/credentials';
export { login, type LoginOptions } from './registry/login';
export { closeAgents } from './registry/transport';
export { hostPlatform, parsePlatform, formatPlatform, matchPlatform, selectManifest, normalizePlatform } from './images/platform';
