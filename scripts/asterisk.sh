#!/usr/bin/env bash
# Provision, configure, start and stop the Asterisk the line runs on.
#
#   scripts/asterisk.sh ensure   make an Asterisk >= 20 available (host's, or a Debian sid root)
#   scripts/asterisk.sh install  render asterisk-config/ and dialplan/ into its /etc/asterisk
#   scripts/asterisk.sh start    ensure + install + start, then wait until ARI answers
#   scripts/asterisk.sh stop     stop it (gracefully, then by force)
#   scripts/asterisk.sh status   exit 0 when ARI answers
#   scripts/asterisk.sh env      print the settings the service and tests need (sourceable)
#   scripts/asterisk.sh reload   install, then have the running Asterisk reload its dialplan, SIP and queues
#
# Settings (environment, all optional):
#   HELPLINE_ASTERISK_ROOT   where the debootstrap root lives   (/var/cache/helpline-pbx/asterisk-root)
#   HELPLINE_STATE_DIR       secrets and state outside git       (/var/lib/helpline-pbx)
#   HELPLINE_SIP_BIND        SIP UDP address                     (0.0.0.0)
#   HELPLINE_SIP_PORT        SIP UDP port                        (5060)
#   HELPLINE_ARI_PORT        ARI HTTP port, loopback only        (8088)
#   HELPLINE_ARI_APP         the Stasis application name          (helpline)
#   HELPLINE_AMI_PORT        AMI TCP port, loopback only         (5038)
#   HELPLINE_ARI_SESSION_LIMIT HTTP sessions Asterisk serves at once (200); the service reads the same
#                            setting and keeps its ARI requests in flight under it
#   HELPLINE_TRUNK_MATCH     the trunk's source address(es)      (127.0.0.2)
#   HELPLINE_TEST_RTP_TIMEOUT seconds without RTP before the trunk's leg ends (30); for tests only
#   HELPLINE_USE_HOST_ASTERISK=0  never use the host's asterisk even when it is recent enough
#   HELPLINE_ASTERISK_USER   the host user Asterisk runs as, created when missing (helpline-asterisk)
#   HELPLINE_BENCH=1         add the bench's reference paths (asterisk-config/bench/); for `make bench` only
#   HELPLINE_BENCH_CALLER_IP the bench trunk's source address    (127.0.0.77)
#   HELPLINE_BENCH_PHONE_PORT the bench phones' UDP port        (SIP port + 1000)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${HELPLINE_ASTERISK_ROOT:-/var/cache/helpline-pbx/asterisk-root}
STATE=${HELPLINE_STATE_DIR:-/var/lib/helpline-pbx}
SIP_BIND=${HELPLINE_SIP_BIND:-0.0.0.0}
SIP_PORT=${HELPLINE_SIP_PORT:-5060}
ARI_PORT=${HELPLINE_ARI_PORT:-8088}
ARI_APP=${HELPLINE_ARI_APP:-helpline}
TRUNK_MATCH=${HELPLINE_TRUNK_MATCH:-127.0.0.2}
AGI_HOST=${HELPLINE_AGI_HOST:-127.0.0.1}
AGI_PORT=${HELPLINE_AGI_PORT:-4573}
# Seconds without RTP before the trunk's leg is ended. Tests only may shorten it (never set it in production).
RTP_TIMEOUT=${HELPLINE_TEST_RTP_TIMEOUT:-30}
# The bench's reference paths (Queue() and a bare ARI router, reached from a bench-only source address) are
# rendered only when the bench asks for them: production configuration never carries them.
BENCH=${HELPLINE_BENCH:-0}
BENCH_CALLER_IP=${HELPLINE_BENCH_CALLER_IP:-127.0.0.77}
BENCH_PHONE_PORT=${HELPLINE_BENCH_PHONE_PORT:-$((SIP_PORT + 1000))}
BENCH_QUEUE_PHONE=127.0.0.78:$BENCH_PHONE_PORT
BENCH_ROUTER_PHONE=127.0.0.79:$BENCH_PHONE_PORT
ARI_USER=helpline
AMI_PORT=${HELPLINE_AMI_PORT:-5038}
# Asterisk's HTTP sessionlimit (http.conf), printed by `env` for the service, which derives from it how many
# ARI requests it sends at once. Each session is a thread in Asterisk: enough for bursts, not unbounded.
ARI_SESSION_LIMIT=${HELPLINE_ARI_SESSION_LIMIT:-200}
AMI_USER=helpline
# Asterisk runs as a system user of its own on the host. Inside the root the Debian package's user keeps its
# name, `asterisk`, but takes this user's uid and gid: the root's own uid (101) is another service's on many
# hosts (PostgreSQL's here), which would then own Asterisk's files and run it.
AST_USER=${HELPLINE_ASTERISK_USER:-helpline-asterisk}
# The packages the root needs: Asterisk, English and French prompts, music on hold.
PACKAGES=asterisk,asterisk-core-sounds-en-gsm,asterisk-core-sounds-fr-gsm,asterisk-moh-opsound-gsm

