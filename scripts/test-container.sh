#!/usr/bin/env bash
# The image and the DaemonSet's privileges, run for real (root; podman; no cluster, no
# registry needed):
#
# 1. a Debian 12 base image made here with debootstrap from Debian's mirror and imported into
#    podman (cached: made once, reused by later runs);
# 2. the image built from deploy/Containerfile as a user builds it (`podman build`, target
#    `prebuilt` with the binaries cargo just built; `--from-source`: the default target, which
#    compiles the workspace in the image), tagged with the manifest's image name; its size;
# 3. the DaemonSet that `kubectl kustomize deploy/` renders, translated one to one into
#    `podman run` options by scripts/daemonset-podman.py (the same capabilities and no
#    others, host PID and network, the same mounts, read-only root filesystem, the tmp
#    emptyDir, resources, command, args, env);
# 4. the recorder in that container, checked from the host: its capabilities are exactly the
#    manifest's, its compression threads run at a lower priority, its peak memory fits the
#    limit;
# 5. stand-in pods (network namespaces joined by veths, their processes in cgroups under
#    /kubepods as kubelet's cgroupfs driver places pods: the manifest records pods only,
#    --pods-only) with real traffic: curl → nginx, redis-cli → redis-server, and a curl from
#    the host (a node process, whose socket events must not be recorded); the manifest's probe commands through `podman exec`;
#    `juno-record seal` through `podman exec`; the archives copied out as `kubectl cp` does
#    (`tar cf -` in the container, `tar xf -` here); `kubectl juno collect` (deploy/kubectl-juno,
#    with `podman exec` standing in for `kubectl exec`) seals and copies; `juno-analyze` on the
#    host lists every request; the veths are described by their namespaces' names; SIGTERM
#    (`podman stop`, the manifest's grace period) seals the current file.
#
# The kube source is off: there is no API server, and without the in-cluster environment the
# recorder records standalone (its arguments are the manifest's, unchanged).
#
#   scripts/test-container.sh                 # the test (CI: scripts/test.sh)
#   scripts/test-container.sh --from-source   # the same, on an image compiled in its build stage
#   scripts/test-container.sh --drop-each     # then once per capability, without it: what breaks
#
# Binaries: JUNO_BIN_DIR if set (a directory with juno-record and juno-analyze), else what
# `cargo build --release` makes. Kept between runs: the base image (JUNO_CONTAINER_BASE) and
# its root file system (in JUNO_CONTAINER_CACHE); each run starts JUNO_CONTAINER_WORK afresh. Podman on this machine needs runc and no default rlimits
# (../shared/notes/containers-and-uprobes-on-this-machine.md): a containers.conf of ours.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-netns.sh
. scripts/lib-netns.sh

FROM_SOURCE=0
DROP_EACH=0
for a in "$@"; do
    case $a in
        --from-source) FROM_SOURCE=1 ;;
        --drop-each) DROP_EACH=1 ;;
        *) echo "usage: $0 [--from-source] [--drop-each]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "test-container: must run as root (podman, network namespaces, eBPF)" >&2
    exit 1
fi

log() { printf 'test-container: %s\n' "$*"; }
fail() { printf 'test-container: FAILED: %s\n' "$*" >&2; exit 1; }
START=$SECONDS
lap() { printf '%ss' $((SECONDS - ${1:-$START})); }

