# Cross-compiling the addon and img-launch for linux-arm64 (glibc) on a Debian
# amd64 host (scripts/prebuild.js arm64). Needs Debian's g++-aarch64-linux-gnu
# and zlib1g-dev:arm64 (dpkg --add-architecture arm64); libisal-dev:arm64 and
# libzstd-dev:arm64 are optional, as on the native build: the addon only
# dlopens those libraries, so their headers decide what it is built for.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian multiarch: arm64 libraries live in /usr/lib/aarch64-linux-gnu, headers
# in /usr/include (shared) and /usr/include/aarch64-linux-gnu. Naming the
# library architecture makes find_library look there and never in the host's
# x86_64 directory.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