die() { echo "asterisk: $*" >&2; exit 1; }
say() { echo "asterisk: $*" >&2; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "this needs root rights (it builds a system root and runs Asterisk as its own user): run it as root, for example with sudo."
}

# Which Asterisk: "host" when the host has one of version 20 or newer, else "chroot".
mode() {
    if [ "${HELPLINE_USE_HOST_ASTERISK:-1}" != 0 ] && command -v asterisk >/dev/null 2>&1; then
        major=$(asterisk -V 2>/dev/null | sed -n 's/^Asterisk \([0-9]*\).*/\1/p')
        if [ -n "$major" ] && [ "$major" -ge 20 ]; then echo host; return; fi
    fi
    echo chroot
}

# In host mode our configuration lives in a folder of its own, so the host's /etc/asterisk is untouched.
etc_dir() { if [ "$(mode)" = host ]; then echo "$STATE/asterisk/etc"; else echo "$ROOT/etc/asterisk"; fi; }
run() { if [ "$(mode)" = host ]; then "$@"; else chroot "$ROOT" "$@"; fi; }
ast() {
    if [ "$(mode)" = host ]; then asterisk -C "$(etc_dir)/asterisk.conf" "$@"; else chroot "$ROOT" asterisk "$@"; fi
}

# The name Asterisk's user has where Asterisk runs: the host's user, or the root's `asterisk` with its ids.
run_user() { if [ "$(mode)" = host ]; then echo "$AST_USER"; else echo asterisk; fi; }

root_intact() {
    [ -f "$ROOT/.helpline-root-complete" ] &&
        chroot "$ROOT" asterisk -V 2>/dev/null | grep -Eq '^Asterisk (2[0-9]|[3-9][0-9])'
}

ensure() {
    if [ "$(mode)" = host ]; then return 0; fi
    need_root
    if root_intact; then return 0; fi
    command -v debootstrap >/dev/null 2>&1 ||
        die "debootstrap is missing: install it with 'apt-get install debootstrap' (make deps does it)."
    say "building an Asterisk 22 root from Debian sid in $ROOT (about a minute, a few hundred MB)..."
    rm -rf "$ROOT.tmp"
    mkdir -p "$(dirname "$ROOT")"
    if ! debootstrap --variant=minbase --include="$PACKAGES" sid "$ROOT.tmp" >"$ROOT.build.log" 2>&1; then
        tail -n 5 "$ROOT.build.log" >&2
        die "downloading Debian sid packages failed (see $ROOT.build.log): check the network or the apt proxy, then run 'make asterisk' again."
    fi
    touch "$ROOT.tmp/.helpline-root-complete"
    rm -rf "$ROOT"
    mv "$ROOT.tmp" "$ROOT"
    root_intact || die "the new root at $ROOT does not run Asterisk 20 or newer; remove it and retry."
    say "root ready: $(chroot "$ROOT" asterisk -V)"
}

