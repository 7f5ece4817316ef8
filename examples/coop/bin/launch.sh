#!/bin/sh
# coopmux's entrypoint: check the tools, then hand over to coopmux.
set -eu
kubectl version
exec coopmux "$@"
