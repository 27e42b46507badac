# syntax=docker/dockerfile:1
# img's own image: the single binary, runc, the id-map helpers, fuse-overlayfs,
# git and CA certificates, run as `user` (uid 1000) with 65536-wide
# subordinate ranges. Build it (with img itself, or docker) from a checkout:
#
#   npm ci && npm run build:sea        # → build/sea/img
#   img build -t img .
#
# and run it as README.md's "Running with Docker" and "Running with
# Kubernetes" show (deploy/kubernetes/ holds a Job).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fuse-overlayfs git libcap2-bin runc uidmap \
 && rm -rf /var/lib/apt/lists/*

# newuidmap/newgidmap get file capabilities instead of the setuid bit: a
# setuid-root helper opens the id map as root, and the kernel then wants
# CAP_SYS_ADMIN, which Docker's and Kubernetes' default capability sets lack
# ("newuidmap: write to uid_map failed: Operation not permitted"). With
# cap_setuid/cap_setgid the helper keeps the user's uid, owner of the new
# namespace, and the default set suffices.
RUN chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap \
 && setcap cap_setuid=ep /usr/bin/newuidmap \
 && setcap cap_setgid=ep /usr/bin/newgidmap \
 && useradd --create-home --uid 1000 --user-group --shell /bin/bash user \
 && echo user:100000:65536 >/etc/subuid \
 && echo user:100000:65536 >/etc/subgid \
 && mkdir -p /home/user/.local/share/img \
 && chown -R user:user /home/user

COPY build/sea/img /usr/local/bin/img

USER user
WORKDIR /home/user
ENV HOME=/home/user USER=user
# The state dir must be a volume: overlayfs cannot use the container's own
# (overlay) filesystem as its upper layer, and the cache should outlive the container.
VOLUME /home/user/.local/share/img
ENTRYPOINT ["img"]
CMD ["--help"]
