################################################################################
#
# glory-hole
#
################################################################################

# Built from the repository this BR2_EXTERNAL tree lives in.
GLORY_HOLE_VERSION = 0.1.0
GLORY_HOLE_SITE = $(BR2_EXTERNAL_GLORY_HOLE_PATH)/..
GLORY_HOLE_SITE_METHOD = local
# The project has not chosen a license yet; set it here when it does.
GLORY_HOLE_LICENSE = unknown
# Cargo's and the offline builder's outputs are not sources.
GLORY_HOLE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude target --exclude .git

# The same binary `make aarch64` ships: the `firmware` profile (size-tuned,
# fat LTO), the musl target (static; the defconfigs pick a musl toolchain,
# Config.in insists), no cargo features (the `testing` doubles stay out).
GLORY_HOLE_CARGO_BUILD_OPTS = --bin glory-hole --profile firmware --no-default-features

# The crate is developed with Rust 1.95 (edition 2024; rusqlite 0.43 alone
# needs 1.89): Buildroot 2026.05 (Rust 1.96.0) or later.
GLORY_HOLE_MIN_RUST = 1.95.0
GLORY_HOLE_RUST = $(or $(RUST_VERSION),$(RUST_BIN_VERSION))
ifneq ($(GLORY_HOLE_RUST),)
ifneq ($(firstword $(shell printf '%s\n' $(GLORY_HOLE_MIN_RUST) $(GLORY_HOLE_RUST) | sort -V)),$(GLORY_HOLE_MIN_RUST))
$(error glory-hole needs Rust $(GLORY_HOLE_MIN_RUST) or later; this Buildroot has $(GLORY_HOLE_RUST): use Buildroot 2026.05 or later)
endif
endif

# Buildroot vendors a cargo package's crates as part of downloading it; a
# local package is not downloaded, so vendor here, once host-rustc is built
# (needs internet, like every Buildroot download).
define GLORY_HOLE_CARGO_VENDOR
	cd $(@D) && [ -d VENDOR ] || { mkdir -p .cargo && \
		$(PKG_CARGO_ENV) $(HOST_DIR)/bin/cargo vendor --locked VENDOR \
		> .cargo/config.toml; }
endef
GLORY_HOLE_PRE_CONFIGURE_HOOKS += GLORY_HOLE_CARGO_VENDOR

# Buildroot's default build passes --release, which cannot go with
# --profile: the same command without it.
define GLORY_HOLE_BUILD_CMDS
	cd $(@D) && \
	$(TARGET_MAKE_ENV) \
		$(TARGET_CONFIGURE_OPTS) \
		$(PKG_CARGO_ENV) \
		cargo build \
			--offline \
			--locked \
			--manifest-path Cargo.toml \
			$(GLORY_HOLE_CARGO_BUILD_OPTS)
endef

# The appliance config and scripts come from the rootfs overlay
# (BR2_ROOTFS_OVERLAY); the package installs only the binary.
define GLORY_HOLE_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/firmware/glory-hole \
		$(TARGET_DIR)/usr/bin/glory-hole
endef

$(eval $(cargo-package))