CACHE=${JUNO_CONTAINER_CACHE:-/var/cache/juno/container}
WORK=${JUNO_CONTAINER_WORK:-/var/tmp/juno-test-container}
MIRROR=${JUNO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TOOLCHAIN=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
BASE=${JUNO_CONTAINER_BASE:-localhost/juno-base:bookworm}
RUST_BASE=localhost/juno-rust:$TOOLCHAIN-bookworm
CTR=jctr-recorder
NODE=jctr-node
# Stand-in pods: names and a subnet of this test's own.
SRV_NS=jctr-srv; SRV_IF=jctrs-h; SRV_HOST=10.231.71.1; SRV_ADDR=10.231.71.2
CLI_NS=jctr-cli; CLI_IF=jctrc-h; CLI_HOST=10.231.72.1; CLI_ADDR=10.231.72.2

# --- what it needs -------------------------------------------------------------------------
missing=()
for p in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for t in kubectl nginx curl redis-server redis-cli jq python3 ip tshark zstd; do
    command -v "$t" >/dev/null || fail "$t is missing: run scripts/setup.sh"
done
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing: run scripts/setup.sh"

mkdir -p "$CACHE"
# Debian 12's podman on this machine: runc (crun refuses hybrid cgroups) and no default
# rlimits (raising them inside the container is refused here).
export CONTAINERS_CONF=$CACHE/containers.conf
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
PODMAN_RUN_QUIRKS=(--ulimit host)

# --- cleanup (also of a previous run that was killed) --------------------------------------
FWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
    podman rm -f -t 0 "$CTR" >/dev/null 2>&1 || true
    for ns in "$SRV_NS" "$CLI_NS"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    done
    netns_down "$SRV_NS" "$SRV_IF"
    netns_down "$CLI_NS" "$CLI_IF"
    pod_cgroups_down
    echo "$FWD_BEFORE" >/proc/sys/net/ipv4/ip_forward
}
# The stand-in pods' cgroups (cgroup v2: /sys/fs/cgroup, or its unified/ on a hybrid host).
CG_ROOT=/sys/fs/cgroup
[ -e "$CG_ROOT/cgroup.controllers" ] || CG_ROOT=/sys/fs/cgroup/unified
KUBEPODS=$CG_ROOT/kubepods
SRV_CG=$KUBEPODS/juno-test-server CLI_CG=$KUBEPODS/juno-test-client
pod_cgroups_down() { # removes them once their processes are gone (kill -9 above)
    local cg
    for cg in "$SRV_CG" "$CLI_CG" "$KUBEPODS"; do
        for _ in $(seq 50); do
            [ -d "$cg" ] || break
            rmdir "$cg" 2>/dev/null && break
            sleep 0.1
        done
    done
}
in_pod() { # in_pod CGROUP COMMAND...: runs COMMAND in CGROUP (a pod's stand-in)
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$@"
}
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"

