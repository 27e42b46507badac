// What diagnostics need to know about rootless operation on this host: the
// addon's probe (kernel, ids, user namespaces, overlayfs, fuse) plus the
// caller's subordinate id ranges and the uidmap helpers that apply them.
import { addonPath, loadAddon, type HostProbe } from '../host/index';
import { currentUserName, findHelper, readSubIds, type IdRange } from './idmap';

export interface HostReport extends HostProbe {
  subuid: IdRange[];
  subgid: IdRange[];
  newuidmap?: string;
  newgidmap?: string;
  addonPath: string;
}

export async function probeHost(): Promise<HostReport> {
  const p = loadAddon().probe();
  const user = currentUserName();
  const [subuid, subgid] = await Promise.all([readSubIds('/etc/subuid', user), readSubIds('/etc/subgid', user)]);
  return { ...p, subuid, subgid, newuidmap: findHelper('newuidmap'), newgidmap: findHelper('newgidmap'), addonPath: addonPath() };
}
