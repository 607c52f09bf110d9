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

GLORY_HOLE_CARGO_BUILD_OPTS = --bin glory-hole

# Buildroot vendors a cargo package's crates as part of downloading it; a
# local package is not downloaded, so vendor here, once host-rustc is built
# (needs internet, like every Buildroot download).
define GLORY_HOLE_CARGO_VENDOR
	cd $(@D) && [ -d VENDOR ] || { mkdir -p .cargo && \
		$(PKG_CARGO_ENV) $(HOST_DIR)/bin/cargo vendor --locked VENDOR \
		> .cargo/config.toml; }
endef
GLORY_HOLE_PRE_CONFIGURE_HOOKS += GLORY_HOLE_CARGO_VENDOR

# The appliance config and scripts come from the rootfs overlay
# (BR2_ROOTFS_OVERLAY); the package installs only the binary.
define GLORY_HOLE_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/release/glory-hole \
		$(TARGET_DIR)/usr/bin/glory-hole
endef

$(eval $(cargo-package))
