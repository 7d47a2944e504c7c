#!/bin/sh
# Print the image's modules.conf: autoload = no, the modules named in the list (sh
# modules-conf.sh modules.list > /etc/asterisk/modules.conf), then every res_ari_* and
# res_stasis_* module this Asterisk ships (ARI's resources) but res_stasis_test. A listed module
# the package lacks stops the image build, naming it. ASTERISK_CONF: where astmoddir is read.
set -eu
list=$1
conf=${ASTERISK_CONF:-/etc/asterisk/asterisk.conf}
moddir=$(sed -n 's/^[[:space:]]*astmoddir[[:space:]]*=>[[:space:]]*//p' "$conf" | tail -n 1)
if [ -z "$moddir" ] || [ ! -d "$moddir" ]; then
    echo "modules-conf.sh: no module directory (astmoddir) in $conf" >&2
    exit 1
fi

missing=""
printf '%s\n' "; Generated at image build by modules-conf.sh from modules.list: only these load." \
    "[modules]" "autoload = no"
for name in $(sed -e 's/#.*//' "$list"); do
    if [ -f "$moddir/$name.so" ]; then
        printf 'load = %s.so\n' "$name"
    else
        missing="$missing $name"
    fi
done
for path in "$moddir"/res_ari_*.so "$moddir"/res_stasis_*.so; do
    [ -f "$path" ] || continue
    file=$(basename "$path")
    case "$file" in
        res_stasis_test.so) continue ;;
    esac
    grep -qx "${file%.so}" "$list" || printf 'load = %s\n' "$file"
done
if [ -n "$missing" ]; then
    echo "modules-conf.sh: this Asterisk lacks required modules:$missing" >&2
    exit 1
fi
