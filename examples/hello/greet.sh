#!/bin/sh
# Prints a greeting that proves the RUN step ran inside the build container.
echo "$1 from img, built in a rootless container"
echo "kernel: $(uname -sr), uid inside: $(id -u)"