# --- 1. the base image ---------------------------------------------------------------------
# A minimal Debian 12 like the public debian:bookworm-slim: debootstrap's minbase, without
# documentation, manual pages and locales (the slim image's dpkg excludes), with the same
# package sources (bookworm, -updates, -security). The root file system is kept as a tar in
# the cache, so that a lost podman store does not mean another debootstrap.
base_image() {
    if podman image exists "$BASE"; then
        log "base image $BASE: cached"
        return
    fi
    local t0=$SECONDS tarball=$CACHE/debian-bookworm-minbase.tar rootfs=$CACHE/rootfs
    if [ ! -s "$tarball" ]; then
        log "base image: debootstrap bookworm from $MIRROR"
        rm -rf "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap"; }
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
        find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/*
        rm -f "$rootfs/etc/apt/sources.list"
        cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
            "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    podman import --change 'CMD ["bash"]' "$tarball" "$BASE" >/dev/null
    log "base image $BASE: made in $(lap "$t0")"
}

# The Rust image's stand-in (only for --from-source): the base with this machine's pinned
# toolchain (rust-toolchain.toml) laid out as the public rust image lays it out
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo), since no registry is
# reachable here to pull docker.io/library/rust. This machine reaches crates.io through a
# TLS proxy whose CA only the host trusts: its CA bundle goes along for cargo
# (CARGO_HTTP_CAINFO), outside the files Debian's ca-certificates package rewrites.
rust_image() {
    if podman image exists "$RUST_BASE"; then
        log "Rust image $RUST_BASE: cached"
        return
    fi
    local t0=$SECONDS sysroot rustup_bin triple
    sysroot=$(rustc +"$TOOLCHAIN" --print sysroot)
    rustup_bin=$(command -v rustup)
    triple=$(rustc +"$TOOLCHAIN" -vV | sed -n 's/^host: //p')
    cat >"$WORK/Containerfile.rust" <<EOF
FROM $BASE
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:\$PATH
COPY --from=toolchain bin /usr/local/rustup/toolchains/$TOOLCHAIN-$triple/bin
COPY --from=toolchain lib /usr/local/rustup/toolchains/$TOOLCHAIN-$triple/lib
COPY --from=toolchain libexec /usr/local/rustup/toolchains/$TOOLCHAIN-$triple/libexec
COPY --from=toolchain etc /usr/local/rustup/toolchains/$TOOLCHAIN-$triple/etc
COPY --from=rustup rustup /usr/local/cargo/bin/rustup
COPY --from=hostca ca-certificates.crt /usr/local/share/host-ca/ca-certificates.crt
ENV CARGO_HTTP_CAINFO=/usr/local/share/host-ca/ca-certificates.crt
RUN cd /usr/local/cargo/bin && for p in cargo rustc rustdoc rust-gdb rust-lldb; do ln -s rustup \$p; done \
 && printf 'version = "12"\ndefault_toolchain = "$TOOLCHAIN-$triple"\n' >/usr/local/rustup/settings.toml \
 && rustc -V && cargo -V
EOF
    podman build -q -f "$WORK/Containerfile.rust" --build-context "toolchain=$sysroot" \
        --build-context "rustup=$(dirname "$rustup_bin")" --build-context hostca=/etc/ssl/certs \
        -t "$RUST_BASE" "$WORK" >/dev/null
    log "Rust image $RUST_BASE: made in $(lap "$t0")"
}

base_image

# --- 2. the image --------------------------------------------------------------------------
kubectl kustomize deploy/ >"$WORK/rendered.yaml" 2>"$WORK/kustomize.err" \
    || { cat "$WORK/kustomize.err" >&2; fail "kubectl kustomize deploy/"; }
python3 scripts/daemonset-podman.py "$WORK/rendered.yaml" --node-root "$WORK/node" \
    --node-name "$NODE" >"$WORK/run.json"
IMAGE=$(jq -r .image "$WORK/run.json")

if [ -n "${JUNO_BIN_DIR:-}" ]; then
    BIN=$JUNO_BIN_DIR
else
    t0=$SECONDS
    cargo build --release -q -p juno-record --bin juno-record
    cargo build --release -q -p juno-analyze --bin juno-analyze
    BIN=${CARGO_TARGET_DIR:-target}/release
    log "binaries: cargo build in $(lap "$t0")"
fi
for b in juno-record juno-analyze; do [ -x "$BIN/$b" ] || fail "no $BIN/$b"; done
ANALYZE=$BIN/juno-analyze

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
t0=$SECONDS
if [ "$FROM_SOURCE" = 1 ]; then
    rust_image
    log "building $IMAGE from source (deploy/Containerfile, default target)"
    podman build -f deploy/Containerfile --build-arg "RUST_IMAGE=$RUST_BASE" \
        --build-arg "RUNTIME_IMAGE=$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log" >&2; fail "podman build (from source)"; }
else
    podman build -f deploy/Containerfile --target prebuilt --build-context "bin=$BIN" \
        --build-arg "RUNTIME_IMAGE=$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log" >&2; fail "podman build"; }
fi
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE")
log "image $IMAGE built in $(lap "$t0"): $((size / 1000000)) MB ($((base_size / 1000000)) MB base, binaries $(du -cb "$BIN/juno-record" "$BIN/juno-analyze" | tail -1 | awk '{print int($1 / 1000000)}') MB)"
podman run --rm --pull never --entrypoint tar "$IMAGE" --version >/dev/null \
    || fail "the image has no tar (kubectl cp needs it)"

# --- 3. the DaemonSet as podman options ----------------------------------------------------
mapfile -t OPTS < <(jq -r '.options[]' "$WORK/run.json")
mapfile -t ARGS < <(jq -r '.args[]' "$WORK/run.json")
ENTRYPOINT=$(jq -c .entrypoint "$WORK/run.json")
GRACE=$(jq -r .grace "$WORK/run.json")
ARCHIVES=$(jq -r '.host_paths["/var/lib/juno"]' "$WORK/run.json")
[ "$ARCHIVES" != null ] || fail "the manifest mounts no writable /var/lib/juno"
log "not translated: $(jq -r '.not_translated | keys | join(", ")' "$WORK/run.json")"

probe() { # probe KIND: runs the manifest's probe command in the container once
    local cmd
    mapfile -t cmd < <(jq -r ".probes.$1.command[]" "$WORK/run.json")
    [ ${#cmd[@]} -gt 0 ] || fail "the manifest has no $1 probe"
    timeout "$(jq -r ".probes.$1.timeout + 5" "$WORK/run.json")" podman exec "$CTR" "${cmd[@]}"
}

# The stand-in pods: a server pod (nginx, redis-server) and a client pod, routed by the host.
echo 1 >/proc/sys/net/ipv4/ip_forward
netns_up "$SRV_NS" "$SRV_IF" "$SRV_NS-p" "$SRV_HOST/24" "$SRV_ADDR/24"
netns_up "$CLI_NS" "$CLI_IF" "$CLI_NS-p" "$CLI_HOST/24" "$CLI_ADDR/24"
ip -n "$SRV_NS" route add default via "$SRV_HOST"
ip -n "$CLI_NS" route add default via "$CLI_HOST"
www=$WORK/www
mkdir -p "$www/api"
for i in $(seq 0 9); do
    printf '{"item": %d, "pad": "%s"}\n' "$i" "$(head -c $((200 * i)) /dev/zero | tr '\0' x)" >"$www/api/item$i.json"
done
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1; user root; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log;
events { worker_connections 128; }
http { access_log off; client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK;
       uwsgi_temp_path $WORK; scgi_temp_path $WORK;
       server { listen $SRV_ADDR:80; root $www; } }
EOF
[ -e "$KUBEPODS" ] && fail "$KUBEPODS exists: this host runs Kubernetes pods; the test would record them"
mkdir -p "$SRV_CG" "$CLI_CG"
in_pod "$SRV_CG" ip netns exec "$SRV_NS" nginx -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1 &
disown
in_pod "$SRV_CG" ip netns exec "$SRV_NS" redis-server --bind "$SRV_ADDR" --port 6379 --save '' --appendonly no \
    --protected-mode no >"$WORK/redis.out" 2>&1 &
disown
wait_port "$SRV_ADDR" 80
wait_port "$SRV_ADDR" 6379

# --- 4. the recorder in the container ------------------------------------------------------
run_recorder() { # run_recorder NAME [CAP]: starts it, detached (without CAP if given)
    local name=$1 without=${2:-} opts=() i
    for ((i = 0; i < ${#OPTS[@]}; i++)); do
        if [ "${OPTS[i]}" = --cap-add ] && [ "${OPTS[i + 1]}" = "$without" ]; then
            i=$((i + 1))
            continue
        fi
        opts+=("${OPTS[i]}")
    done
    podman run -d --name "$name" "${PODMAN_RUN_QUIRKS[@]}" "${opts[@]}" \
        --entrypoint "$ENTRYPOINT" "$IMAGE" "${ARGS[@]}" >/dev/null
}

# The startup probe as the kubelet runs it: every `period` seconds until it succeeds, at most
# `failures` times.
startup() {
    local period failures
    period=$(jq -r .probes.startup.period "$WORK/run.json")
    failures=$(jq -r .probes.startup.failures "$WORK/run.json")
    for _ in $(seq "$failures"); do
        if probe startup 2>/dev/null; then return 0; fi
        [ "$(podman inspect --format '{{.State.Running}}' "$CTR")" = true ] || return 1
        sleep "$period"
    done
    return 1
}

t_run=$SECONDS
run_recorder "$CTR"
startup || { podman logs "$CTR" >&2; fail "the startup probe never succeeded"; }
log "recorder started in the container; startup probe passed after $(lap "$t_run")"
# The pid file comes first, the log line "recording into" right after it.
for _ in $(seq 50); do
    podman logs "$CTR" >"$WORK/recorder.log" 2>&1
    grep -q "recording into /var/lib/juno as node $NODE" "$WORK/recorder.log" && break
    sleep 0.1
done
grep -q "recording into /var/lib/juno as node $NODE" "$WORK/recorder.log" \
    || { cat "$WORK/recorder.log" >&2; fail "the recorder does not say it records"; }
if grep -q "hook unavailable" "$WORK/recorder.log"; then
    cat "$WORK/recorder.log" >&2
    fail "a hook is unavailable under the manifest's privileges"
fi

# Its capabilities are exactly the manifest's (effective, permitted and bounding sets), less
# those this machine itself does not have (a sandbox may withhold some: none can be granted).
pid=$(podman inspect --format '{{.State.Pid}}' "$CTR")
host_bnd=$((16#$(sed -n 's/^CapBnd:\t//p' /proc/self/status)))
manifest=$((16#$(jq -r .cap_mask "$WORK/run.json")))
want=$(printf '%016x' $((manifest & host_bnd)))
for cap in $(jq -r '.capabilities[]' "$WORK/run.json"); do
    bit=$(jq -r ".cap_bits.$cap" "$WORK/run.json")
    if [ $(((host_bnd >> bit) & 1)) = 0 ]; then
        log "note: this machine cannot grant CAP_$cap (not in its own bounding set): tested without it"
    fi
done
for set in CapEff CapPrm CapBnd; do
    have=$(sed -n "s/^$set:\t//p" "/proc/$pid/status")
    [ "$have" = "$want" ] || fail "$set of the recorder is $have, the manifest grants $want"
done
[ "$(cat "$ARCHIVES/.juno-record.pid")" = "$pid" ] || fail "the pid file names another process"

# The compression threads lowered their priority by --compression-nice (the manifest's, else
# the recorder's default), which needs no capability; the ring drain kept its own.
inc=$(printf '%s\n' "${ARGS[@]}" | sed -n 's/^--compression-nice=//p')
[ -n "$inc" ] || inc=$("$BIN/juno-record" --help | awk '/--compression-nice/ {f = 1} f && /\[default: / {gsub(/.*default: |\].*/, ""); print; exit}')
nice_of() { awk '{print $19}' "/proc/$pid/task/$1/stat"; }
main_nice=$(nice_of "$pid")
want_nice=$((main_nice + inc > 19 ? 19 : main_nice + inc))
lowered=0
for t in /proc/"$pid"/task/*; do
    tid=${t##*/}
    case $(cat "$t/comm") in
        juno-encoder | juno-writer)
            [ "$(nice_of "$tid")" = "$want_nice" ] \
                || fail "thread $(cat "$t/comm") runs at nice $(nice_of "$tid"), want $want_nice ($main_nice + $inc)"
            lowered=$((lowered + 1))
            ;;
    esac
