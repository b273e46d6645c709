#!/usr/bin/env bash
# berth-runtime's OCI command line end to end: spec, run, create/start/state/
# kill/delete, exit codes, exec failures, CVE-2019-5736 and clean-up.
# usage: e2e_runtime_cli.sh BERTH_RUNTIME BERTH_PROBE
set -euo pipefail

BR=$1
PROBE=$2
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP e2e_runtime_cli: needs root (namespaces, cgroups, mounts)" >&2
	exit 77
fi

T=$(mktemp -d /tmp/berth-rt-e2e-XXXXXX)
B=$T/bundle
ROOT=$T/state
# Unique ids: other build directories may run this test at the same time.
S=$$
ids=(e2e-run-$S e2e-exit-$S e2e-noent-$S e2e-life-$S e2e-badstart-$S e2e-detach-$S)

cleanup() {
	for id in "${ids[@]}"; do
		"$BR" --root "$ROOT" delete --force "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# json FILE EXPR: evaluates EXPR on the JSON object j read from FILE.
json() {
	$PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

set_args() {
	$PY - "$B/config.json" "$@" <<'PYEOF'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
j = json.load(open(path))
j["process"]["args"] = args
json.dump(j, open(path, "w"), indent=1)
PYEOF
}

mkdir -p "$B/rootfs/bin" "$B/rootfs/tmp" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev"
cp /bin/busybox "$B/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$B/rootfs/bin/$a"
done
cp "$PROBE" "$B/rootfs/probe"
exe_sum=$(sha256sum "$BR" | cut -d' ' -f1)

# spec writes Docker's defaults; a second spec refuses to overwrite.
"$BR" spec --bundle "$B"
[ "$(json "$B/config.json" 'len(j["process"]["capabilities"]["bounding"])')" = 14 ] ||
	fail "spec: not 14 capabilities"
if "$BR" spec --bundle "$B" 2>/dev/null; then fail "spec overwrote config.json"; fi

# run: stdout, pid 1, exit status.
set_args /probe facts
"$BR" --root "$ROOT" run --bundle "$B" e2e-run-$S >"$T/facts.json"
[ "$(json "$T/facts.json" 'j["pid"]')" = 1 ] || fail "run: probe is not pid 1"
[ "$(json "$T/facts.json" 'j["fds"]')" = "[0, 1, 2]" ] || fail "run: fds leaked"
set_args sh -c 'exit 3'
rc=0
"$BR" --root "$ROOT" run --bundle "$B" e2e-exit-$S || rc=$?
[ "$rc" = 3 ] || fail "run: exit status $rc, want 3"
set_args /no/such/program
rc=0
"$BR" --root "$ROOT" run --bundle "$B" e2e-noent-$S 2>"$T/err" || rc=$?
[ "$rc" = 127 ] || fail "run: exit status $rc for a missing program, want 127"
grep -q "exec /no/such/program: No such file or directory" "$T/err" ||
	fail "run: error line: $(cat "$T/err")"

# create leaves the init waiting before its execve; start lets it go.
set_args sh -c 'echo started; exec sleep 1000'
"$BR" --root "$ROOT" create --bundle "$B" --pid-file "$T/pid" e2e-life-$S >"$T/life.out" 2>&1
"$BR" --root "$ROOT" state e2e-life-$S >"$T/state.json"
[ "$(json "$T/state.json" 'j["status"]')" = created ] || fail "state: not created"
pid=$(json "$T/state.json" 'j["pid"]')
[ "$pid" = "$(cat "$T/pid")" ] || fail "state: pid differs from --pid-file"
[ "$(json "$T/state.json" 'j["bundle"]')" = "$(realpath "$B")" ] || fail "state: bundle"
[ "$(json "$T/state.json" 'j["ociVersion"]')" = 1.0.2 ] || fail "state: ociVersion"
# CVE-2019-5736: the waiting init runs from a sealed memfd, not the host binary.
case "$(readlink /proc/"$pid"/exe)" in
/memfd:*) ;;
*) fail "CVE-2019-5736: init's exe is $(readlink /proc/"$pid"/exe), not a memfd" ;;
esac
if (echo x >>/proc/"$pid"/exe) 2>/dev/null; then fail "CVE-2019-5736: init's exe is writable"; fi
"$BR" --root "$ROOT" start e2e-life-$S
[ "$(json <("$BR" --root "$ROOT" state e2e-life-$S) 'j["status"]')" = running ] ||
	fail "state: not running after start"
if "$BR" --root "$ROOT" start e2e-life-$S 2>/dev/null; then fail "start twice"; fi
if "$BR" --root "$ROOT" delete e2e-life-$S 2>/dev/null; then fail "delete of a running container"; fi
"$BR" --root "$ROOT" kill e2e-life-$S KILL
"$BR" --root "$ROOT" delete --force e2e-life-$S
if "$BR" --root "$ROOT" state e2e-life-$S 2>/dev/null; then fail "state after delete"; fi
grep -q started "$T/life.out" || fail "the started container printed nothing"

# run --detach leaves it running and returns.
set_args sleep 1000
"$BR" --root "$ROOT" run --detach --bundle "$B" e2e-detach-$S >/dev/null 2>&1
[ "$(json <("$BR" --root "$ROOT" state e2e-detach-$S) 'j["status"]')" = running ] ||
	fail "run --detach: not running"
"$BR" --root "$ROOT" delete --force e2e-detach-$S

# An exec failure is reported by start (the program is looked up at exec).
set_args /no/such/program
"$BR" --root "$ROOT" create --bundle "$B" e2e-badstart-$S >/dev/null 2>&1
rc=0
"$BR" --root "$ROOT" start e2e-badstart-$S 2>/dev/null || rc=$?
[ "$rc" = 127 ] || fail "start: exit status $rc for a missing program, want 127"
"$BR" --root "$ROOT" delete --force e2e-badstart-$S

# Nothing left behind: state, cgroups, mounts, the runtime binary untouched.
[ -z "$(ls -A "$ROOT")" ] || fail "state left: $(ls "$ROOT")"
for id in "${ids[@]}"; do
	if ls -d /sys/fs/cgroup/*/berth/"$id" /sys/fs/cgroup/berth/"$id" 2>/dev/null; then
		fail "cgroup left for $id"
	fi
done
# (only mounts below the test dir: other tests may mount things meanwhile)
if grep -q " $T" /proc/self/mountinfo; then fail "mounts left on the host"; fi
[ "$exe_sum" = "$(sha256sum "$BR" | cut -d' ' -f1)" ] || fail "berth-runtime binary changed"
echo "e2e_runtime_cli: all passed"
