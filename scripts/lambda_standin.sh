#!/usr/bin/env bash
# Lambda arm64 containers on a machine with no Docker engine and no container registry (this project's CI):
# what `sam local invoke` needs, provided from Debian's packages and PyPI. scripts/invoke.sh calls it only
# when no Docker engine answers; on a machine with Docker, SAM pulls the real image and none of this runs.
#
#   scripts/lambda_standin.sh wanted   # exit 0 if no Docker engine answers (or only the one ensure started)
#   scripts/lambda_standin.sh ensure   # Docker engine, arm64 emulation, the stand-in image (idempotent)
#   scripts/lambda_standin.sh stop     # stop the Docker engine `ensure` started, if it did
#
# What `ensure` changes on the machine (root only; docs/decisions/invoke-0001-lambda-containers.md):
#   - installs Debian's docker.io and debootstrap (apt), starts dockerd (its pid in $CACHE/dockerd.pid;
#     `stop` ends it) with a rule that keeps containers off every network but this machine's (DOCKER-USER);
#   - registers binfmt_misc qemu-aarch64, trixie's static qemu-user 10 (bookworm's 7.2 shows arm64 programs
#     the host's x86 /proc/cpuinfo, and ONNX Runtime crashes on it), fetched with apt from a sources list of
#     its own under $CACHE: the machine's apt sources are left as they are;
#   - loads the stand-in public.ecr.aws/lambda/python:3.13-arm64: Debian trixie arm64 (its python3.13)
#     by debootstrap, awslambdaric and boto3 from PyPI, /var/runtime/bootstrap running
#     `python3.13 -m awslambdaric $_HANDLER` as the real image's does. Its root filesystem is cached in
#     $CACHE under a key of this recipe, so a later run only loads it, or finds it loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PHOTOVEIL_CACHE:-/var/cache/photoveil}/lambda
IMAGE=public.ecr.aws/lambda/python:3.13-arm64  # the image samcli's lambda_image.py builds FROM
RAPID_IMAGE=public.ecr.aws/lambda/python:3.13-rapid-arm64  # SAM's own, FROM the one above
SUITE=trixie  # Debian 13: python3.13, as the python3.13 runtime
MIRROR=http://deb.debian.org/debian
AWSLAMBDARIC_VERSION=4.2.2
BOTO3_VERSION=$(sed -n 's/^ *"boto3==\([^"]*\)",*$/\1/p' pyproject.toml)  # the project's pin
# qemu's default CPU emulates pointer authentication: ~25x slower than a Neoverse N1 (Graviton 2) without it.
QEMU_CPU=neoverse-n1
DOCKERD_PID=$CACHE/dockerd.pid

phase() {  # phase NAME COMMAND...: run it and say how long it took
  local name=$1 start=$SECONDS
  shift
  echo "==> $name"
  "$@"
  echo "    $name: $((SECONDS - start)) s"
}

need_root() {
  if [[ $EUID -ne 0 ]]; then
    cat >&2 <<MSG
sam local invoke needs a Docker engine, and none answers. This script provides one only as root on Debian
(it installs docker.io and registers arm64 emulation); otherwise start Docker yourself (SAM then pulls
$IMAGE from the registry).
MSG
    exit 3
  fi
}

# ---------------------------------------------------------------- Docker engine
install_packages() {  # the Docker engine, and debootstrap for the stand-in's root filesystem
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null && return
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
}

start_dockerd() {
  docker info >/dev/null 2>&1 || launch_dockerd
  # Containers reach this machine (the local stack, through scripts/invoke.sh's forward) and nothing else.
  iptables -C DOCKER-USER -i docker0 ! -o docker0 -j DROP 2>/dev/null ||
    iptables -I DOCKER-USER -i docker0 ! -o docker0 -j DROP
}

launch_dockerd() {
  mkdir -p "$CACHE"
  # --userland-proxy=false: the proxy accepts SAM's connection before the emulated runtime listens, and
  # SAM gives up after three tries ("No response from invoke container").
  setsid dockerd --userland-proxy=false >"$CACHE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$DOCKERD_PID"
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$(cat "$DOCKERD_PID")" 2>/dev/null || { tail -20 "$CACHE/dockerd.log" >&2; exit 1; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not answer in 30 s ($CACHE/dockerd.log)" >&2; exit 1; }
}