done
[ "$lowered" = 2 ] || fail "$lowered compression threads found, want 2"

# Traffic: ten requests and a 404 (curl → nginx), SET and GET (redis-cli → redis-server).
# WANT["CLIENT SERVER|REQUEST"]=RESPONSE, as the clients saw them.
declare -A WANT=()
traffic() { # traffic TAG: requests whose paths and keys carry TAG
    local i path code
    for i in $(seq 0 9); do
        path="/api/item$i.json?$1"
        code=$(in_pod "$CLI_CG" ip netns exec "$CLI_NS" curl -s -o /dev/null -w '%{http_code}' "http://$SRV_ADDR$path")
        [ "$code" = 200 ] || fail "curl $path: $code"
        WANT["curl nginx|GET $path"]=$code
    done
    path="/missing?$1"
    code=$(in_pod "$CLI_CG" ip netns exec "$CLI_NS" curl -s -o /dev/null -w '%{http_code}' "http://$SRV_ADDR$path")
    WANT["curl nginx|GET $path"]=$code
    [ "$(in_pod "$CLI_CG" ip netns exec "$CLI_NS" redis-cli -h "$SRV_ADDR" SET "juno:$1" "v-$1")" = OK ] || fail "redis SET"
    WANT["redis-cli redis-server|SET juno:$1"]=OK
    [ "$(in_pod "$CLI_CG" ip netns exec "$CLI_NS" redis-cli -h "$SRV_ADDR" GET "juno:$1")" = "v-$1" ] || fail "redis GET"
    WANT["redis-cli redis-server|GET juno:$1"]=v-$1
    # A node process (not in a pod): nginx's socket events have it, the host's curl's not.
    path="/api/item1.json?host-$1"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$SRV_ADDR$path")
    [ "$code" = 200 ] || fail "curl from the host $path: $code"
    HOST_PATHS+=("$path")
}
declare -a HOST_PATHS=()
traffic first

