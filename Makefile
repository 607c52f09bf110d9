# glory-hole build entry points. Plain `cargo build` / `cargo test` need none
# of this; these targets are the cross build and the firmware image.
#
#   make aarch64          static aarch64-unknown-linux-musl binary (cargo-zigbuild)
#   make aarch64-test     run it under qemu-aarch64-static and get a DNS answer
#   make image            SD card image from Debian arm64 packages (offline path)
#   make image-test       boot the image in QEMU and check it from the outside
#   make buildroot-check  static checks of the Buildroot tree (buildroot-overlay/)
#
# Each target runs image/setup.sh first, which installs what is missing.

AARCH64_TARGET := aarch64-unknown-linux-musl
AARCH64_BIN    := target/$(AARCH64_TARGET)/firmware/glory-hole
IMAGE_CACHE    := target/image-cache
IMAGE_OUT      := target/image
IMAGE          := $(IMAGE_OUT)/glory-hole-rpi-arm64.img
STAND_IN       := target/debug/stand-in-upstream

.PHONY: setup aarch64 aarch64-test image image-test buildroot-check stand-in

setup:
	@sh image/setup.sh

aarch64: setup
	cargo zigbuild --profile firmware --target $(AARCH64_TARGET)
	@sh image/binary-size.sh $(AARCH64_BIN)
	@sh image/no-test-code.sh $(AARCH64_BIN)

aarch64-test: aarch64
	sh image/aarch64-test.sh $(AARCH64_BIN)

image: aarch64
	sh image/fetch-debs.sh $(IMAGE_CACHE)
	sh image/build.sh $(AARCH64_BIN) $(IMAGE_CACHE) $(IMAGE_OUT)

# The stand-in upstream (the test's internet) runs on the host; a debug
# build is plenty for that and shares the test build's cache.
stand-in:
	cargo build --features testing --bin stand-in-upstream

image-test: image stand-in
	python3 image/boot-test.py --image $(IMAGE) --stand-in $(STAND_IN) --keep $(IMAGE_OUT)/test

buildroot-check: setup
	sh buildroot-overlay/check.sh
