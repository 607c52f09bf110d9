#!/usr/bin/env python3
"""Parses the BR2_EXTERNAL tree's Kconfig with kconfiglib, the way
Buildroot would include it, and loads each defconfig: glory-hole must be
enabled and its dependencies satisfiable. Buildroot's own symbols are
stubbed (the tree's Config.in depends on a few of them).

usage: check_kconfig.py BR2_EXTERNAL_DIR
"""
import os
import re
import sys
import tempfile

import kconfiglib

# Buildroot symbols our Config.in files use, as the defconfigs' boards set them.
STUBS = """
config BR2_aarch64
	bool
	default y
config BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS
	bool
	default y if BR2_aarch64
config BR2_TOOLCHAIN_HAS_THREADS
	bool
	default y
config BR2_PACKAGE_HOST_RUSTC
	bool
choice
	prompt "C library"
config BR2_TOOLCHAIN_BUILDROOT_GLIBC
	bool "glibc"
config BR2_TOOLCHAIN_BUILDROOT_MUSL
	bool "musl"
	select BR2_TOOLCHAIN_USES_MUSL
endchoice
config BR2_TOOLCHAIN_USES_MUSL
	bool
"""


def main():
    ext = os.path.realpath(sys.argv[1])
    os.environ["BR2_EXTERNAL_GLORY_HOLE_PATH"] = ext
    # Buildroot's symbols carry their BR2_ prefix in the name itself.
    os.environ["CONFIG_"] = ""
    desc = open(os.path.join(ext, "external.desc")).read()
    if not re.search(r"^name: GLORY_HOLE$", desc, re.M):
        print("external.desc: name must be GLORY_HOLE (the variables say so)")
        return 1
    with tempfile.TemporaryDirectory() as d:
        top = os.path.join(d, "Config.in")
        with open(top, "w") as f:
            f.write('mainmenu "check"\n' + STUBS + 'source "$(BR2_EXTERNAL_GLORY_HOLE_PATH)/Config.in"\n')
        kconf = kconfiglib.Kconfig(top, warn_to_stderr=False)
        own = [s for s in kconf.unique_defined_syms if s.name.startswith("BR2_PACKAGE_GLORY_HOLE")]
        if not own:
            print("Config.in defines no BR2_PACKAGE_GLORY_HOLE")
            return 1
        status = 0
        for name in sorted(os.listdir(os.path.join(ext, "configs"))):
            path = os.path.join(ext, "configs", name)
            for n, line in enumerate(open(path), 1):
                line = line.rstrip("\n")
                if line and not line.startswith("#") and not re.match(r"^BR2_\w+=.+$", line):
                    print(f"{name}:{n}: not a defconfig line: {line}")
                    status = 1
            kconf.load_config(path)
            sym = kconf.syms["BR2_PACKAGE_GLORY_HOLE"]
            if sym.str_value != "y":
                print(f"{name}: BR2_PACKAGE_GLORY_HOLE is not enabled (dependencies: "
                      f"{kconfiglib.expr_str(sym.direct_dep)})")
                status = 1
            if kconf.syms["BR2_PACKAGE_HOST_RUSTC"].str_value != "y":
                print(f"{name}: glory-hole does not select host-rustc")
                status = 1
        return status


if __name__ == "__main__":
    sys.exit(main())