probe readiness || fail "the readiness probe failed"
probe liveness || fail "the liveness probe failed"
log "readiness and liveness probes passed"

# Seal through exec, as README's "Capture on a cluster" does with kubectl exec.
podman exec "$CTR" juno-record seal --out-dir /var/lib/juno >>"$WORK/seal.log" 2>&1
for _ in $(seq 100); do
    compgen -G "$ARCHIVES/juno-*.pcapng.zst" >/dev/null && break
    sleep 0.1
done
compgen -G "$ARCHIVES/juno-*.pcapng.zst" >/dev/null || fail "no sealed file after juno-record seal"

# Copy as `kubectl cp juno/POD:/var/lib/juno DIR` does: tar in the container, untar here with
# the source path's prefix stripped.
copied=$WORK/copied
mkdir -p "$copied"
podman exec "$CTR" tar cf - /var/lib/juno 2>/dev/null | tar xf - -C "$copied" --strip-components=3
[ "$(find "$copied" -maxdepth 1 -name "juno-*.pcapng.zst" | wc -l)" -ge 1 ] \
    || fail "nothing sealed came out through tar"

# What juno-analyze lists: every request, in the client's and in the server's sockets, with
# the response the client saw. Only the sealed files are read: the copy also holds the
# recorder's file in progress (`.juno-….partial`, opened as soon as anything follows the seal),
# which juno-analyze skips with a warning and exit status 2 when it walks the directory.
sealed_logs() { # sealed_logs DIR: juno-analyze's JSON lines of the sealed archives under DIR
    local files
    mapfile -t files < <(find "$1" -name 'juno-*.pcapng.zst' | sort)
    [ "${#files[@]}" -gt 0 ] || fail "no sealed archive under $1"
    "$ANALYZE" --progress never -q logs "${files[@]}"
}
exchanges() { # exchanges DIR: "COMM|REQUEST RESPONSE" per exchange between the stand-in pods
    sealed_logs "$1" | jq -r --arg cli "$CLI_ADDR" --arg srv "$SRV_ADDR" '
        select(.client.ip == $cli and .server.ip == $srv and .vantage.kind == "socket")
        | if .protocol == "http" then "\(.vantage.comm)|\(.http.method) \(.http.uri) \(.http.status_code)"
          elif .protocol == "redis" then "\(.vantage.comm)|\(.redis.command) \(.redis.key) \(.redis.reply_value)"
          else empty end' | sort -u
}
check_listed() { # check_listed DIR TAG: every request of round TAG, from both ends
    local got missing=0 k who
    got=$(exchanges "$1")
    for k in "${!WANT[@]}"; do
        case $k in *"?$2" | *":$2") ;; *) continue ;; esac
        for who in ${k%%|*}; do
            if ! grep -qxF "$who|${k#*|} ${WANT[$k]}" <<<"$got"; then
                echo "not listed by juno-analyze: $who|${k#*|} ${WANT[$k]}" >&2
                missing=1
            fi
        done
    done
    [ "$missing" = 0 ] || { echo "juno-analyze listed:" >&2; echo "$got" >&2; fail "requests missing from $1"; }
    # --pods-only: the host's curl is a node process; nginx, in a pod, answered it.
    local host
    host=$(sealed_logs "$1" | jq -r --arg srv "$SRV_ADDR" --arg tag "host-$2" '
        select(.protocol == "http" and .server.ip == $srv and .vantage.kind == "socket"
               and (.http.uri | endswith($tag))) | .vantage.comm' | sort -u | paste -sd, -)
    [ "$host" = nginx ] || fail "the host's request of round $2 in socket events of: '$host' (want nginx only)"
}
check_listed "$copied" first
# The stand-in pods' veths are named by their namespaces (the pinned names under /run/netns,
# which the manifest mounts with HostToContainer propagation) and addresses.
descr=$(for f in "$copied"/juno-*.pcapng.zst; do
    zstd -dcq "$f" | tshark -r - -T fields -e frame.interface_description 2>/dev/null
done | sort -u)
for want in "netns $SRV_NS $SRV_ADDR" "netns $CLI_NS $CLI_ADDR"; do
    grep -q "^$want" <<<"$descr" || { echo "$descr" >&2; fail "no interface described as '$want'"; }
