# glory-hole build entry points. Plain `cargo build` / `cargo test` need none
# of this; these targets are the cross build and the firmware image.
#
#   make aarch64          static aarch64-unknown-linux-musl binary (cargo-zigbuild)
#   make aarch64-test     run it under qemu-aarch64-static and get a DNS answer
#   make image            SD card image from Debian arm64 packages (offline path)
#                         and its update bundle, signed with keys/dev.key
#   make image-test       boot the image in QEMU and check it from the outside
#   make update-test      A -> B update through the web API in QEMU, then a
#                         bundle that fails its trial and is rolled back
#   make raspi3b-test     smoke boot under QEMU's Raspberry Pi 3 machine
#   make compat-test      the previous release (image/previous-release) started
#                         on a data directory this build made
#   make buildroot-check  static checks of the Buildroot tree (buildroot-overlay/)
#   make fuzz             every fuzz target (fuzz/) for FUZZ_SECONDS each (default
#                         1800), FUZZ_JOBS side by side (default 1): executions
#                         and crashes
#   make fuzz-smoke       every fuzz target for a few seconds (CI)
#   make soak             benches/soak.sh for SOAK_SECONDS (default 1800): mixed
#                         load, RSS flat, no client but the flooder failing
#
# Variables: VERSION (default: the crate's), MIN_VERSION (the oldest version
# a bundle may replace), RELEASE_KEY=/path/release.key to sign with a release
# key kept outside the repository (its release.pub beside it goes into the
# image instead of keys/dev.pub; docs/update.md).
#
# Each target runs image/setup.sh first, which installs what is missing.

AARCH64_TARGET := aarch64-unknown-linux-musl
AARCH64_BIN    := target/$(AARCH64_TARGET)/firmware/glory-hole
IMAGE_CACHE    := target/image-cache
IMAGE_OUT      := target/image
IMAGE          := $(IMAGE_OUT)/glory-hole-rpi-arm64.img
STAND_IN       := target/debug/examples/stand-in-upstream
VERSION        ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MIN_VERSION    ?= 0.1.0
SIGN_KEY       := $(if $(RELEASE_KEY),$(RELEASE_KEY),keys/dev.key)
BUNDLE         := $(IMAGE_OUT)/glory-hole-$(VERSION)-rpi-arm64.ghb
UPDATE_TEST    := target/update-test
RUN_AARCH64    := qemu-aarch64-static $(AARCH64_BIN)
FUZZ_SECONDS   ?= 1800
FUZZ_JOBS      ?= 1
SOAK_SECONDS   ?= 1800

.PHONY: setup aarch64 aarch64-test image image-test update-test raspi3b-test compat-test buildroot-check stand-in \
	fuzz fuzz-smoke soak

setup:
	@sh image/setup.sh

aarch64: setup
	cargo zigbuild --profile firmware --target $(AARCH64_TARGET)
	@sh image/binary-size.sh $(AARCH64_BIN)
	@sh image/no-test-code.sh $(AARCH64_BIN)

aarch64-test: aarch64
	sh image/aarch64-test.sh $(AARCH64_BIN)

# image_and_bundle OUT_DIR VERSION [ENV...]: the card image in OUT_DIR and
# OUT_DIR/glory-hole-VERSION-rpi-arm64.ghb.
define image_and_bundle
	VERSION=$(2) UPDATE_PUBKEYS=$(SIGN_KEY:.key=.pub) $(3) \
		sh image/build.sh $(AARCH64_BIN) $(IMAGE_CACHE) $(1)
	sh board/rpi-arm64/mkbundle.sh $(1) $(SIGN_KEY) $(2) $(MIN_VERSION) $(RUN_AARCH64)
endef

image: aarch64
	sh image/fetch-debs.sh $(IMAGE_CACHE)
	$(call image_and_bundle,$(IMAGE_OUT),$(VERSION))

# The stand-in upstream (the test's internet) runs on the host; a debug
# build is plenty for that and shares the test build's cache.
stand-in:
	cargo build --example stand-in-upstream

image-test: image stand-in
	python3 image/boot-test.py --image $(IMAGE) --stand-in $(STAND_IN) --keep $(IMAGE_OUT)/test

# B is the same system as A under a later version; "bad" a later version
# whose glory-hole never starts (a test image, GH_TEST_UNHEALTHY=1).
update-test: image stand-in
	$(call image_and_bundle,$(UPDATE_TEST)/b,$(VERSION).1,GH_IMAGE_XZ=0)
	$(call image_and_bundle,$(UPDATE_TEST)/bad,$(VERSION).2,GH_IMAGE_XZ=0 GH_TEST_UNHEALTHY=1)
	python3 image/update-test.py --image $(IMAGE) --stand-in $(STAND_IN) \
		--bundle-b $(UPDATE_TEST)/b/glory-hole-$(VERSION).1-rpi-arm64.ghb \
		--bundle-bad $(UPDATE_TEST)/bad/glory-hole-$(VERSION).2-rpi-arm64.ghb \
		--keep $(UPDATE_TEST)/run

raspi3b-test: image
	python3 image/raspi3b-test.py --image $(IMAGE) --keep $(IMAGE_OUT)/raspi3b

# Host builds only (debug): the pinned commit in its own worktree and
# target dir under target/compat. Update image/previous-release at each
# release (docs/update.md).
compat-test:
	python3 image/compat-test.py --keep target/compat/run

buildroot-check: setup
	sh buildroot-overlay/check.sh

# The fuzz crate (fuzz/) is its own workspace, built with nightly by cargo
# fuzz; .ci/setup installs both.
fuzz:
	FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_TARGETS="$(FUZZ_TARGETS)" sh fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke:
	FUZZ_JOBS=2 sh fuzz/run.sh 5

soak:
	sh benches/soak.sh $(SOAK_SECONDS)
