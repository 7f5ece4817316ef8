#!/bin/sh
# Installs the claude CLI package the way an installer script would: files under
# /usr/local/lib/claude-cli, a command on PATH.
set -eu
here=$(dirname "$0")
mkdir -p /usr/local/lib/claude-cli
cp -R "$here/bin" /usr/local/lib/claude-cli/
chmod 0755 /usr/local/lib/claude-cli/bin/claude
ln -sf /usr/local/lib/claude-cli/bin/claude /usr/local/bin/claude
echo "installed claude-cli to /usr/local/lib/claude-cli"