done
log "sealed through exec, copied out through tar: juno-analyze lists every request of round 1"

# The collection plugin (deploy/kubectl-juno) on this "node": kubectl exec is podman exec here
# (the only kubectl call it makes given the pod listing), everything else is the plugin's own:
# its seal, its tar stream of the sealed files in the image's shell, its unpacking.
cat >"$WORK/kubectl" <<EOF
#!/bin/sh
# kubectl -n NS exec POD -c CONTAINER -- CMD... as podman exec $CTR CMD...
case " \$* " in *" exec "*" -- "*) ;; *) echo "not a kubectl exec: \$*" >&2; exit 1 ;; esac
while [ "\$1" != -- ]; do shift; done
shift
exec podman exec -i $CTR "\$@"
EOF
chmod +x "$WORK/kubectl"
printf '{"kind": "List", "items": [{"metadata": {"name": "juno-record-jctr"}, "spec": {"nodeName": "%s"}, "status": {"phase": "Running"}}]}\n' \
    "$NODE" >"$WORK/pods.json"
collect() { # collect [OPTION...]: kubectl juno collect DIR, as a user runs it
    python3 deploy/kubectl-juno collect "$WORK/collected" "$@" --kubectl "$WORK/kubectl" \
        --pods-json "$WORK/pods.json" >"$WORK/collect.out" 2>"$WORK/collect.err" \
        || { cat "$WORK/collect.err" >&2; fail "kubectl-juno collect"; }
}
sizes() { # sizes DIR: "NAME SIZE" per sealed file
    (cd "$1" && for f in juno-*.pcapng.zst; do echo "$f $(stat -c %s "$f")"; done)
}
collect
got=$(sizes "$WORK/collected/$NODE")
[ "$got" = "$(sizes "$ARCHIVES")" ] || fail "kubectl-juno collected [$got], the node has [$(sizes "$ARCHIVES")]"
for f in "$WORK/collected/$NODE"/*; do cmp -s "$f" "$ARCHIVES/${f##*/}" || fail "$f differs"; done
[ "$(echo "$got" | wc -l)" = 2 ] || fail "kubectl-juno's seal made no second file"
collect --no-seal
grep -q "$NODE: 0 new sealed file(s)" "$WORK/collect.err" || fail "a second collect copied again"
check_listed "$WORK/collected" first
log "kubectl-juno collect: sealed, copied $(echo "$got" | wc -l) files into DIR/$NODE/ (none again on a second run); juno-analyze lists every request of round 1"

