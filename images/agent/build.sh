#!/bin/sh
# Builds plugstorm-agent: nanopb C generated from the telemetry proto (with its
# .options bounds), then
#   build/agent/plugstorm-agent         static, musl-gcc -Os (for guest images)
#   build/agent/plugstorm-agent-native  plain gcc (host-side tests)
#   build/agent/frame-tool              the framing code alone, for interop tests
# Usage: images/agent/build.sh [musl|native|all]   (default all)
# Needs (Debian): nanopb libnanopb-dev protobuf-compiler python3-protobuf
#                 musl-tools linux-libc-dev gcc
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/build/agent"
what=${1:-all}
gen="$out/gen"
proto="plugstorm/telemetry/v1/telemetry.proto"
nanopb_lib=/usr/lib/x86_64-linux-gnu/libprotobuf-nanopb.a

need() { command -v "$1" >/dev/null 2>&1 || { echo "build.sh: $1 not found (Debian package: $2)" >&2; exit 1; }; }
need nanopb_generator.py nanopb
need protoc protobuf-compiler
[ -f /usr/include/pb_encode.h ] && [ -f "$nanopb_lib" ] || { echo "build.sh: nanopb headers/library missing (Debian package: libnanopb-dev)" >&2; exit 1; }

mkdir -p "$gen" "$out/include"
# Test files build in parallel (native for test/agent, musl for the guest): one at a time.
exec 9>"$out/.build.lock"
flock 9
# Generated only when the proto or its options changed.
if [ ! -f "$gen/plugstorm/telemetry/v1/telemetry.pb.c" ] ||
   [ "$root/proto/$proto" -nt "$gen/plugstorm/telemetry/v1/telemetry.pb.c" ] ||
   [ "$root/proto/plugstorm/telemetry/v1/telemetry.options" -nt "$gen/plugstorm/telemetry/v1/telemetry.pb.c" ]; then
	nanopb_generator.py -q -I "$root/proto" -D "$gen" "$proto"
fi
# musl-gcc must not see glibc's /usr/include: give it nanopb's headers and the
# kernel UAPI headers (linux-libc-dev) on their own.
for h in pb.h pb_common.h pb_encode.h pb_decode.h; do cp -p "/usr/include/$h" "$out/include/$h"; done
for d in linux asm-generic; do ln -sfn "/usr/include/$d" "$out/include/$d"; done
ln -sfn /usr/include/x86_64-linux-gnu/asm "$out/include/asm"

src="$here/main.c $here/core/agent.c $here/core/framing.c $here/core/backend_none.c $here/linux/backend_linux.c $gen/plugstorm/telemetry/v1/telemetry.pb.c"
cflags="-std=c11 -Wall -Wextra -Wno-missing-field-initializers -I$gen -I$here"

if [ "$what" = native ] || [ "$what" = all ]; then
	need gcc gcc
	# Built aside and renamed: a test may be running the previous binary.
	gcc $cflags -O2 -g -o "$out/.agent-native.$$" $src "$nanopb_lib"
	gcc $cflags -O2 -g -o "$out/.frame-tool.$$" "$here/tools/frame_tool.c" "$here/core/framing.c"
	mv -f "$out/.agent-native.$$" "$out/plugstorm-agent-native"
	mv -f "$out/.frame-tool.$$" "$out/frame-tool"
	echo "built $out/plugstorm-agent-native $out/frame-tool"
fi
if [ "$what" = musl ] || [ "$what" = all ]; then
	need musl-gcc musl-tools
	[ -f /usr/include/linux/netlink.h ] || { echo "build.sh: kernel UAPI headers missing (Debian package: linux-libc-dev)" >&2; exit 1; }
	musl-gcc $cflags -I"$out/include" -Os -static -s -o "$out/.agent-musl.$$" $src "$nanopb_lib"
	mv -f "$out/.agent-musl.$$" "$out/plugstorm-agent"
	echo "built $out/plugstorm-agent ($(wc -c < "$out/plugstorm-agent") bytes, static musl)"
fi
