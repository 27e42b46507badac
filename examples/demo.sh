#!/usr/bin/env bash
# The Quick start's main job, run as an ordinary user (see quickstart.sh).
set -euo pipefail
: "${WORK:?}" "${REPO:?}"
img() { "$REPO/bin/img" --state "$WORK/state" "$@"; }

# A local registry (Debian's docker-registry) on a free loopback port.
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$WORK/registry.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $WORK/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$PORT }
log: { level: error }
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

REG=localhost:$PORT
echo "== base image: busybox from Debian's busybox-static → $REG/library/busybox:latest"
(cd "$REPO" && node --import tsx -e "require('./test/fixtures/images').makeBusyboxImage().then((i) => i.writeOciLayout('$WORK/busybox-oci', 'latest'))") >/dev/null
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/busybox-oci:latest" "docker://$REG/library/busybox:latest"

echo "== img build"
img build --build-arg BASE="$REG/library/busybox:latest" -t "$REG/hello:latest" "$REPO/examples/hello"
echo "== img build again (everything cached)"
img build --build-arg BASE="$REG/library/busybox:latest" -t "$REG/hello:latest" "$REPO/examples/hello"
echo "== img ls"
img ls
echo "== img push"
img push "$REG/hello:latest"
echo "== the image filesystem, exported with -o type=local"
img build --build-arg BASE="$REG/library/busybox:latest" -o "type=local,dest=$WORK/rootfs" "$REPO/examples/hello" 2>/dev/null
cat "$WORK/rootfs/home/app/greeting.txt"
img save -o "$WORK/hello.tar" "$REG/hello:latest"
skopeo inspect --config "docker-archive:$WORK/hello.tar" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s).config;console.log("config: User=%s WorkingDir=%s Cmd=%j",c.User,c.WorkingDir,c.Cmd)})'
echo "== done: $REG/hello:latest built, stored, pushed and saved by an unprivileged user"