# --- 5. SIGTERM seals the file being written -----------------------------------------------
traffic second
sleep 1
mem_cg=$(find /sys/fs/cgroup/memory -type d -name "*$(podman inspect --format '{{.Id}}' "$CTR")*" | head -1)
peak=$(cat "$mem_cg/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
kpeak=$(cat "$mem_cg/memory.kmem.max_usage_in_bytes" 2>/dev/null || echo 0)
limit=$(cat "$mem_cg/memory.limit_in_bytes" 2>/dev/null || echo 0)
t0=$SECONDS
podman stop -t "$GRACE" "$CTR" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$CTR")
podman logs "$CTR" >"$WORK/recorder.log" 2>&1
[ "$code" = 0 ] || { tail -20 "$WORK/recorder.log" >&2; fail "the recorder exited $code on SIGTERM"; }
log "SIGTERM: the recorder stopped in $(lap "$t0") (grace period ${GRACE}s)"
grep -q "files sealed" "$WORK/recorder.log" || fail "no seal at SIGTERM in the log"
if find "$ARCHIVES" -name '*.partial' | grep -q .; then fail "a .partial file is left after SIGTERM"; fi
check_listed "$ARCHIVES" second
sealed=$(find "$ARCHIVES" -maxdepth 1 -name "juno-*.pcapng.zst" | wc -l)
[ "$sealed" = 3 ] || fail "$sealed sealed files, want 3 (by juno-record seal, by kubectl-juno, by SIGTERM)"
log "SIGTERM sealed the current file: juno-analyze lists every request of round 2"

# Self cost: the recorder's own CPU time always; the eBPF programs' from the kernel's BPF
# statistics (BPF_ENABLE_STATS needs CAP_SYS_ADMIN) unless the manifest turns them off.
grep -q "cost of the whole run: .*recorder process" "$WORK/recorder.log" \
    || { grep cost "$WORK/recorder.log" >&2; fail "no cost line in the closing log"; }
if ! printf '%s\n' "${ARGS[@]}" | grep -qx -- '--self-cost=off'; then
    grep -q "cost of the whole run: .*eBPF .*tc_ingress" "$WORK/recorder.log" \
        || { grep cost "$WORK/recorder.log" >&2; fail "no eBPF cost in the closing log"; }
fi
if [ "$peak" -gt 0 ]; then
    log "memory: peak $((peak / 1048576)) MiB (kernel memory, mostly the eBPF maps: $((kpeak / 1048576)) MiB) of the container's $((limit / 1048576)) MiB limit"
    [ "$peak" -lt "$limit" ] || fail "peak memory reached the limit"
fi
log "$(grep -o "cost of the whole run: .*" "$WORK/recorder.log")"

# --- --drop-each: what each capability is for -----------------------------------------------
if [ "$DROP_EACH" = 1 ]; then
    for cap in $(jq -r '.capabilities[]' "$WORK/run.json"); do
        name=$CTR-no-$cap
        rm -rf "${ARCHIVES:?}"/* "$ARCHIVES"/.juno*
        if ! run_recorder "$name" "$cap"; then
            echo "without $cap: podman run failed"
            continue
        fi
        CTR=$name
        ok=started
        startup || ok="startup probe failed"
        p=$(podman inspect --format '{{.State.Pid}}' "$name")
        eff=$(sed -n 's/^CapEff:\t//p' "/proc/$p/status" 2>/dev/null || echo "?")
        WANT=()
        [ "$ok" = started ] && traffic "no-$cap" && sleep 1
        podman stop -t "$GRACE" "$name" >/dev/null 2>&1 || true
        podman logs "$name" >"$WORK/no-$cap.log" 2>&1
        listed=$( (exchanges "$ARCHIVES" 2>/dev/null || true) | grep -c "no-$cap" || true)
        echo "without $cap (CapEff $eff): $ok; exit $(podman inspect --format '{{.State.ExitCode}}' "$name"); $listed exchanges listed (want $((2 * ${#WANT[@]})))"
        grep -E "unavailable|rror|cannot|cost of the whole" "$WORK/no-$cap.log" | grep -v RLIMIT_MEMLOCK \
            | sed 's/^[0-9TZ:-]* juno-record: /    /' | cut -c1-200 | head -8
        podman rm -f "$name" >/dev/null
        CTR=jctr-recorder
    done
fi
log "passed in $(lap)"
