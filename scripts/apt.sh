# Debian packages for the scripts (sourced, not run): one way to install them everywhere.
#
#   apt_install PKG...   installs the packages (no recommends, quietly); fetches the package
#                        lists at most once per script, and only when an install needs them
#
# Before installing it finishes any install that was cut off (`dpkg --configure -a`): a run
# killed while apt was working leaves dpkg "interrupted", and from then on every install on
# the machine fails until someone repairs it (a CI run once failed that way).

APT_LISTS_FRESH=0

apt_update() {
    [ "$APT_LISTS_FRESH" = 1 ] && return 0
    APT_LISTS_FRESH=1
    # A mirror mid-sync can fail one index (bookworm-security's armhf one did); the install
    # that follows says whether that matters.
    apt-get update -qq || echo "apt: apt-get update reported errors; going on" >&2
}

apt_repair() {
    if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
        echo "apt: dpkg was interrupted earlier; finishing its work (dpkg --configure -a)" >&2
        DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null
    fi
}

apt_install() {
    apt_repair
    export DEBIAN_FRONTEND=noninteractive
    # Installed straight from the lists on the machine when they know the packages; the
    # lists are fetched first otherwise (a fresh machine's lists are empty).
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
    apt_update
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# `apt-get download` of one package into the current folder, with the same list handling.
apt_download() {
    apt-get download "$1" >/dev/null 2>&1 && return 0
    apt_update
    apt-get download "$1"
}