# The host's Asterisk user: a system user with a group of its own, no home, no shell; made once.
ensure_host_user() {
    if ! getent group "$AST_USER" >/dev/null; then groupadd --system "$AST_USER"; fi
    if ! getent passwd "$AST_USER" >/dev/null; then
        useradd --system --gid "$AST_USER" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "helpline-pbx Asterisk" "$AST_USER"
    fi
}

# Give the root's `asterisk` user and group the host user's ids (a root built by an earlier version has
# 101), and hand every file the old ids owned in the root to the new ones, so no other host user keeps any.
align_root_user() {
    local uid gid old_uid old_gid
    uid=$(id -u "$AST_USER")
    gid=$(getent group "$AST_USER" | cut -d: -f3)
    old_uid=$(awk -F: '$1 == "asterisk" {print $3}' "$ROOT/etc/passwd")
    old_gid=$(awk -F: '$1 == "asterisk" {print $3}' "$ROOT/etc/group")
    [ -n "$old_uid" ] && [ -n "$old_gid" ] || die "the root at $ROOT has no asterisk user; remove it and retry."
    [ "$old_uid" = "$uid" ] && [ "$old_gid" = "$gid" ] && return 0
    if awk -F: -v id="$uid" '$1 != "asterisk" && $3 == id {found=1} END {exit !found}' "$ROOT/etc/passwd" ||
        awk -F: -v id="$gid" '$1 != "asterisk" && $3 == id {found=1} END {exit !found}' "$ROOT/etc/group"; then
        die "uid $uid or gid $gid of $AST_USER is taken by another user inside $ROOT; set HELPLINE_ASTERISK_USER to another user."
    fi
    say "giving the root's asterisk user the ids of $AST_USER ($uid:$gid, was $old_uid:$old_gid)"
    local f
    for f in passwd group; do
        awk -F: -v OFS=: -v uid="$uid" -v gid="$gid" -v file="$f" '
            $1 == "asterisk" { if (file == "passwd") { $3 = uid; $4 = gid } else { $3 = gid } } { print }' \
            "$ROOT/etc/$f" >"$ROOT/etc/$f.new"
        chmod --reference="$ROOT/etc/$f" "$ROOT/etc/$f.new"
        mv "$ROOT/etc/$f.new" "$ROOT/etc/$f"
    done
    find "$ROOT" -xdev -uid "$old_uid" -exec chown -h "$uid" {} +
    find "$ROOT" -xdev -gid "$old_gid" -exec chgrp -h "$gid" {} +
}

# Asterisk's configuration (ARI password included), logs, astdb and spool are its user's only: folders 0700,
# files 0600. Files it creates later get the same from the umask it is started with (start()).
private_tree() {
    local d
    for d in "$@"; do
        mkdir -p "$d"
        chown -R "$AST_USER:$AST_USER" "$d"
        chmod -R u+rwX,go-rwx "$d"
    done
}