stop_dockerd() {
  [[ -f $DOCKERD_PID ]] || return 0
  local pid
  pid=$(cat "$DOCKERD_PID")
  if ours_running; then
    kill "$pid"  # dockerd stops the containerd it started
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    echo "stopped dockerd ($pid), which scripts/lambda_standin.sh started"
  fi
  rm -f "$DOCKERD_PID"
}

# ---------------------------------------------------------------- arm64 emulation
QEMU_BINFMT=/proc/sys/fs/binfmt_misc/qemu-aarch64

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
  [[ -n $QEMU ]] && return
  trixie_apt update
  local work version
  work=$(mktemp -d)
  (cd "$work" && trixie_apt download qemu-user)
  dpkg-deb -x "$work"/qemu-user_*.deb "$work/x"
  version=$(dpkg-deb -f "$work"/qemu-user_*.deb Version)
  QEMU=$CACHE/qemu-${version//[:+~]/_}/qemu-aarch64
  mkdir -p "$(dirname "$QEMU")"
  install -m 755 "$work/x/usr/bin/qemu-aarch64" "$QEMU"
  cut -d: -f1-6 "$work/x/usr/share/qemu/binfmt.d/qemu-aarch64.conf" >"$QEMU.binfmt"
  rm -rf "$work"
}

register_qemu() {
  [[ -d /proc/sys/fs/binfmt_misc && -e /proc/sys/fs/binfmt_misc/register ]] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [[ -e $QEMU_BINFMT ]]; then
    grep -qx "interpreter $QEMU" "$QEMU_BINFMT" && grep -qx "flags: F" "$QEMU_BINFMT" && return
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
  phase debootstrap run_debootstrap "$root"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale
  tar -C "$root" --numeric-owner -cf "$1.partial" . && mv "$1.partial" "$1"
  rm -rf "$root"
}

build_rootfs() {  # build_rootfs BASE_TARBALL TARBALL: the runtime on the Debian base
  local root
  root=$(mktemp -d "$CACHE/rootfs.XXXX")
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

load_image() {  # load_image TARBALL KEY
  .venv/bin/python -m photoveil_dev.invoke.image "$1" --tag "$IMAGE" --arch arm64 \
    --env PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin --env LANG=C.UTF-8 --env TZ=:/etc/localtime \
    --env LAMBDA_TASK_ROOT=/var/task --env LAMBDA_RUNTIME_DIR=/var/runtime --env QEMU_CPU=$QEMU_CPU \
    --label "photoveil.standin=$2" --workdir /var/task --entrypoint /var/runtime/bootstrap |
    docker load
  # SAM's image was built FROM the one replaced: it must build it again. The replaced one is of no use.
  docker image rm "$RAPID_IMAGE" >/dev/null 2>&1 || true
  docker image prune -f --filter label=photoveil.standin >/dev/null
}

ensure_image() {
  local key base tarball
  key=$(recipe_key)
  if [[ $(docker image inspect -f '{{index .Config.Labels "photoveil.standin"}}' "$IMAGE" 2>/dev/null) == "$key" ]]; then
    echo "    $IMAGE: the stand-in, recipe $key, already loaded"
    return
  fi
  base=$CACHE/base-$(base_key).tar
  tarball=$CACHE/rootfs-$key.tar
  [[ -f $tarball || -f $base ]] || build_base "$base"
  [[ -f $tarball ]] || build_rootfs "$base" "$tarball"
  phase "docker load" load_image "$tarball" "$key"
  # Older recipes' root filesystems are of no further use.
  find "$CACHE" -maxdepth 1 \( \( -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" \) -o \
    \( -name 'base-*.tar' ! -name "${base##*/}" \) \) -delete
}

ours_running() {  # the Docker engine answering is the one `ensure` started
  [[ -f $DOCKERD_PID && $(cat "/proc/$(cat "$DOCKERD_PID")/comm" 2>/dev/null) == dockerd ]]
}

case "${1:-}" in
  wanted)  # exit 0 if this machine needs the stand-in: no Docker engine answers, or only ours
    ours_running || ! docker info >/dev/null 2>&1
    ;;
  ensure)
    need_root
    mkdir -p "$CACHE"
    phase "docker.io and debootstrap (apt)" install_packages
    phase dockerd start_dockerd
    phase "qemu-user from $SUITE" fetch_qemu
    register_qemu
    phase "stand-in image" ensure_image
    ;;
  stop) stop_dockerd ;;
  *) echo "usage: $0 wanted|ensure|stop" >&2; exit 2 ;;
esac
