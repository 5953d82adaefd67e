#!/usr/bin/env bash
# Fetches real photos (Tux Paint stamps, GPL-2+, cut out on transparent backgrounds) from
# Debian's tuxpaint-stamps-default package into data/tuxpaint/:
#   fruit/       the fruit photos the data sets are built from
#   vegetables/  vegetables, for the "not a fruit" checks
#   objects/     other things (animals, plants, festive things, nuts, pizza), for the
#                "not a fruit" checks too
#   clutter/     everyday things (household, hobbies, vehicles, sports, town, ...): the
#                cluttered backgrounds of the phone-like training views, never tested on
# Idempotent: does nothing when all four folders already exist.
# On x86-64 it also installs nasm when missing: the README's first command builds the
# engine right after, and libjpeg-turbo's SIMD decoder is assembled with nasm when cargo
# first builds it (installing nasm later rebuilds nothing; fruits-core's build warns).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt.sh

case "$(uname -m)" in
    x86_64 | i?86)
        if ! command -v nasm > /dev/null; then
            echo "fetch-photos: installing nasm (libjpeg-turbo's SIMD decoder is assembled with it)" >&2
            apt_install nasm
        fi
        ;;
esac

dest=data/tuxpaint
if compgen -G "$dest/fruit/*.png" > /dev/null && compgen -G "$dest/clutter/*.png" > /dev/null \
    && compgen -G "$dest/objects/*.png" > /dev/null; then
    echo "fetch-photos: $dest/fruit already present"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt_download tuxpaint-stamps-default)
dpkg -x "$tmp"/tuxpaint-stamps-default_*.deb "$tmp/root"
stamps="$tmp/root/usr/share/tuxpaint/stamps/food"

all="$tmp/root/usr/share/tuxpaint/stamps"
mkdir -p "$dest.partial/fruit" "$dest.partial/vegetables" "$dest.partial/objects" "$dest.partial/clutter"
# Only the photos at the top of each folder (not the cartoon/ subfolder).
find "$stamps/fruit" -maxdepth 1 -name '*.png' -exec cp {} "$dest.partial/fruit/" \;
find "$stamps/vegetables" -maxdepth 1 -name '*.png' -exec cp {} "$dest.partial/vegetables/" \;
# copy_flat FOLDER DEST: every stamp below FOLDER (no cartoons), named after its path
# (plants/flowers/rose.png -> plants_flowers_rose.png) so that no two collide.
copy_flat() {
    (cd "$all" && find "$1" -name '*.png' -not -path '*/cartoon/*') | while read -r f; do
        cp "$all/$f" "$2/$(echo "$f" | tr '/' '_')"
    done
}
for folder in animals plants seasonal food/nuts food/spices; do copy_flat "$folder" "$dest.partial/objects"; done
cp "$all/food/pizza.png" "$dest.partial/objects/food_pizza.png"
# A rambutan is a fruit (and no fruit class here), not "something else".
rm -f "$dest.partial/objects/plants_trees_rambutan.png"
for folder in household hobbies vehicles sports medical military space town clothes; do
    copy_flat "$folder" "$dest.partial/clutter"
done
cp "$tmp/root/usr/share/doc/tuxpaint-stamps-default/copyright" "$dest.partial/COPYRIGHT"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "fetch-photos: $(ls "$dest/fruit" | wc -l) fruit, $(ls "$dest/vegetables" | wc -l) vegetable," \
    "$(ls "$dest/objects" | wc -l) other object and $(ls "$dest/clutter" | wc -l) clutter stamps in $dest"
