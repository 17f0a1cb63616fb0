#!/usr/bin/env bash
# Lambda arm64 containers on a machine with no Docker engine and no container registry (this project's CI):
# what `sam local invoke` needs, provided from Debian's packages and PyPI. Opt-in: only with CI=true or
# PHOTOVEIL_LAMBDA_STANDIN=1, as root, on Debian with no other Docker installed. On a machine with Docker,
# SAM pulls the real image and none of this runs.
#
#   scripts/lambda_standin.sh wanted        # 0: provide the engine here; 1: a Docker engine answers, use it;
#                                           # 3: neither (why is said: no engine, no access, refused)
#   scripts/lambda_standin.sh run CMD...    # CMD with the engine and the image ready, then stop the engine
#                                           # if no other run uses it (scripts/invoke.sh runs itself so)
#   scripts/lambda_standin.sh ensure        # Docker engine, arm64 emulation, the stand-in image (idempotent)
#   scripts/lambda_standin.sh stop          # stop the engine `ensure` started, if no run uses it
#
# What `ensure` changes on the machine (docs/decisions/invoke-0001-lambda-containers.md):
#   - installs Debian's docker.io and debootstrap (apt), starts dockerd (its pid in $CACHE/dockerd.pid;
#     `stop` ends it) with a rule that keeps containers off every network but this machine's (DOCKER-USER)
#     and one that drops what they send to 127.0.0.0/8 (raw), both removed by `stop`;
#   - on x86-64, registers binfmt_misc qemu-aarch64, trixie's static qemu-user 10 (bookworm's 7.2 shows arm64
#     programs the host's x86 /proc/cpuinfo, and ONNX Runtime crashes on it), fetched with apt from a sources
#     list of its own under $CACHE: the machine's apt sources are left as they are;
#   - loads the stand-in public.ecr.aws/lambda/python:3.13-arm64: Debian trixie arm64 (its python3.13)
#     by debootstrap, awslambdaric and boto3 from PyPI, /var/runtime/bootstrap running
#     `python3.13 -m awslambdaric $_HANDLER` as the real image's does. Its root filesystem is cached in
#     $CACHE under a key of this recipe, so a later run only loads it, or finds it loaded.
# Runs on one machine share the engine, the image and the cache (flock): a run holds $CACHE/run.lock
# shared while it uses them; starting, loading and stopping take $CACHE/setup.lock, and replacing the image
# or stopping the engine waits until no run holds run.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE=${PHOTOVEIL_CACHE:-/var/cache/photoveil}/lambda
IMAGE=public.ecr.aws/lambda/python:3.13-arm64  # the image samcli's lambda_image.py builds FROM
RAPID_IMAGE=public.ecr.aws/lambda/python:3.13-rapid-arm64  # SAM's own, FROM the one above
SUITE=trixie  # Debian 13: python3.13, as the python3.13 runtime
MIRROR=http://deb.debian.org/debian
AWSLAMBDARIC_VERSION=4.2.2
BOTO3_VERSION=$(sed -n 's/^ *"boto3==\([^"]*\)",*$/\1/p' pyproject.toml)  # the project's pin
: "${BOTO3_VERSION:?no boto3== pin found in pyproject.toml}"
# qemu's default CPU emulates pointer authentication: ~25x slower than a Neoverse N1 (Graviton 2) without it.
QEMU_CPU=neoverse-n1
DOCKERD_PID=$CACHE/dockerd.pid
SETUP_LOCK=$CACHE/setup.lock
RUN_LOCK=$CACHE/run.lock
STOP_GRACE_S=30  # dockerd stops its containers first; then SIGKILL
RULE_COMMENT=photoveil-standin  # on the rules this script adds, so that `stop` finds them
CLEANUP=()  # half-made files and folders, removed however the script ends

phase() {  # phase NAME COMMAND...: run it and say how long it took
  local name=$1 start=$SECONDS
  shift
  echo "==> $name"
  "$@"
  echo "    $name: $((SECONDS - start)) s"
}

