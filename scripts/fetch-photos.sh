#!/usr/bin/env bash
# Fetches real fruit and vegetable photos (Tux Paint stamps, GPL-2+) from Debian's
# tuxpaint-stamps-default package into data/tuxpaint/{fruit,vegetables}.
# Idempotent: does nothing when data/tuxpaint/fruit already exists.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=data/tuxpaint
if [ -d "$dest/fruit" ] && compgen -G "$dest/fruit/*.png" > /dev/null; then
    echo "fetch-photos: $dest/fruit already present"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A machine whose package lists were never fetched knows no package: fetch them once.
(cd "$tmp" && { apt-get download tuxpaint-stamps-default || { apt-get update -qq && apt-get download tuxpaint-stamps-default; }; })
dpkg -x "$tmp"/tuxpaint-stamps-default_*.deb "$tmp/root"
stamps="$tmp/root/usr/share/tuxpaint/stamps/food"

mkdir -p "$dest.partial/fruit" "$dest.partial/vegetables"
# Only the photos at the top of each folder (not the cartoon/ subfolder).
find "$stamps/fruit" -maxdepth 1 -name '*.png' -exec cp {} "$dest.partial/fruit/" \;
find "$stamps/vegetables" -maxdepth 1 -name '*.png' -exec cp {} "$dest.partial/vegetables/" \;
cp "$tmp/root/usr/share/doc/tuxpaint-stamps-default/copyright" "$dest.partial/COPYRIGHT"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "fetch-photos: $(ls "$dest/fruit" | wc -l) fruit, $(ls "$dest/vegetables" | wc -l) vegetable photos in $dest"
