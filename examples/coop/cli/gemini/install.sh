#!/bin/sh
# Installs the gemini CLI package the way an installer script would: files under
# /usr/local/lib/gemini-cli, a command on PATH.
set -eu
here=$(dirname "$0")
mkdir -p /usr/local/lib/gemini-cli
cp -R "$here/bin" /usr/local/lib/gemini-cli/
chmod 0755 /usr/local/lib/gemini-cli/bin/gemini
ln -sf /usr/local/lib/gemini-cli/bin/gemini /usr/local/bin/gemini
echo "installed gemini-cli to /usr/local/lib/gemini-cli"