# A generated secret kept in the state folder, outside git: secret NAME.
secret() {
    local f="$STATE/secrets/$1"
    if [ ! -s "$f" ]; then
        mkdir -p "$STATE/secrets"
        chmod 700 "$STATE/secrets"
        (umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$f")
    fi
    cat "$f"
}
ari_password() { secret ari-password; }

render() {
    sed -e "s|@ARI_PASSWORD@|$(ari_password)|g" -e "s|@ARI_USER@|$ARI_USER|g" \
        -e "s|@ARI_PORT@|$ARI_PORT|g" -e "s|@ARI_APP@|$ARI_APP|g" -e "s|@ARI_SESSION_LIMIT@|$ARI_SESSION_LIMIT|g" \
        -e "s|@AMI_PASSWORD@|$(secret ami-password)|g" -e "s|@AMI_USER@|$AMI_USER|g" -e "s|@AMI_PORT@|$AMI_PORT|g" \
        -e "s|@SIP_BIND@|$SIP_BIND|g" -e "s|@SIP_PORT@|$SIP_PORT|g" \
        -e "s|@TRUNK_MATCH@|$TRUNK_MATCH|g" -e "s|@AGI_HOST@|$AGI_HOST|g" -e "s|@AGI_PORT@|$AGI_PORT|g" -e "s|@RUN_USER@|$(run_user)|g" \
        -e "s|@RTP_TIMEOUT@|$RTP_TIMEOUT|g" -e "s|@ASTERISK_DIRS@|$1|g" \
        -e "s|@BENCH_CALLER_IP@|$BENCH_CALLER_IP|g" -e "s|@BENCH_QUEUE_PHONE@|$BENCH_QUEUE_PHONE|g" \
        -e "s|@BENCH_ROUTER_PHONE@|$BENCH_ROUTER_PHONE|g" "$2"
}

# Where Asterisk's modules live, seen from the host.
module_dir() {
    local base=/usr/lib pjsip
    [ "$(mode)" = chroot ] && base="$ROOT/usr/lib"
    pjsip=$(find "$base" -path '*/asterisk/modules/res_pjsip.so' -print -quit 2>/dev/null)
    [ -n "$pjsip" ] || die "no res_pjsip.so under $base: is Asterisk's modules package installed?"
    dirname "$pjsip"
}

# The members of struct NAME in an Asterisk header, in order, comments left out: members HEADER NAME.
members() {
    sed -n "/^struct $2 {/,/^};/p" "$1" | sed -e 's|/\*.*\*/||g' -e '/\/\*/,/\*\//d' | tr -d '\n' |
        sed -e 's/^struct [a-z_]* {//' -e 's/};$//' | tr ';' '\n' |
        sed -E 's/\(\*([a-z_]+)\).*/\1/; s/.*[ *]([a-z_]+)(\[[A-Z_]+\])?\s*$/\1/' | grep -v '^\s*$' | tr '\n' ' '
}

# res_helpline_dialog mirrors two of Asterisk's structures (it cannot include res_pjsip's headers, which
# need pjproject's): refuse to build it against headers whose structures are laid out otherwise.
check_mirrored_layouts() {
    local header="$1/usr/include/asterisk/res_pjsip_session.h" found
    found=$(members "$header" ast_sip_session_supplement)
    [ "$found" = "module method priority session_begin session_end session_destroy incoming_request incoming_response outgoing_request outgoing_response next response_priority session_create " ] ||
        die "Asterisk's session supplement is no longer laid out as asterisk-modules/res_helpline_dialog.c mirrors it (now: $found); update the module."
    found=$(members "$header" ast_sip_session | cut -d' ' -f1-5)
    [ "$found" = "exten endpoint contact inv_session channel" ] ||
        die "Asterisk's SIP session no longer starts as asterisk-modules/res_helpline_dialog.c mirrors it (now: $found); update the module."
}

# The project's own Asterisk modules (asterisk-modules/*.c), compiled against the headers of the very
# Asterisk release that runs them: Debian's asterisk-dev of the same version, unpacked rather than
# installed (installing it would pull in debhelper). Each is rebuilt only when its source or Asterisk's
# version changes, and installed beside Asterisk's own modules.
build_modules() {
    local version cache moddir
    version=$(run dpkg-query -W -f='${Version}' asterisk 2>/dev/null) ||
        die "cannot tell which Asterisk package is installed (dpkg-query asterisk failed)."
    cache="$STATE/build"
    moddir=$(module_dir)
    command -v gcc >/dev/null 2>&1 ||
        die "gcc is missing: it builds the project's Asterisk module ('apt-get install gcc libc6-dev'; make deps does it)."
    local headers="$cache/asterisk-dev-$version"
    if [ ! -f "$headers/.complete" ]; then
        say "fetching the Asterisk $version headers (asterisk-dev) to build the project's module..."
        rm -rf "$headers"
        mkdir -p "$cache"
        # Downloaded by the apt of the system Asterisk runs on, into a folder it can see.
        local inside download
        inside=$(run mktemp -d)
        if [ "$(mode)" = chroot ]; then download="$ROOT$inside"; else download="$inside"; fi
        # The package lists may be older than the mirror: refresh them once if the version is not found.
        if ! run sh -c "cd '$inside' && apt-get download -q 'asterisk-dev=$version'" >/dev/null 2>&1; then
            run apt-get update -qq >/dev/null 2>&1 || true
            run sh -c "cd '$inside' && apt-get download -q 'asterisk-dev=$version'" >/dev/null 2>&1 || {
                rm -rf "$download"
                die "could not download asterisk-dev $version (the headers of the Asterisk that runs): check the network; if Debian no longer has that version, remove $ROOT and run 'make asterisk' again."
            }
        fi
        dpkg-deb -x "$download"/asterisk-dev_*.deb "$headers"
        rm -rf "$download"
        touch "$headers/.complete"
    fi
    check_mirrored_layouts "$headers"
    local src name key
    for src in "$here"/asterisk-modules/*.c; do
        [ -f "$src" ] || continue
        name=$(basename "$src" .c)
        key=$( (cat "$src"; echo "$version") | sha256sum | cut -c1-16)
        if [ -f "$moddir/$name.so" ] && [ "$(cat "$moddir/$name.so.key" 2>/dev/null)" = "$key" ]; then continue; fi
        # The defines are those Asterisk's own build gives a module; warnings for its headers' style are off.
        gcc -std=gnu11 -fPIC -shared -O2 -g0 -Wall -Wextra -Wno-unused-parameter \
            -Wno-old-style-declaration -D_GNU_SOURCE -D_REENTRANT -DAST_MODULE="\"$name\"" \
            -DAST_MODULE_SELF_SYM="__internal_${name}_self" -I"$headers/usr/include" \
            -o "$moddir/$name.so.new" "$src" || die "building the Asterisk module $name failed (see above)."
        chmod 644 "$moddir/$name.so.new"
        mv "$moddir/$name.so.new" "$moddir/$name.so"
        echo "$key" >"$moddir/$name.so.key"
        say "built the Asterisk module $name for Asterisk $version"
    done
}

install_config() {
    ensure
    ensure_host_user
    local etc dirs
    etc=$(etc_dir)
    if [ "$(mode)" = host ]; then
        local base="$STATE/asterisk"
        mkdir -p "$base"/{run,log,spool,lib}
        # Asterisk's user must reach its folders through the state folder: search only, no listing.
        chmod 711 "$STATE"
        dirs="astrundir => $base/run\nastlogdir => $base/log\nastspooldir => $base/spool\nastvarlibdir => $base/lib\nastdbdir => $base/lib\nastkeydir => $base/lib/keys\nastdatadir => /usr/share/asterisk"
    else
        align_root_user
        dirs="; the Debian layout of the root"
    fi
    build_modules
    # Start from an empty folder: the package's sample files hold demo dialplans and CDR backends.
    rm -rf "$etc.new"
    (umask 077; mkdir -p "$etc.new")
    for f in "$here"/asterisk-config/*.conf "$here"/dialplan/*.conf; do
        (umask 077; render "$dirs" "$f" | sed 's/\\n/\n/g' >"$etc.new/$(basename "$f")")
    done
    if [ "$BENCH" = 1 ]; then
        # Each bench file extends the production file of the same name.
        for f in "$here"/asterisk-config/bench/*.conf; do
            (umask 077; render "$dirs" "$f" >>"$etc.new/$(basename "$f")")
        done
    fi
    rm -rf "$etc"
    mv "$etc.new" "$etc"
    install_prompts
    if [ "$(mode)" = chroot ]; then
        # Asterisk resolves the machine's own name at start-up; the root's hosts file must know it.
        grep -qw "$(hostname)" "$ROOT/etc/hosts" 2>/dev/null || echo "127.0.1.1 $(hostname)" >>"$ROOT/etc/hosts"
        private_tree "$etc" "$ROOT/var/lib/asterisk" "$ROOT/var/log/asterisk" "$ROOT/var/spool/asterisk" "$ROOT/run/asterisk"
    else
        private_tree "$etc" "$STATE/asterisk"
    fi
}

# The folder Asterisk reads a language's prompts from, seen from the host (the root's symlinks are absolute).
lang_dir() {
    if [ "$(mode)" = host ]; then
        readlink -f "/usr/share/asterisk/sounds/$1" 2>/dev/null || echo "/usr/share/asterisk/sounds/$1"
    else
        local inside
        inside=$(chroot "$ROOT" readlink -f "/usr/share/asterisk/sounds/$1" 2>/dev/null || echo "/usr/share/asterisk/sounds/$1")
        echo "$ROOT$inside"
    fi
}

# The line's own prompts, spoken by espeak-ng from prompts/<lang>/*.txt until the association records
# its own (a recorded prompts/<lang>/<name>.wav takes precedence).
install_prompts() {
    local cache="$STATE/prompts"
    if [ "$(mode)" = chroot ]; then
        # The French prompts ship as fr_CA_f_June; channels use the language "fr".
        ln -sfn fr_CA_f_June "$ROOT/usr/share/asterisk/sounds/fr"
    fi
    for dir in "$here"/prompts/*/; do
        [ -d "$dir" ] || continue
        local lang voice
        lang=$(basename "$dir")
        case "$lang" in fr) voice=fr-fr ;; *) voice=$lang ;; esac
        local sounds
        sounds=$(lang_dir "$lang")
        mkdir -p "$sounds/helpline" "$cache/$lang"
        for txt in "$dir"*.txt; do
            [ -f "$txt" ] || continue
            local name out
            name=$(basename "$txt" .txt)
            out="$sounds/helpline/$name.wav"
            if [ -f "$dir$name.wav" ]; then
                cp "$dir$name.wav" "$out"
                continue
            fi
            # Speak once per text: the cache key is the text itself.
            local key
            key=$(sha256sum "$txt" | cut -c1-16)
            if [ ! -f "$cache/$lang/$name.$key.wav" ]; then
                command -v espeak-ng >/dev/null && command -v sox >/dev/null ||
                    die "espeak-ng and sox are needed to make the prompts: 'apt-get install espeak-ng sox' (make deps does it)."
                espeak-ng -v "$voice" -s 150 -w "$cache/$lang/$name.raw.wav" -f "$txt"
                sox "$cache/$lang/$name.raw.wav" -r 8000 -c 1 -b 16 "$cache/$lang/$name.$key.wav"
                rm -f "$cache/$lang/$name.raw.wav"
            fi
            cp "$cache/$lang/$name.$key.wav" "$out"
        done
    done
}

