#!/usr/bin/env bash
# bench/helpers.sh: whole-process benchmarks with public tools.
#
#   bench/helpers.sh [-o DIR] [helpers] [crane] [throughput] [profile]   (default: all)
#
# helpers     hyperfine times `get` of docker-credential-connector against a
#             minimal Go program that prints a fixed credential (the floor,
#             bench/floor), docker-credential-pass, docker-credential-secretservice
#             and docker-credential-ecr-login with a warm cache, all in one
#             hyperfine invocation per round; ratios to the floor.
# crane       hyperfine times `crane manifest` against a real docker-registry
#             (htpasswd auth) with credsStore=connector, with plain base64
#             `auths`, and with the floor as a helper (credsStore=floor), one
#             invocation per round; ratios to plain auths.
# throughput  BenchmarkDaemonGet (bench/throughput_test.go) against the real
#             `connectord serve` process started here rather than in-process.
# profile     where the helper's time over the floor goes: one hyperfine
#             invocation per round of the floor, bench/credfixed (the
#             credentials package with a fixed answer, no daemon),
#             bench/rawsocket (the same get over blocking syscalls instead of
#             package net), the helper as `make build` builds it (static,
#             CGO_ENABLED=0) and as it was built before (CGO_ENABLED=1,
#             dynamically linked); binary sizes, GODEBUG=inittrace=1 and,
#             where perf works, perf stat.
#
# Everything runs against throwaway state in one temporary directory: a real
# `connectord serve` on its own socket, a gpg key and password store for pass,
# a password-less keyring file served by gnome-keyring-daemon on a private
# D-Bus session (the script re-executes itself under dbus-run-session), an ECR
# cache file, a registry. HOME and the XDG directories point there too, so
# nothing of the user's is read or written. Every process started here is
# stopped and the directory removed on exit.
#
# Environment: RUNS (hyperfine runs per helper command and round, default
# 150), WARMUP (default 20), ROUNDS (hyperfine invocations, default 10; the
# command order is rotated by one each round and reversed every other round,
# so that no command always follows the same one), CRANE_RUNS (default 50),
# BENCHTIME (throughput, default 2s). Results go to DIR (default
# bench/results): PART-round-N.json as exported by hyperfine,
# PART-commands.txt (the exact command lines), PART.md (the tables from
# bench/report), machine.txt.
#
# Why every helper command is `sh -c 'exec HELPER get < FILE'`: a credential
# helper reads the server URL on stdin, and hyperfine 1.15 (Debian 12) has no
# --input option and gives commands an empty stdin. Every command, the floor
# included, goes through the same dash wrapper, and the wrapper alone
# (`sh -c ': < FILE'`) is timed in the same invocation so that bench/report
# can give ratios with its cost taken off ("net") as well as without ("raw").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
script="$repo/bench/helpers.sh"
out="$repo/bench/results"
if [ "${1:-}" = "-o" ]; then
	out=$2
	shift 2
fi
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(helpers crane throughput profile)
for m in "${modes[@]}"; do
	case $m in helpers | crane | throughput | profile) ;; *)
		echo "usage: bench/helpers.sh [-o DIR] [helpers] [crane] [throughput] [profile]" >&2
		exit 2
		;;
	esac
done
want() { local m; for m in "${modes[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }
have() { command -v "$1" >/dev/null 2>&1; }
log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

RUNS=${RUNS:-150}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-10}
CRANE_RUNS=${CRANE_RUNS:-50}
BENCHTIME=${BENCHTIME:-2s}

# docker-credential-secretservice needs a D-Bus session bus; give it a
# private one by running the whole script under dbus-run-session, which ends
# the bus when the script ends.
if want helpers && [ -z "${CDBENCH_IN_DBUS:-}" ] && have dbus-run-session && have gnome-keyring-daemon; then
	CDBENCH_IN_DBUS=1 exec dbus-run-session -- "$script" -o "$out" "${modes[@]}"
fi