on_exit() {
  [[ ${#CLEANUP[@]} -eq 0 ]] || rm -rf "${CLEANUP[@]}"
}

# ---------------------------------------------------------------- whether to provide the engine here
opted_in() {  # the stand-in changes the machine (apt, dockerd, binfmt, iptables): only where asked to
  [[ ${PHOTOVEIL_LAMBDA_STANDIN:-} == 1 || ${CI:-} == true ]]
}

package_installed() {  # package_installed ROOT NAME: dpkg says NAME is installed under ROOT
  local status=$1/var/lib/dpkg/status
  [[ -f $status ]] && awk -v name="$2" '
    /^Package: / { package = $2 }
    /^Status: / && package == name && $NF == "installed" { found = 1 }
    END { exit !found }' "$status"
}

refusal() {  # why this machine's Docker must not be touched (nothing if it may); STANDIN_ROOT for tests
  local root=${STANDIN_ROOT:-} package unit
  [[ -f $root/etc/debian_version ]] || {
    echo "this is not Debian: the stand-in installs Debian's docker.io with apt-get"
    return 0
  }
  for package in docker-ce containerd.io docker-desktop docker-ee moby-engine; do
    if package_installed "$root" "$package"; then
      echo "$package is installed: its engine is yours to start (installing docker.io would remove it)"
      return 0
    fi
  done
  for unit in {/etc,/lib,/usr/lib,/run}/systemd/system/docker.service; do
    [[ -e $root$unit ]] || continue
    if [[ -d $root/run/systemd/system ]]; then
      echo "systemd manages Docker here ($unit): start it with \`systemctl start docker\`"
      return 0
    fi
    if ! docker_io_file "$root" "$unit"; then
      echo "$unit is another Docker's: start that one"
      return 0
    fi
  done
}

docker_io_file() {  # docker_io_file ROOT PATH: PATH is a file of Debian's docker.io (/lib is /usr/lib)
  local listed
  while read -r listed; do
    [[ $1$listed -ef $1$2 ]] && return 0
  done < <(grep "docker\.service$" "$1/var/lib/dpkg/info/docker.io.list" 2>/dev/null)
  return 1
}

engine_answer() {  # what `docker info` says: ok, denied (no access to the socket), none
  local said
  command -v docker >/dev/null || { echo none; return 0; }
  said=$(docker info 2>&1 >/dev/null) && { echo ok; return 0; }
  if [[ $said == *"permission denied"* ]]; then echo denied; else echo none; fi
}

wanted() {  # 0: provide the engine here; 1: one answers, use it; 3: neither, said why
  local answer why
  answer=$(engine_answer)
  if ours_running; then return 0; fi
  case $answer in
    ok) return 1 ;;
    denied)
      echo "The Docker engine answers, but not to you ($(id -un)): join the docker group" \
        "(sudo usermod -aG docker $(id -un), then log in again), or run this with sudo." >&2
      return 3 ;;
  esac
  if ! opted_in; then
    cat >&2 <<MSG
No Docker engine answers. Start Docker (Docker Desktop, or \`sudo systemctl start docker\`; with rootless
Docker, run this as the user whose engine it is); SAM then pulls $IMAGE. On a Debian machine with no
Docker and no registry (this project's CI), PHOTOVEIL_LAMBDA_STANDIN=1 lets scripts/lambda_standin.sh
install and run one as root, with a stand-in image built here.
MSG
    return 3
  fi
  why=$(refusal)
  if [[ -n $why ]]; then
    echo "No Docker engine answers, and the stand-in will not provide one here: $why." >&2
    return 3
  fi
  return 0
}

need_root() {
  if [[ $EUID -ne 0 ]]; then
    echo "scripts/lambda_standin.sh provides a Docker engine only as root (apt, dockerd, binfmt)." >&2
    exit 3
  fi
}

refuse_unsafe() {
  local why
  why=$(refusal)
  [[ -z $why ]] || { echo "scripts/lambda_standin.sh: $why." >&2; exit 3; }
}

# ---------------------------------------------------------------- locks shared by runs on this machine
hold_setup() {  # exclusive: one run at a time starts or stops the engine, builds or loads the image
  [[ -z ${SETUP_FD:-} ]] || return 0  # held already (a lock opened twice would wait for itself)
  mkdir -p "$CACHE"
  exec {SETUP_FD}>"$SETUP_LOCK"
  flock -n "$SETUP_FD" && return 0
  echo "==> waiting for another run's stand-in setup ($SETUP_LOCK)"
  flock "$SETUP_FD"
}

release_setup() { exec {SETUP_FD}>&-; unset SETUP_FD; }

hold_run() {  # shared: this run uses the engine and the image
  exec {RUN_FD}>"$RUN_LOCK"
  flock -s "$RUN_FD"
}

release_run() { [[ -z ${RUN_FD:-} ]] || { exec {RUN_FD}>&-; unset RUN_FD; }; }

no_other_run() {  # under the setup lock: true (holding run.lock exclusively in NO_RUN_FD) if no run uses it
  [[ -z ${NO_RUN_FD:-} ]] || return 0
  exec {NO_RUN_FD}>"$RUN_LOCK"
  flock -n -x "$NO_RUN_FD" && return 0
  exec {NO_RUN_FD}>&-
  return 1
}

until_no_other_run() {  # under the setup lock: wait for the runs using the engine and image to end
  no_other_run && return 0
  echo "==> waiting for the runs that use $IMAGE to end ($RUN_LOCK)"
  exec {NO_RUN_FD}>"$RUN_LOCK"
  flock -x "$NO_RUN_FD"
}

exec_unlocked() {  # in a subshell: become "$@" with no lock open (a dockerd outliving us must not hold one)
  for fd in ${SETUP_FD:-} ${RUN_FD:-} ${NO_RUN_FD:-}; do exec {fd}>&-; done
  trap - INT QUIT  # bash has a command run with & ignore Ctrl-C: this one must see it
  exec "$@"
}

# ---------------------------------------------------------------- Docker engine
install_packages() {  # the Docker engine, and debootstrap for the stand-in's root filesystem
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
}

KEEP_IN=(-i docker0 ! -o docker0 -j DROP -m comment --comment "$RULE_COMMENT")
# dockerd --userland-proxy=false sets route_localnet on its bridge: containers could then send crafted
# packets to 127.0.0.1 (CVE-2020-8558's class). The raw table drops them before any DNAT (invoke-0001).
NO_LOOPBACK=(-i docker0 -d 127.0.0.0/8 -j DROP -m comment --comment "$RULE_COMMENT")

start_dockerd() {
  docker info >/dev/null 2>&1 || launch_dockerd
  # Containers reach this machine (the local stack, through scripts/invoke.sh's forward) and nothing else.
  iptables -C DOCKER-USER "${KEEP_IN[@]}" 2>/dev/null || iptables -I DOCKER-USER "${KEEP_IN[@]}"
  iptables -t raw -C PREROUTING "${NO_LOOPBACK[@]}" 2>/dev/null || iptables -t raw -I PREROUTING "${NO_LOOPBACK[@]}"
}

launch_dockerd() {
  mkdir -p "$CACHE"
  rm -f "$DOCKERD_PID"
  # --userland-proxy=false: the proxy accepts SAM's connection before the emulated runtime listens, and
  # SAM gives up after three tries ("No response from invoke container"). dockerd writes its own pid.
  (exec_unlocked setsid --fork dockerd --userland-proxy=false --pidfile "$DOCKERD_PID") \
    >"$CACHE/dockerd.log" 2>&1 </dev/null
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -20 "$CACHE/dockerd.log" >&2
  echo "dockerd did not answer in 30 s ($CACHE/dockerd.log)" >&2
  exit 1
}

ours_running() {  # the Docker engine answering is the one `ensure` started
  [[ -f $DOCKERD_PID && $(cat "/proc/$(cat "$DOCKERD_PID")/comm" 2>/dev/null) == dockerd ]]
}

stop_dockerd() {  # stop the engine `ensure` started, and remove the rule it added
  local pid children
  if ours_running; then
    pid=$(cat "$DOCKERD_PID")
    children=$(ps -o pid= --ppid "$pid" || true)  # its containerd, which a SIGKILL would leave behind
    kill "$pid"  # dockerd stops its containers and the containerd it started
    for _ in $(seq $((STOP_GRACE_S * 2))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "dockerd ($pid) still runs after ${STOP_GRACE_S} s: SIGKILL" >&2
      kill -KILL "$pid" $children 2>/dev/null || true
    fi
    echo "stopped dockerd ($pid), which scripts/lambda_standin.sh started"
  fi
  rm -f "$DOCKERD_PID"
  # Docker keeps its chains when it stops: a Docker started later would find containers kept in. The
  # rule without its comment is what this script added before it had one.
  while iptables -D DOCKER-USER "${KEEP_IN[@]}" 2>/dev/null; do :; done
  while iptables -D DOCKER-USER "${KEEP_IN[@]:0:7}" 2>/dev/null; do :; done
  while iptables -t raw -D PREROUTING "${NO_LOOPBACK[@]}" 2>/dev/null; do :; done
}

stop_unless_used() {  # stop the engine unless another run uses it (that run stops it when it ends)
  hold_setup
  if no_other_run; then
    stop_dockerd
  elif ours_running; then
    echo "dockerd left running: another run uses it"
  fi
  [[ -z ${NO_RUN_FD:-} ]] || { exec {NO_RUN_FD}>&-; unset NO_RUN_FD; }
  release_setup
}

# ---------------------------------------------------------------- arm64 emulation
QEMU_BINFMT=/proc/sys/fs/binfmt_misc/qemu-aarch64

native_arm64() {  # an arm64 machine runs the image's programs itself: no emulation to register
  [[ $(uname -m) == aarch64 || $(uname -m) == arm64 ]]
}

ensure_emulation() {
  if native_arm64; then
    echo "    $(uname -m): arm64 programs run natively, no emulation registered"
    return 0
  fi
  phase "qemu-user from $SUITE" fetch_qemu
  register_qemu
}

trixie_apt() {  # apt-get with trixie as its only source, and its own lists and status: nothing installed
  local dir=$CACHE/apt-$SUITE
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" >"$dir/sources.list"
  apt-get -qq -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir" -o Dir::State::Status=/dev/null \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

fetch_qemu() {  # sets QEMU: the static qemu-aarch64, with its binfmt_misc magic beside it
  QEMU=$(ls -d "$CACHE"/qemu-*/qemu-aarch64 2>/dev/null | tail -1 || true)
  [[ -n $QEMU ]] && return 0
  trixie_apt update
  local work version
  work=$(mktemp -d)
  CLEANUP+=("$work")
  (cd "$work" && trixie_apt download qemu-user)
  dpkg-deb -x "$work"/qemu-user_*.deb "$work/x"
  version=$(dpkg-deb -f "$work"/qemu-user_*.deb Version)
  QEMU=$CACHE/qemu-${version//[:+~]/_}/qemu-aarch64
  mkdir -p "$(dirname "$QEMU")"
  cut -d: -f1-6 "$work/x/usr/share/qemu/binfmt.d/qemu-aarch64.conf" >"$QEMU.binfmt"
  install -m 755 "$work/x/usr/bin/qemu-aarch64" "$work/qemu-aarch64"
  mv "$work/qemu-aarch64" "$QEMU"  # last, whole: the cache is looked up by it
  rm -rf "$work"
}

register_qemu() {
  [[ -d /proc/sys/fs/binfmt_misc && -e /proc/sys/fs/binfmt_misc/register ]] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [[ -e $QEMU_BINFMT ]]; then
    grep -qx "interpreter $QEMU" "$QEMU_BINFMT" && grep -qx "flags: F" "$QEMU_BINFMT" && return 0
    echo -1 >"$QEMU_BINFMT"  # another qemu (e.g. bookworm's 7.2): replaced by ours
  fi
  # F: the interpreter is opened now, so it also runs inside containers, where its path does not exist.
  echo "$(cat "$QEMU.binfmt"):$QEMU:F" >/proc/sys/fs/binfmt_misc/register
}

# ---------------------------------------------------------------- the stand-in image
write_bootstrap() {  # write_bootstrap ROOTFS
  mkdir -p "$1/var/runtime" "$1/var/task"
  cat >"$1/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# The stand-in's runtime, as the real image's: awslambdaric runs the handler; boto3 is the runtime's.
export PYTHONPATH="/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3.13 -m awslambdaric "$_HANDLER"
BOOTSTRAP
  chmod 755 "$1/var/runtime/bootstrap"
}

run_debootstrap() {  # run_debootstrap ROOT: Debian arm64, its maintainer scripts run under qemu
  QEMU_CPU=$QEMU_CPU debootstrap --arch=arm64 --variant=minbase --include=python3.13 "$SUITE" "$1" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; return 1; }
}

build_base() {  # build_base TARBALL: the Debian part, the slow one (about 4 minutes), cached on its own
  local root
  root=$(mktemp -d "$CACHE/base.XXXX")
  CLEANUP+=("$root" "$1.partial")
  phase debootstrap run_debootstrap "$root"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale
  tar -C "$root" --numeric-owner -cf "$1.partial" . && mv "$1.partial" "$1"
  rm -rf "$root"
}

build_rootfs() {  # build_rootfs BASE_TARBALL TARBALL: the runtime on the Debian base
  local root
  root=$(mktemp -d "$CACHE/rootfs.XXXX")
  CLEANUP+=("$root" "$2.partial")
  tar -C "$root" --numeric-owner -xf "$1"
  # aarch64 wheels fetched by this machine's pip: nothing to emulate.
  phase "pip into the root filesystem" .venv/bin/pip install --quiet --disable-pip-version-check \
    --no-compile --only-binary=:all: --platform manylinux2014_aarch64 --implementation cp \
    --python-version 3.13 --target "$root/var/runtime" \
    "awslambdaric==$AWSLAMBDARIC_VERSION" "boto3==$BOTO3_VERSION"
  write_bootstrap "$root"
  # Compiled as in the real image: importing boto3 under emulation takes 7 s from source, 2 s from bytecode.
  phase "compile the runtime's bytecode" chroot "$root" env QEMU_CPU=$QEMU_CPU \
    /usr/bin/python3.13 -m compileall -q -j 0 /var/runtime
  tar -C "$root" --numeric-owner -cf "$2.partial" . && mv "$2.partial" "$2"
  rm -rf "$root"
}

base_key() {
  { echo "$SUITE $MIRROR"; declare -f run_debootstrap build_base; } | sha256sum | cut -c1-16
}

recipe_key() {  # what the image is made of: a change to any of it makes a new one
  {
    echo "$(base_key) $AWSLAMBDARIC_VERSION $BOTO3_VERSION $QEMU_CPU $IMAGE"
    declare -f build_rootfs write_bootstrap load_image
    cat src/photoveil_dev/invoke/image.py
  } | sha256sum | cut -c1-16
}

load_image() {  # load_image TARBALL KEY; under the setup lock, with no run using the image
  .venv/bin/python -m photoveil_dev.invoke.image "$1" --tag "$IMAGE" --arch arm64 \
    --env PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin --env LANG=C.UTF-8 --env TZ=:/etc/localtime \
    --env LAMBDA_TASK_ROOT=/var/task --env LAMBDA_RUNTIME_DIR=/var/runtime --env QEMU_CPU=$QEMU_CPU \
    --label "photoveil.standin=$2" --workdir /var/task --entrypoint /var/runtime/bootstrap |
    docker load
  # SAM's image was built FROM the one replaced: it must build it again. The replaced one is of no use.
  docker image rm "$RAPID_IMAGE" >/dev/null 2>&1 || true
  docker image prune -f --filter label=photoveil.standin >/dev/null
}

ensure_image() {  # under the setup lock
  local key base tarball
  key=$(recipe_key)
  if [[ $(docker image inspect -f '{{index .Config.Labels "photoveil.standin"}}' "$IMAGE" 2>/dev/null) == "$key" ]]; then
    echo "    $IMAGE: the stand-in, recipe $key, already loaded"
    return 0
  fi
  base=$CACHE/base-$(base_key).tar
  tarball=$CACHE/rootfs-$key.tar
  [[ -f $tarball || -f $base ]] || build_base "$base"
  [[ -f $tarball ]] || build_rootfs "$base" "$tarball"
  until_no_other_run  # a SAM of another run may be building FROM the image being replaced
  phase "docker load" load_image "$tarball" "$key"
  exec {NO_RUN_FD}>&-
  unset NO_RUN_FD
  # Older recipes' root filesystems are of no further use.
  find "$CACHE" -maxdepth 1 \( \( -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" \) -o \
    \( -name 'base-*.tar' ! -name "${base##*/}" \) \) -delete
}

ensure() {  # under the setup lock
  mkdir -p "$CACHE"
  phase "docker.io and debootstrap (apt)" install_packages
  phase dockerd start_dockerd
  ensure_emulation
  phase "stand-in image" ensure_image
}

# ---------------------------------------------------------------- a run with the stand-in
run_with_standin() {  # run_with_standin CMD...: CMD's exit status
  local child status=0
  hold_setup
  trap 'on_exit; release_run; stop_unless_used' EXIT  # an engine started for nothing is stopped too
  ensure
  hold_run
  release_setup
  # Ctrl-C reaches CMD from the terminal itself; SIGTERM (a CI's timeout) is passed on. Either way CMD
  # undoes what it did, then the engine is stopped.
  trap : INT
  trap 'kill -TERM "$child" 2>/dev/null || true' TERM
  (SAM_SKIP_PULL_IMAGE=1 exec_unlocked "$@") &
  child=$!  # "$@" itself: the subshell became it
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  return "$status"
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0  # sourced (tests): the functions only

trap on_exit EXIT
case "${1:-}" in
  wanted) wanted ;;
  run)
    shift
    need_root
    refuse_unsafe
    run_with_standin "$@"
    ;;
  ensure)
    need_root
    refuse_unsafe
    hold_setup
    ensure
    ;;
  stop)
    need_root
    stop_unless_used
    ;;
  *) echo "usage: $0 wanted|run CMD...|ensure|stop" >&2; exit 2 ;;
esac
