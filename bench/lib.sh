# bench/lib.sh: what bench/run and bench/fs share. Sourced, not run; the caller sets `root` (the
# workspace) and `me` (its name, for messages) first.

say() { echo "$me: $*" >&2; }
die() { echo "$me: $*" >&2; exit 1; }

# The newest built pair: .cargo/config.toml names a target, so cargo puts it under
# target/x86_64-unknown-linux-gnu/release; a plain target/release is used if that is newer.
find_release() {
    local d best=""
    for d in "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release"; do
        [ -x "$d/cloister" ] && [ -x "$d/cloister-rt" ] || continue
        if [ -z "$best" ] || [ "$d/cloister" -nt "$best/cloister" ]; then best=$d; fi
    done
    echo "$best"
}

# Copies a built pair to DIR and sets `rel` (where it came from) and `cl` (the copy of
# `cloister`): the pair in FROM if given (used as it is when FROM is DIR), else the newest
# build, made with cargo if there is none. Measuring a private copy means a rebuild during the
# run cannot mix versions.
private_pair() { # DIR [FROM]
    local dir=$1
    rel=${2:-}
    if [ -n "$rel" ]; then
        rel=$(cd "$rel" && pwd) || die "no directory $2"
        [ -x "$rel/cloister" ] && [ -x "$rel/cloister-rt" ] || die "$rel has no cloister and cloister-rt"
        if [ "$rel" = "$(mkdir -p "$dir" && cd "$dir" && pwd)" ]; then
            cl=$dir/cloister
            "$cl" run -- /bin/true || die "'$cl run -- /bin/true' fails"
            return
        fi
    else
        rel=$(find_release)
    fi
    if [ -z "$rel" ]; then
        say "building cloister (cargo build --release)"
        (cd "$root" && cargo build --release)
        rel=$(find_release)
        [ -n "$rel" ] || die "cargo build --release made no cloister binary"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -p "$rel/cloister" "$rel/cloister-rt" "$dir/"
    cl=$dir/cloister
    "$cl" run -- /bin/true ||
        die "'cloister run -- /bin/true' fails; rebuild with cargo build --release"
}

# Optional comparisons: installed only when missing, as root, with apt-get; failure is fine.
apt_install() {
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
    say "installing $1 (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
            apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; }
}

# Arithmetic and formatting (awk, so no bc needed).
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
min() { awk 'NR == 1 || $1 < m { m = $1 } END { print m }'; }
ns() { calc "sprintf(\"%.0f ns\", ($1))"; }
ms() { calc "sprintf(\"%.2f ms\", ($1))"; }
secs() { calc "sprintf(\"%.2f s\", ($1))"; }
ratio() { calc "sprintf(\"%.2f×\", ($1) / ($2))"; }
met() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo yes; else echo "**no**"; fi; }
kib() { calc "sprintf(\"%.1f MiB\", ($1) / 1024)"; }
# Field F of the line labelled L in FILE (the spawn helper's output).
field() { awk -v l="$1" -v f="$2" '$1 == l { print $f }' "$3"; }
