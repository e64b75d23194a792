#!/usr/bin/env bash
# Installs the distemu command as a .NET global tool (package id DistEmu.Client) from this checkout: packs
# src/Client into artifacts/tool and installs it from there, or updates an earlier install. Run it again after
# pulling to get the new build.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
feed="$repo/artifacts/tool"
mkdir -p "$feed"
dotnet pack "$repo/src/Client" -c Release -o "$feed" --nologo
if dotnet tool list --global | awk 'NR > 2 { print tolower($1) }' | grep -qx "distemu.client"; then
  dotnet tool update --global --add-source "$feed" DistEmu.Client
else
  dotnet tool install --global --add-source "$feed" DistEmu.Client
fi
tools="$HOME/.dotnet/tools"
case ":$PATH:" in
  *":$tools:"*) echo "distemu is installed: run 'distemu --help'" ;;
  *) echo "distemu is installed in $tools, which is not on your PATH: add it, e.g."
     echo "  echo 'export PATH=\"\$PATH:$tools\"' >> ~/.bashrc && export PATH=\"\$PATH:$tools\"" ;;
esac
