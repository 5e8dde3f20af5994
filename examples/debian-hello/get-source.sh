#!/bin/sh
# Fetch Debian's own GNU hello source package (2.10-3, the one Debian 12
# ships) into DIR (default: this directory), from the Debian archive this
# machine's apt uses ($BUILDHAUS_DEBIAN_MIRROR overrides it), and check every
# file against the sha256 sums its .dsc lists.
set -eu
dir="${1:-$(dirname "$0")}"
mirror="${BUILDHAUS_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # The first Debian archive in apt's sources: one-line or deb822 style.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) \(bookworm\|stable\|trixie\|bullseye\) .*/\2/p' | head -n 1)
fi
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
fi
if [ -z "$mirror" ]; then
  echo "no Debian archive in apt's sources; set BUILDHAUS_DEBIAN_MIRROR to a Debian mirror's URL" >&2
  exit 1
fi
mirror=${mirror%/}
fetch () {
  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"; else wget -q -O "$2" "$1"; fi
}
cd "$dir"
fetch "$mirror/pool/main/h/hello/hello_2.10-3.dsc" hello_2.10-3.dsc
# The Checksums-Sha256 block of the .dsc: " <sha256> <size> <file>" lines.
sed -n '/^Checksums-Sha256:/,/^[^ ]/p' hello_2.10-3.dsc | sed -n 's/^ \([0-9a-f]\{64\}\) [0-9]* \(.*\)$/\1  \2/p' > hello.sha256
while read -r _sum file; do fetch "$mirror/pool/main/h/hello/$file" "$file"; done < hello.sha256
sha256sum -c hello.sha256
rm hello.sha256
