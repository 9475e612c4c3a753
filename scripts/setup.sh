#!/usr/bin/env bash
# kniv set-up: everything a fresh Debian machine needs to build, run and test kniv.
#
# Idempotent: each step checks whether its result is already there and says
# so in one line. Called by `npm start` and `npm test`; safe to run by hand.
#
#   scripts/setup.sh               full set-up
#   scripts/setup.sh --build-only  skip system packages and kernels, just build
#
# Environment:
#   KNIV_CACHE   where Debian kernels are unpacked (default /var/cache/kniv as
#                root, else ~/.cache/kniv); shared by every clone on the machine
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

build_only=0
for arg in "$@"; do
	case "$arg" in
	--build-only) build_only=1 ;;
	*) echo "setup: unknown argument: $arg" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" = 0 ]; then
	cache=${KNIV_CACHE:-/var/cache/kniv}
	sudo=()
else
	cache=${KNIV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kniv}
	sudo=(sudo)
fi

started=$SECONDS
step() { printf '==> %s\n' "$*"; }
ok() { printf '    %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# Debian packages --------------------------------------------------------------

# qemu and the initramfs pieces for the appliance VM; compilers, kbuild's
# runtime libraries and pahole (BTF) for kni.ko (and 32-bit libc for the
# probe of its compat ioctls); iproute2/ethtool/iperf3 used
# by the tests inside the VM; python3 and g++ for node-gyp; chromium for the
# dashboard's browser tests (driven by playwright-core, which never downloads
# a browser of its own).
packages=(
	qemu-system-x86 busybox-static kmod cpio xz-utils zstd util-linux
	make gcc-12 gcc-multilib g++ libc6-dev libelf1 libssl3 dwarves bc
	iproute2 iputils-ping ethtool iperf3 python3 ca-certificates
	chromium
)

apt_lists_present() {
	compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null
}

apt_updated=0
apt_update() {
	if [ "$apt_updated" = 0 ]; then
		ok "apt-get update"
		"${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
		apt_updated=1
	fi
}

install_packages() {
	step "Debian packages"
	local missing=() p
	for p in "${packages[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} = 0 ]; then
		ok "all ${#packages[@]} present"
		return
	fi
	ok "installing: ${missing[*]}"
	apt_update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
		-o DPkg::Lock::Timeout=300 -o Dpkg::Progress-Fancy=0 \
		install --no-install-recommends "${missing[@]}" |
		grep -E '^(Get:|Setting up|Unpacking)' | sed 's/^/    /' || true
	for p in "${missing[@]}"; do
		[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] ||
			die "package $p did not install"
	done
}

# Appliance kernels ---------------------------------------------------------------

# The first dependency of a metapackage that names a real package, or of a
# headers package the one matching a pattern.
first_dep() { # package pattern
	apt-cache depends "$1" 2>/dev/null |
		awk -v pat="$2" '/^ *\|?(Pre)?Depends: / { if ($2 ~ pat) { print $2; exit } }'
}

resolve_kernel() { # label image-meta headers-meta -> sets image headers common kbuild release
	local label=$1 meta_image=$2 meta_headers=$3
	image=$(first_dep "$meta_image" '^linux-image-')
	headers=$(first_dep "$meta_headers" '^linux-headers-')
	if [ -z "$image" ] || [ -z "$headers" ]; then
		apt_update
		image=$(first_dep "$meta_image" '^linux-image-')
		headers=$(first_dep "$meta_headers" '^linux-headers-')
	fi
	[ -n "$image" ] || die "cannot resolve $meta_image (kernel $label) with apt-cache"
	[ -n "$headers" ] || die "cannot resolve $meta_headers (kernel $label) with apt-cache"
	common=$(first_dep "$headers" '^linux-headers-.*-common$')
	kbuild=$(first_dep "$headers" '^linux-kbuild-')
	[ -n "$common" ] && [ -n "$kbuild" ] || die "cannot resolve the dependencies of $headers"
	release=${image#linux-image-}
	case "$release" in
	"$label".*) ;;
	*) die "$meta_image points at $release, not a $label kernel" ;;
	esac
}