ari_up() {
    curl -fsS -o /dev/null -m 2 -u "$ARI_USER:$(ari_password)" "http://127.0.0.1:$ARI_PORT/ari/asterisk/info"
}

pidfile() { if [ "$(mode)" = host ]; then echo "$STATE/asterisk/run/asterisk.pid"; else echo "$ROOT/run/asterisk/asterisk.pid"; fi; }

running_pid() {
    local p
    p=$(cat "$(pidfile)" 2>/dev/null || true)
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; fi
}

start() {
    need_root
    if [ -n "$(running_pid)" ] && ari_up 2>/dev/null; then say "already running"; return 0; fi
    install_config
    [ -n "$(running_pid)" ] && stop
    # Asterisk keeps the umask it is started with: what it creates later (a rotated log, astdb's journal, a
    # spool file) is then its user's only, like what install_config left.
    # -U/-G drop root; -n no colour; it daemonises and writes its pid file.
    # Open files: asterisk.conf's maxfiles asks for 65,536, which needs the right to raise the hard limit;
    # where that right is missing (some containers) the soft limit is at least raised to the hard one.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    (umask 077; ast -U "$(run_user)" -G "$(run_user)" -n >/dev/null 2>&1) || die "Asterisk did not start: run '$0 foreground' to see why."
    local deadline=$((SECONDS + 60))
    until ari_up 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            die "Asterisk started but ARI did not answer on 127.0.0.1:$ARI_PORT within 60 s; check $(etc_dir)/http.conf, or run '$0 foreground' to see its errors."
        fi
        if [ -z "$(running_pid)" ] && [ $((deadline - SECONDS)) -lt 55 ]; then
            die "Asterisk exited during start-up: run '$0 foreground' to see why."
        fi
        sleep 0.2
    done
    say "running, ARI on http://127.0.0.1:$ARI_PORT/ari (app '$ARI_APP'), SIP on udp $SIP_BIND:$SIP_PORT"
}

