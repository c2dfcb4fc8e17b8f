#!/usr/bin/env bash
# A second LAMMPS for tests/engines/test_other_lammps.py: Debian's lammps + liblammps-dev
# (LAMMPS 29 Sep 2021, OpenMPI), and the headers of the same release's sources, which
# liblammps-dev does not ship (it has the library API only; a pair style needs pair.h,
# neighbor.h, ...).  Headers go to build/debian-lammps/src.  Best effort: without apt or
# root the test skips and says why.
set -uo pipefail
cd "$(dirname "$0")/.."
dest=build/debian-lammps
if [ -f "$dest/src/pair.h" ] && [ -x /usr/bin/lmp ]; then exit 0; fi
command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || { echo "debian_lammps.sh: no apt-get as root; skipped"; exit 0; }

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s lammps liblammps-dev nlohmann-json3-dev >/dev/null 2>&1; then
  apt-get install -y -q lammps liblammps-dev nlohmann-json3-dev >/dev/null || {
    apt-get update -q >/dev/null && apt-get install -y -q lammps liblammps-dev nlohmann-json3-dev >/dev/null; } \
    || { echo "debian_lammps.sh: apt-get install failed; skipped"; exit 0; }
fi

sources=/etc/apt/sources.list.d/multiscale-debian-src.sources
if [ ! -f "$sources" ]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$sources"
  apt-get update -q >/dev/null
fi
work=$(mktemp -d)
(cd "$work" && apt-get source --download-only -q lammps >/dev/null 2>&1) \
  || { echo "debian_lammps.sh: apt-get source lammps failed; skipped"; rm -rf "$work"; exit 0; }
mkdir -p "$dest/src"
tar -xJf "$work"/lammps_*.orig.tar.xz -C "$work" --wildcards '*/src/*.h' '*/src/fmt/*'
cp -r "$work"/*/src/. "$dest/src/"
rm -rf "$work"
echo "debian_lammps.sh: LAMMPS $(sed -n 's/.*LAMMPS_VERSION "\(.*\)"/\1/p' "$dest/src/version.h") headers in $dest/src"