for t in go make hyperfine; do have "$t" || die "$t not found (install the tools with .ci/install-deps)"; done
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- state, cleanup ----------------------------------------------------------
# A short directory: the daemon's socket path must fit in 108 bytes.
work=$(mktemp -d "${TMPDIR:-/tmp}/cdb.XXXXXX")
pids=()
cleanup() {
	local rc=$? pid
	set +e
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [ -d "$work/gnupg" ]; then
		GNUPGHOME="$work/gnupg" gpgconf --kill gpg-agent 2>/dev/null
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build (before HOME moves, so the Go build cache is the user's) -------
log "building bin/ (make build), the floor, bench/report and the bench test binary"
make -s -C "$repo" build >/dev/null
mkdir -p "$work/bin"
# The floor gets the helper's build flags (Makefile: CGO_ENABLED=0 go build
# -trimpath -ldflags '-s -w ...').
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/bin/floor" ./bench/floor)
(cd "$repo" && go build -o "$work/bin/report" ./bench/report)
if want throughput; then
	(cd "$repo" && go test -c -o "$work/bin/bench.test" ./bench)
fi
if want profile; then
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/bin/credfixed" ./bench/credfixed)
	# The helper as built before 540d936 (cgo on, so package net links libc
	# dynamically), to show what building it static bought.
	(cd "$repo" && CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o "$work/bin/connector-cgo" ./cmd/docker-credential-connector)
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/bin/rawsocket" ./bench/rawsocket)
fi
helper="$repo/bin/docker-credential-connector"
connectord="$repo/bin/connectord"

export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_STATE_HOME="$work/home/.local/state" \
	XDG_DATA_HOME="$work/home/.local/share" XDG_RUNTIME_DIR="$work/run"
mkdir -p -m 0700 "$HOME" "$XDG_RUNTIME_DIR"

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$(hyperfine --version), $(go version), $(sh -c 'readlink -f /bin/sh')"
	for b in "$helper" "$work/bin/floor"; do
		echo "$(basename "$b"): $(stat -c %s "$b") bytes$(have file && file -b "$b" | grep -o ', [a-z]*ally linked' || true)"
	done
} >"$out/machine.txt"

# --- the registry (crane only) ------------------------------------------------
reghost=""
if want crane; then
	for t in docker-registry htpasswd crane; do have "$t" || die "$t not found (install the tools with .ci/install-deps)"; done
	mkdir -p "$work/registry/storage"
	htpasswd -Bbn labuser labpass >"$work/registry/htpasswd"
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
		cat >"$work/registry/config.yml" <<-EOF
			version: 0.1
			log:
			  level: warn
			storage:
			  filesystem:
			    rootdirectory: $work/registry/storage
			http:
			  addr: 127.0.0.1:$port
			  secret: bench-$RANDOM$RANDOM
			auth:
			  htpasswd:
			    realm: connectord-bench
			    path: $work/registry/htpasswd
		EOF
		docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
		regpid=$!
		pids+=("$regpid")
		for _ in $(seq 100); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
			kill -0 "$regpid" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$regpid" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			reghost="127.0.0.1:$port"
			break
		fi
		log "docker-registry did not start on port $port (attempt $attempt): $(tail -n 3 "$work/registry/log")"
	done
	[ -n "$reghost" ] || die "could not start docker-registry"
	log "docker-registry on $reghost (htpasswd, bcrypt)"
fi

# --- connectord serve ----------------------------------------------------------
srv="registry.bench.example:5000" # what every helper is asked for
sock="$work/run/d.sock"
cat >"$work/config.toml" <<EOF
version = 1

[[connector]]
name = "bench"
type = "docker"
resource_id = "$srv"
[connector.config]
username = "labuser"
password = "labpass"
EOF
if [ -n "$reghost" ]; then
	cat >>"$work/config.toml" <<-EOF

		[[connector]]
		name = "crane"
		type = "docker"
		resource_id = "$reghost"
		[connector.config]
		username = "labuser"
		password = "labpass"
	EOF
fi
"$connectord" serve --config "$work/config.toml" --socket "$sock" --store "$work/credentials.json" 2>"$work/connectord.log" &
pids+=("$!")
export CONNECTORD_SOCKET="$sock" CONNECTORD_NO_AUTOSTART=1
printf '%s\n' "$srv" >"$work/in"
for _ in $(seq 100); do
	"$helper" get <"$work/in" >/dev/null 2>&1 && break
	sleep 0.05
done
"$helper" get <"$work/in" | grep -q '"Username":"labuser"' || die "connectord did not answer: $(tail -n 5 "$work/connectord.log")"
log "connectord serve on $sock"

# median_col N: the median of column N of stdin's lines.
median_col() { awk -v c="$1" '{ print $c }' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ratio_table RESULT_NAME FLOOR [WRAPPER] JSON...: the tables, to stdout and a file.
ratio_table() {
	local name=$1 floor=$2 wrapper=$3
	shift 3
	local args=(-floor "$floor")
	[ -n "$wrapper" ] && args+=(-wrapper "$wrapper")
	"$work/bin/report" hyperfine "${args[@]}" "$@" | tee "$out/$name.md"
}

# run_rounds PREFIX RUNS WARMUP NAME CMD [NAME CMD]...: ROUNDS hyperfine
# invocations of all the commands, the order rotated by one each round and
# reversed every other round; prints the JSON paths.
run_rounds() {
	local prefix=$1 runs=$2 warmup=$3
	shift 3
	local -a names=() cmds=()
	while [ $# -gt 0 ]; do
		names+=("$1")
		cmds+=("$2")
		shift 2
	done
	local n=${#names[@]} r i k
	rm -f "$out/$prefix"-round-*.json
	for ((r = 0; r < ROUNDS; r++)); do
		local -a args=()
		for ((k = 0; k < n; k++)); do
			i=$(((k + r) % n))
			((r % 2 == 0)) || i=$(((n - 1 - k + r) % n))
			args+=(-n "${names[$i]}" "${cmds[$i]}")
		done
		log "$prefix round $((r + 1))/$ROUNDS: hyperfine -N --warmup $warmup --runs $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
		hyperfine -N --warmup "$warmup" --runs "$runs" --style basic \
			--export-json "$out/$prefix-round-$((r + 1)).json" "${args[@]}" >&2
		echo "$out/$prefix-round-$((r + 1)).json"
	done
}

# --- helpers ---------------------------------------------------------------------
if want helpers; then
	# Every command is a NAME, a script for `sh -c` and the USERNAME its
	# answer must carry; each is run once and checked before timing.
	names=() scripts=() users=() left_out=()
	add() { names+=("$1"); scripts+=("$2"); users+=("$3"); }
	getcmd() { printf 'exec %s get < %s' "$1" "$2"; }

	add "sh wrapper alone" ": < $work/in" ""
	add "floor" "$(getcmd "$work/bin/floor" "$work/in")" labuser
	add "connector" "$(getcmd "$helper" "$work/in")" labuser

	# pass: a throwaway gpg key without passphrase, a password store in $work.
	if have docker-credential-pass && have pass && have gpg; then
		export GNUPGHOME="$work/gnupg" PASSWORD_STORE_DIR="$work/password-store"
		mkdir -m 0700 "$GNUPGHOME"
		gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
			--quick-gen-key 'connectord bench <bench@connectord.invalid>' default default never 2>/dev/null
		fpr=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
		pass init "$fpr" >/dev/null
		printf '{"ServerURL":"%s","Username":"labuser","Secret":"labpass"}' "$srv" | docker-credential-pass store
		add "pass" "$(getcmd "$(command -v docker-credential-pass)" "$work/in")" labuser
	else
		left_out+=("pass: docker-credential-pass, pass or gpg not installed (.ci/install-deps)")
	fi

	# secretservice: gnome-keyring-daemon on this script's private session
	# bus, serving a password-less keyring file (a keyring created with an
	# empty password is stored in plain text and never locked, so nothing
	# prompts), made the default collection.
	if [ -n "${CDBENCH_IN_DBUS:-}" ] && have docker-credential-secretservice && have dbus-send; then
		mkdir -p -m 0700 "$XDG_DATA_HOME/keyrings"
		cat >"$XDG_DATA_HOME/keyrings/login.keyring" <<-'EOF'
			[keyring]
			display-name=login
			ctime=0
			mtime=0
			lock-on-idle=false
			lock-after=false
		EOF
		printf 'login' >"$XDG_DATA_HOME/keyrings/default"
		chmod 0600 "$XDG_DATA_HOME/keyrings/login.keyring" "$XDG_DATA_HOME/keyrings/default"
		gnome-keyring-daemon --foreground --components=secrets </dev/null >"$work/gnome-keyring.log" 2>&1 &
		gkpid=$!
		pids+=("$gkpid")
		# Wait until it owns org.freedesktop.secrets, asking the bus without
		# activating anything: a client call before that would make
		# dbus-daemon start a keyring of its own, outside $work.
		owner=""
		for _ in $(seq 100); do
			owner=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
				org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
				awk '$1 == "uint32" { print $2 }') || true
			[ -n "$owner" ] && break
			sleep 0.05
		done
		[ "$owner" = "$gkpid" ] || die "org.freedesktop.secrets is owned by pid ${owner:-nobody}, not our gnome-keyring-daemon ($gkpid): $(cat "$work/gnome-keyring.log")"
		stored=""
		for _ in $(seq 100); do
			if printf '{"ServerURL":"%s","Username":"labuser","Secret":"labpass"}' "$srv" |
				docker-credential-secretservice store >/dev/null 2>&1; then
				stored=1
				break
			fi
			sleep 0.05
		done
		[ -n "$stored" ] || die "docker-credential-secretservice store failed: $(cat "$work/gnome-keyring.log")"
		add "secretservice" "$(getcmd "$(command -v docker-credential-secretservice)" "$work/in")" labuser
	else
		left_out+=("secretservice: needs docker-credential-secretservice, dbus-run-session, dbus-send and gnome-keyring-daemon (packages golang-docker-credential-helpers, dbus-bin, gnome-keyring)")
	fi

	# ecr-login with a warm cache: static keys, no instance metadata, and a
	# cache entry under the key 0.6.0 computes:
	#   REGION "-" base64(ACCESS_KEY_ID || md5("")) "-" REGISTRY_ID
	# (its checksum() calls md5.New().Sum([]byte(id)), which appends the
	# digest of nothing to the id), valid while now < ExpiresAt -
	# (ExpiresAt - RequestedAt)/2. Any miss would call AWS and retry for
	# seconds; the check before timing would notice.
	if have docker-credential-ecr-login; then
		export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
			AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
			AWS_ECR_CACHE_DIR="$work/ecr"
		unset AWS_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ECR_DISABLE_CACHE
		ecr_id=123456789012 ecr_region=us-east-1
		ecr_host="$ecr_id.dkr.ecr.$ecr_region.amazonaws.com"
		ecr_key="$ecr_region-$({
			printf '%s' "$AWS_ACCESS_KEY_ID"
			printf '\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\x09\x98\xec\xf8\x42\x7e'
		} | base64 -w0)-$ecr_id"
		mkdir -p -m 0700 "$AWS_ECR_CACHE_DIR"
		cat >"$AWS_ECR_CACHE_DIR/cache.json" <<-EOF
			{"Version":"1.0","Registries":{"$ecr_key":{"AuthorizationToken":"$(printf 'AWS:ecrpass' | base64 -w0)","RequestedAt":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","ExpiresAt":"$(date -u -d '+12 hours' +%Y-%m-%dT%H:%M:%SZ)","ProxyEndpoint":"https://$ecr_host","Service":"ecr"}}}
		EOF
		printf '%s\n' "$ecr_host" >"$work/ecr.in"
		add "ecr-login (warm cache)" "$(getcmd "$(command -v docker-credential-ecr-login)" "$work/ecr.in")" AWS
	else
		left_out+=("ecr-login: docker-credential-ecr-login not installed (package amazon-ecr-credential-helper)")
	fi

	for i in "${!names[@]}"; do
		[ -n "${users[$i]}" ] || continue
		got=$(sh -c "${scripts[$i]}" 2>&1) || die "${names[$i]} failed: $got"
		case $got in *"\"Username\":\"${users[$i]}\""*) ;; *)
			die "${names[$i]} did not answer the credential: $got"
			;;
		esac
	done
	{
		echo "# hyperfine -N --warmup $WARMUP --runs $RUNS, $ROUNDS rounds, environment as set by bench/helpers.sh"
		for i in "${!names[@]}"; do printf "%-24s sh -c '%s'\n" "${names[$i]}" "${scripts[$i]}"; done
		for l in "${left_out[@]+"${left_out[@]}"}"; do echo "left out: $l"; done
	} >"$out/helpers-commands.txt"
	for l in "${left_out[@]+"${left_out[@]}"}"; do log "left out: $l"; done

	args=()
	for i in "${!names[@]}"; do args+=("${names[$i]}" "sh -c '${scripts[$i]}'"); done
	mapfile -t files < <(run_rounds helpers "$RUNS" "$WARMUP" "${args[@]}")
	[ "${#files[@]}" -eq "$ROUNDS" ] || die "hyperfine failed"
	echo
	echo "## Whole-process get, ratios to the floor"
	ratio_table helpers floor "sh wrapper alone" "${files[@]}"
fi

# --- crane -----------------------------------------------------------------------
if want crane; then
	ref="$reghost/bench/app:latest"
	mkdir -p "$work/docker-auths" "$work/docker-helper" "$work/layer"
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$reghost" "$(printf 'labuser:labpass' | base64 -w0)" >"$work/docker-auths/config.json"
	printf '{"credsStore":"connector"}\n' >"$work/docker-helper/config.json"
	# The floor as a helper too (its fixed answer is the registry's user),
	# to show what running any helper costs crane.
	mkdir -p "$work/docker-floor" "$work/credbin"
	printf '{"credsStore":"floor"}\n' >"$work/docker-floor/config.json"
	ln -s "$work/bin/floor" "$work/credbin/docker-credential-floor"
	echo "connectord bench" >"$work/layer/hello.txt"
	tar -C "$work/layer" -cf "$work/layer.tar" hello.txt
	DOCKER_CONFIG="$work/docker-auths" crane append -f "$work/layer.tar" -t "$ref" >/dev/null 2>&1 ||
		die "crane append to $ref failed: $(tail -n 3 "$work/registry/log")"
	export PATH="$repo/bin:$work/credbin:$PATH" # crane finds docker-credential-{connector,floor} here
	for d in docker-helper docker-floor docker-auths; do
		DOCKER_CONFIG="$work/$d" crane manifest "$ref" >/dev/null ||
			die "crane manifest with $d failed"
	done
	# A wrong password must fail, or the registry is not checking auth.
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$reghost" "$(printf 'labuser:wrong' | base64 -w0)" >"$work/wrong.json"
	mkdir -p "$work/docker-wrong" && mv "$work/wrong.json" "$work/docker-wrong/config.json"
	if DOCKER_CONFIG="$work/docker-wrong" crane manifest "$ref" >/dev/null 2>&1; then
		die "the registry accepted a wrong password"
	fi
	crane_bin=$(command -v crane)
	c_helper="env DOCKER_CONFIG=$work/docker-helper $crane_bin manifest $ref"
	c_auths="env DOCKER_CONFIG=$work/docker-auths $crane_bin manifest $ref"
	c_floor="env DOCKER_CONFIG=$work/docker-floor $crane_bin manifest $ref"
	{
		echo "# hyperfine -N --warmup 10 --runs $CRANE_RUNS, $ROUNDS rounds; registry: docker-registry with htpasswd (bcrypt) on $reghost"
		echo "crane + connector   $c_helper        # config.json: {\"credsStore\":\"connector\"}"
		echo "crane + auths       $c_auths         # config.json: {\"auths\":{\"$reghost\":{\"auth\":\"<base64 user:pass>\"}}}"
		echo "crane + floor       $c_floor         # config.json: {\"credsStore\":\"floor\"}, docker-credential-floor = bench/floor"
	} >"$out/crane-commands.txt"
	mapfile -t files < <(run_rounds crane "$CRANE_RUNS" 10 "crane + auths" "$c_auths" "crane + connector" "$c_helper" "crane + floor" "$c_floor")
	[ "${#files[@]}" -eq "$ROUNDS" ] || die "hyperfine failed"
	echo
	echo "## crane manifest: credsStore=connector against plain auths"
	ratio_table crane "crane + auths" "" "${files[@]}"
fi

# --- throughput against the daemon process -------------------------------------
if want throughput; then
	echo
	echo "## BenchmarkDaemonGet against this \`connectord serve\` process ($sock)"
	CONNECTORD_BENCH_SOCKET="$sock" CONNECTORD_BENCH_SERVER_URL="$srv" \
		"$work/bin/bench.test" -test.run '^$' -test.bench '^BenchmarkDaemonGet$' -test.benchtime "$BENCHTIME" |
		tee "$out/throughput-process.txt"
	"$work/bin/report" gotest "$out/throughput-process.txt" | tee "$out/throughput-process.md"
fi

# --- profile: where the helper's time over the floor goes --------------------------
if want profile; then
	variants=("floor:$work/bin/floor" "credfixed:$work/bin/credfixed"
		"rawsocket:$work/bin/rawsocket" "connector:$helper" "connector, CGO_ENABLED=1:$work/bin/connector-cgo")
	args=("sh wrapper alone" "sh -c ': < $work/in'")
	for v in "${variants[@]}"; do
		args+=("${v%%:*}" "sh -c 'exec ${v#*:} get < $work/in'")
		got=$(sh -c "exec ${v#*:} get < $work/in") || die "${v%%:*} failed"
		case $got in *'"Username":"labuser"'*) ;; *) die "${v%%:*} answered $got" ;; esac
	done
	{
		echo "# hyperfine -N --warmup $WARMUP --runs $RUNS, $ROUNDS rounds"
		for ((i = 0; i < ${#args[@]}; i += 2)); do printf '%-26s %s\n' "${args[$i]}" "${args[$((i + 1))]}"; done
	} >"$out/profile-commands.txt"
	mapfile -t files < <(run_rounds profile "$RUNS" "$WARMUP" "${args[@]}")
	[ "${#files[@]}" -eq "$ROUNDS" ] || die "hyperfine failed"
	{
		echo
		echo "## Profile: the floor, the credentials package, a blocking-syscall transport, the helper static and with cgo"
		"$work/bin/report" hyperfine -floor floor -wrapper "sh wrapper alone" "${files[@]}"
		echo
		echo "Binaries and package initialisation (GODEBUG=inittrace=1, median of 21 runs of \`get\`):"
		echo
		echo "| binary | size | linking | inits | sum of init clock | runtime start to last init |"
		echo "|---|---:|---|---:|---:|---:|"
		for v in "${variants[@]}"; do
			bin=${v#*:}
			link=$( (have file && file -b "$bin" | grep -o '[a-z]*ally linked') || echo "?")
			runs=$(for _ in $(seq 21); do
				GODEBUG=inittrace=1 "$bin" get <"$work/in" 2>&1 >/dev/null |
					awk '$1 == "init" { n++; c += $5; at = $3 } END { sub("@", "", at); printf "%d %.3f %.3f\n", n, c, at }'
			done)
			printf '| %s | %s MB | %s | %s | %s ms | %s ms |\n' "${v%%:*}" "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.2f", b / 1e6 }')" "$link" \
				"$(median_col 1 <<<"$runs")" "$(median_col 2 <<<"$runs")" "$(median_col 3 <<<"$runs")"
		done
		if have perf && perf stat -e task-clock true >/dev/null 2>&1; then
			echo
			echo "perf stat -r $RUNS (through the same wrapper; CPU and faults of the helper process, not the daemon's):"
			echo
			echo "| command | task-clock | page-faults | context-switches |"
			echo "|---|---:|---:|---:|"
			for ((i = 0; i < ${#args[@]}; i += 2)); do
				script=${args[$((i + 1))]#sh -c \'}
				script=${script%\'}
				perf stat -x, -r "$RUNS" -e task-clock,page-faults,context-switches sh -c "$script" 2>&1 >/dev/null |
					awk -F, -v name="${args[$i]}" '$3 == "task-clock" { tc = $1 } $3 == "page-faults" { pf = $1 } $3 == "context-switches" { cs = $1 }
						END { printf "| %s | %.2f ms | %d | %d |\n", name, tc, pf, cs }'
			done
		else
			echo
			echo "perf stat: not available here (perf missing or perf_event_paranoid forbids it)."
		fi
	} | tee "$out/profile.md"
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
log "results in $out"