# Download the image, headers, common headers and kbuild packages and unpack
# them into a private tree: nothing is installed on the host, and the 6.12
# headers package (which depends on its image) never reaches dpkg.
unpack_kernel() { # label image-meta headers-meta
	local label=$1
	resolve_kernel "$@"
	local root=$cache/kernels/$release
	step "kernel $label: $release"
	if [ -f "$root/.kniv-complete" ]; then
		ok "already unpacked in $root"
	else
		local debs=$cache/debs tmp=$root.tmp
		mkdir -p "$debs"
		rm -rf "$tmp"
		mkdir -p "$tmp"
		local pkg deb
		for pkg in "$image" "$headers" "$common" "$kbuild"; do
			deb=$(compgen -G "$debs/${pkg}_*.deb" | head -n1 || true)
			if [ -z "$deb" ]; then
				ok "downloading $pkg"
				(cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null) ||
					{ apt_update; (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null); }
				deb=$(compgen -G "$debs/${pkg}_*.deb" | head -n1)
			fi
			ok "unpacking $(basename "$deb")"
			dpkg -x "$deb" "$tmp"
		done
		# The headers' Makefile includes the common tree by absolute path.
		local mk=$tmp/usr/src/linux-headers-$release/Makefile
		[ -f "$mk" ] || die "no $mk in the headers package"
		sed -i "s#^include /usr/src/#include $root/usr/src/#" "$mk"
		# The packages ship no modules.dep.
		depmod -b "$tmp" "$release"
		rm -f "$debs/${image}_"*.deb
		mv "$tmp" "$root"
		touch "$root/.kniv-complete"
		ok "unpacked into $root"
	fi
	kernels_json+=$(printf '%s"%s": {"release": "%s", "root": "%s", "vmlinuz": "%s", "kdir": "%s", "modules": "%s"}' \
		"${kernels_json:+, }" "$label" "$release" "$root" "$root/boot/vmlinuz-$release" \
		"$root/usr/src/linux-headers-$release" "$root/lib/modules/$release")
}

