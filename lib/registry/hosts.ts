// Where a reference's domain is served and how it is spoken to.
import * as net from 'node:net';

export const DOCKER_HUB = 'docker.io';
// docker's config.json has always keyed Docker Hub credentials by the v1 index URL.
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

export interface RegistryHost {
  // The domain as written in references ("docker.io", "127.0.0.1:5000").
  name: string;
  // host[:port] the API is served on ("registry-1.docker.io").
  apiHost: string;
  // Key used in docker's config.json.
  configKey: string;
  // Plain HTTP from the start (loopback registries).
  plainHttp: boolean;
  // --insecure-registry: try HTTPS without verification, fall back to plain HTTP.
  insecure: boolean;
}

function hostnameOf(hostport: string): string {
  if (hostport.startsWith('[')) return hostport.slice(1, hostport.indexOf(']'));
  const colons = hostport.split(':').length - 1;
  if (colons > 1) return hostport; // bare IPv6
  return hostport.split(':')[0];
}

// localhost, 127.0.0.0/8 and ::1 are reached over plain HTTP, as docker does.
export function isLoopback(hostport: string): boolean {
  const host = hostnameOf(hostport).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

// "https://index.docker.io/v1/", "http://localhost:5000/", "registry.example.com" → the registry
// domain as references write it (docker.io for every Docker Hub spelling).
export function normalizeServer(server: string): string {
  let s = server.trim().replace(/^[a-z]+:\/\//i, '');
  s = s.replace(/\/.*$/, '');
  const lower = s.toLowerCase();
  if (lower === 'index.docker.io' || lower === 'registry-1.docker.io' || lower === 'docker.io' || lower === 'registry.hub.docker.com') {
    return DOCKER_HUB;
  }
  return s;
}

export function resolveHost(domain: string, opts: { insecure?: boolean } = {}): RegistryHost {
  const name = normalizeServer(domain);
  if (name === DOCKER_HUB) {
    return { name, apiHost: 'registry-1.docker.io', configKey: DOCKER_HUB_CONFIG_KEY, plainHttp: false, insecure: Boolean(opts.insecure) };
  }
  return { name, apiHost: name, configKey: name, plainHttp: isLoopback(name), insecure: Boolean(opts.insecure) };
}