stop() {
    local p
    p=$(running_pid)
    [ -n "$p" ] || { say "not running"; return 0; }
    ast -rx "core stop now" >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || { say "stopped"; return 0; }; sleep 0.1; done
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || { say "stopped"; return 0; }; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    say "stopped (killed)"
}

print_env() {
    echo "HELPLINE_ARI_URL=http://127.0.0.1:$ARI_PORT/ari"
    echo "HELPLINE_ARI_USER=$ARI_USER"
    echo "HELPLINE_ARI_PASSWORD_FILE=$STATE/secrets/ari-password"
    echo "HELPLINE_ARI_APP=$ARI_APP"
    echo "HELPLINE_ARI_SESSION_LIMIT=$ARI_SESSION_LIMIT"
    echo "HELPLINE_AMI_PORT=$AMI_PORT"
    echo "HELPLINE_AMI_USER=$AMI_USER"
    echo "HELPLINE_AMI_PASSWORD_FILE=$STATE/secrets/ami-password"
    echo "HELPLINE_SIP_PORT=$SIP_PORT"
    echo "HELPLINE_ASTERISK_MODE=$(mode)"
    echo "HELPLINE_ASTERISK_ROOT=$ROOT"
    echo "HELPLINE_ASTERISK_PIDFILE=$(pidfile)"
    if [ "$BENCH" = 1 ]; then
        echo "HELPLINE_BENCH_CALLER_IP=$BENCH_CALLER_IP"
        echo "HELPLINE_BENCH_QUEUE_PHONE=$BENCH_QUEUE_PHONE"
        echo "HELPLINE_BENCH_ROUTER_PHONE=$BENCH_ROUTER_PHONE"
        echo "HELPLINE_BENCH_ROUTER_APP=$ARI_APP-router"
    fi
}

# A new configuration into the running Asterisk without a restart (calls, registrations and the listeners'
# accounts pushed over ARI survive; the service's dialplan globals too: clearglobalvars = no).
reload() {
    need_root
    install_config
    [ -n "$(running_pid)" ] || die "Asterisk is not running: use '$0 start'."
    ast -rx "module reload res_pjsip.so" >/dev/null
    ast -rx "dialplan reload" >/dev/null
    ast -rx "queue reload all" >/dev/null
}

case "${1:-}" in
    ensure) ensure ;;
    install) need_root; install_config ;;
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    reload) reload ;;
    status) ari_up ;;
    foreground) need_root; install_config; umask 077; ast -U "$(run_user)" -G "$(run_user)" -f -vvv -c ;;
    cli) shift; ast -rx "$*" ;;
    env) print_env ;;
    *) echo "usage: $0 ensure|install|start|stop|restart|reload|status|foreground|cli CMD|env" >&2; exit 2 ;;
esac