# checkpatch.pl is not packaged on its own: take it from Debian's kernel source.
fetch_checkpatch() {
	step "checkpatch"
	local dir=$cache/checkpatch
	if [ -f "$dir/.kniv-complete" ]; then
		ok "already in $dir"
		return
	fi
	local src
	src=$(first_dep linux-source '^linux-source-')
	[ -n "$src" ] || { apt_update; src=$(first_dep linux-source '^linux-source-'); }
	[ -n "$src" ] || die "cannot resolve linux-source"
	local tmp=$cache/checkpatch.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	ok "downloading $src (for scripts/checkpatch.pl)"
	(cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$src" >/dev/null)
	dpkg -x "$tmp"/*.deb "$tmp/x"
	ok "extracting checkpatch from the source tarball"
	tar -xJf "$tmp"/x/usr/src/linux-source-*.tar.xz -C "$tmp" --wildcards --strip-components=2 \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
	mkdir -p "$dir"
	mv "$tmp"/checkpatch.pl "$tmp"/spelling.txt "$tmp"/const_structs.checkpatch "$dir"/
	rm -rf "$tmp"
	touch "$dir/.kniv-complete"
	ok "checkpatch.pl in $dir"
}

# npm packages ----------------------------------------------------------------------

npm_install() {
	step "npm packages"
	local want have=""
	want=$(sha256sum package-lock.json | cut -d' ' -f1)
	[ -f node_modules/.kniv-lock-sha256 ] && have=$(cat node_modules/.kniv-lock-sha256)
	if [ "$want" = "$have" ]; then
		ok "node_modules matches package-lock.json"
		return
	fi
	# better-sqlite3 builds its bundled SQLite from source: nothing is downloaded
	# from outside the npm registry (its prebuild-install would fetch a binary).
	npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error
	echo "$want" > node_modules/.kniv-lock-sha256
}

# Builds ---------------------------------------------------------------------------

# One build directory per kernel, holding links to the sources, so that both
# kernels' objects coexist. Kbuild rebuilds only what changed.
build_module() { # label release kdir
	local label=$1 release=$2 kdir=$3
	local out=build/module/$release
	mkdir -p "$out"
	local f
	for f in module/*.c module/*.h module/Kbuild; do
		ln -sfn "$top/$f" "$out/$(basename "$f")"
	done
	local before=""
	[ -f "$out/kni.ko" ] && before=$(stat -c %Y.%s "$out/kni.ko")
	local log
	if ! log=$(make -C "$kdir" M="$top/$out" KCFLAGS=-Werror modules 2>&1); then
		printf '%s\n' "$log" >&2
		die "kni.ko does not build against $release"
	fi
	if grep -qi 'warning:' <<<"$log"; then
		printf '%s\n' "$log" >&2
		die "kni.ko builds with warnings against $release"
	fi
	if [ "$before" = "$(stat -c %Y.%s "$out/kni.ko")" ]; then
		ok "kni.ko for $label ($release) up to date"
	else
		ok "built $out/kni.ko"
	fi
}

build_addon() {
	local gyp=(node_modules/.bin/node-gyp --directory native --loglevel=error)
	[ -f /usr/include/node/node_api.h ] && gyp+=(--nodedir=/usr)
	local before=""
	[ -f native/build/Release/kniv.node ] && before=$(stat -c %Y native/build/Release/kniv.node)
	if [ ! -f native/build/Makefile ]; then
		"${gyp[@]}" configure >/dev/null
	fi
	"${gyp[@]}" build >/dev/null
	if [ "$before" = "$(stat -c %Y native/build/Release/kniv.node)" ]; then
		ok "addon up to date"
	else
		ok "built native/build/Release/kniv.node"
	fi
}

build_ts() {
	local before=""
	[ -f dist/.tsbuildinfo ] && before=$(stat -c %Y dist/.tsbuildinfo)
	node_modules/.bin/tsc -p tsconfig.json
	# The dashboard is plain JavaScript served as is; tsc checks its JSDoc types
	# against the service's schemas.
	node_modules/.bin/tsc -p server/ui/tsconfig.json
	chmod +x dist/bin/kniv.js
	if [ "$before" = "$(stat -c %Y dist/.tsbuildinfo)" ]; then
		ok "TypeScript up to date"
	else
		ok "compiled TypeScript into dist/"
	fi
	build_bundle
}

# The kniv command users run (the package's bin) is dist/kniv/kniv.js: the
# compiled dist/bin/kniv.js bundled with what it imports, one chunk per lazily
# loaded command. Node then compiles a few files instead of resolving and
# loading hundreds of modules: under TCG in the appliance VM that takes
# `kniv serve` from 8-12 s to about 4 s before it listens. The tests import
# the unbundled modules in dist/ and run the command as users do.
# better-sqlite3 stays outside: it loads its compiled addon from its package.
build_bundle() {
	local want
	want=$(cat dist/.tsbuildinfo node_modules/.kniv-lock-sha256 | sha256sum | cut -d' ' -f1)
	if [ -f dist/kniv/kniv.js ] && [ "$(cat dist/kniv/.inputs-sha256 2>/dev/null)" = "$want" ]; then
		ok "bundle up to date"
		return
	fi
	rm -rf dist/kniv
	# CommonJS dependencies require() Node's own modules; an ES module has no
	# require until the banner makes one.
	node_modules/.bin/esbuild dist/bin/kniv.js --bundle --splitting --format=esm \
		--platform=node --target=node20 --external:better-sqlite3 \
		--outdir=dist/kniv --entry-names='[name]' --chunk-names='chunk-[hash]' --log-level=warning \
		--banner:js="import { createRequire as knivCreateRequire } from 'node:module'; const require = knivCreateRequire(import.meta.url);"
	chmod +x dist/kniv/kniv.js
	node dist/kniv/kniv.js --help >/dev/null || die "the bundled kniv command does not run"
	echo "$want" > dist/kniv/.inputs-sha256
	ok "bundled the kniv command into dist/kniv/"
}

# Main -------------------------------------------------------------------------------

# A step run beside the main line (two cores: npm ci compiling SQLite while
# the kernels unpack, tsc while kni.ko builds). Its output is kept aside and
# printed when it is awaited.
aside_logs=()
trap 'rm -f "${aside_logs[@]}"' EXIT
aside() { # command... -> sets aside_pid, aside_log
	aside_log=$(mktemp)
	aside_logs+=("$aside_log")
	"$@" >"$aside_log" 2>&1 &
	aside_pid=$!
}
await_aside() { # pid log what
	local status=0
	wait "$1" || status=$?
	cat "$2"
	[ "$status" = 0 ] || die "$3 failed"
}

mkdir -p build
npm_pid=""
if [ "$build_only" = 0 ]; then
	install_packages
	# Needs only the toolchain from the packages above.
	aside npm_install
	npm_pid=$aside_pid npm_log=$aside_log
	mkdir -p "$cache"
	kernels_json=""
	unpack_kernel 6.1 linux-image-amd64 linux-headers-amd64
	unpack_kernel 6.12 linux-image-6.12-amd64 linux-headers-6.12-amd64
	printf '{%s}\n' "$kernels_json" > build/kernels.json.tmp
	mv build/kernels.json.tmp build/kernels.json
	fetch_checkpatch
	printf '{"checkpatch": "%s"}\n' "$cache/checkpatch/checkpatch.pl" > build/tools.json
fi
if [ -n "$npm_pid" ]; then
	await_aside "$npm_pid" "$npm_log" "npm ci"
else
	npm_install
fi
[ -f build/kernels.json ] || die "build/kernels.json is missing: run scripts/setup.sh without --build-only once"

step "build"
aside build_ts
ts_pid=$aside_pid ts_log=$aside_log
while IFS=$'\t' read -r label release kdir; do
	build_module "$label" "$release" "$kdir"
done < <(node -e '
	const k = JSON.parse(require("fs").readFileSync("build/kernels.json", "utf8"));
	for (const [label, v] of Object.entries(k)) console.log([label, v.release, v.kdir].join("\t"));
')
build_addon
await_aside "$ts_pid" "$ts_log" "the TypeScript build"
printf '==> set-up complete in %ss\n' "$((SECONDS - started))"
