// Extra files of the busybox fixture the snapshot scenarios use.
export const FILES = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
  '/etc/group': 'root:x:0:\n',
  '/data/keep/a': 'a\n',
  '/data/gone/b': 'b\n',
  '/opq/old': 'old\n',
};
