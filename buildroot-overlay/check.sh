#!/bin/sh
# Static checks of the firmware tree, for CI: Buildroot itself cannot
# download its sources here, so this is what can be checked without it.
#   1. shellcheck on every shell script of the firmware side
#   2. every path the defconfigs, .mk and Config.in files name exists
#   3. the Kconfig files parse (kconfiglib) and each defconfig enables
#      glory-hole with its dependencies met
set -eu
here=$(dirname "$(realpath "$0")")
repo=$(dirname "$here")
failed=0
passed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }

# 1. shellcheck: every file under the firmware dirs that starts with #!/bin/sh.
scripts=$(grep -rlE '^#!/bin/(ba)?sh' "$repo/board" "$repo/image" "$here" | sort)
for s in $scripts; do
    if shellcheck -s sh "$s"; then ok "shellcheck ${s#"$repo"/}"; else bad "shellcheck ${s#"$repo"/}"; fi
done

# 2. paths: $(BR2_EXTERNAL_GLORY_HOLE_PATH)/x and $BR2_EXTERNAL_GLORY_HOLE_PATH/x.
for f in "$here"/configs/* "$here"/*.mk "$here"/package/*/*.mk "$here"/Config.in "$here"/package/*/Config.in "$here"/board/*.sh; do
    refs=$(grep -oE '\$\(?BR2_EXTERNAL_GLORY_HOLE_PATH\)?/[^" )]*' "$f" | sed -E 's/^\$\(?BR2_EXTERNAL_GLORY_HOLE_PATH\)?//' | sort -u)
    for r in $refs; do
        case "$r" in *"\$("* | *"*"*) continue ;; esac # make expressions and globs
        if [ -e "$here$r" ]; then ok "${f#"$repo"/}: $r exists"; else bad "${f#"$repo"/}: $r does not exist"; fi
    done
done

# 3. Kconfig and defconfigs.
if python3 "$here/check_kconfig.py" "$here"; then ok "Kconfig parses; defconfigs enable glory-hole"; else bad "Kconfig / defconfigs"; fi

# 4. The package builds what `make aarch64` ships: the Makefile's cargo
#    profile, installed from that profile's directory.
# shellcheck disable=SC2016 # $(AARCH64_TARGET) is make's, matched literally
profile=$(sed -n 's|^AARCH64_BIN *:= target/$(AARCH64_TARGET)/\([a-z]*\)/glory-hole$|\1|p' "$repo/Makefile")
mk=$here/package/glory-hole/glory-hole.mk
if [ -n "$profile" ] && grep -q -- "--profile $profile --no-default-features" "$mk" \
    && grep -q "/$profile/glory-hole" "$mk"; then
    ok "glory-hole.mk builds and installs the '$profile' profile, no features, as make aarch64"
else
    bad "glory-hole.mk does not build the profile make aarch64 ships ('$profile')"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
