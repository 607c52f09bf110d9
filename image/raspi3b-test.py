#!/usr/bin/env python3
"""Smoke boot of the SD image on QEMU's Raspberry Pi 3 machine
(qemu-system-aarch64 -M raspi3b, TCG): the Pi's own SD host, pin control,
firmware mailbox and UART drivers bring the system up, not virtio.

As with the Pi firmware, the kernel, initramfs, the Pi 3 B device tree and
the command line come from the image's own boot files (slot A's folder on
partition 1, which is what a Pi 3 boots); the card is a copy of the image
grown to 1 GiB (an SD card's size must be a power of two in QEMU) on the
SD bus. QEMU 7.2's raspi3b has no network here and its watchdog resets
the machine once armed, so bcm2835_wdt is kept from loading. Everything
is read from the image's serial console, the mini UART (ttyS1): the first boot creates the data
partition, init's recovery shell comes up, glory-hole logs its DNS
listener and answers a local record through its own resolver.

usage: raspi3b-test.py --image IMG [--keep DIR]
Prints one line per check and "N passed, N failed".
"""

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("boot_test", os.path.join(HERE, "boot-test.py"))
bt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bt)

BOOT_TIMEOUT = 900  # four emulated Cortex-A53 under TCG are slow
DTB = "bcm2837-rpi-3-b.dtb"


class Raspi3(bt.Guest):
    """boot-test.py's console guest, on the Pi 3 machine."""

    def __init__(self, disk, boot_dir, log_path):
        cmdline = open(os.path.join(boot_dir, "cmdline.txt")).read().split()
        cmdline = [a for a in cmdline if not a.startswith("console=") and a != "quiet"]
        # The image's own serial console, the mini UART (ttyS1, QEMU's
        # second serial port): the PL011 (ttyAMA0) belongs to the Bluetooth
        # node of the Pi 3 device tree, so the kernel can write to it but a
        # shell cannot read from it.
        cmdline += ["console=ttyS1,115200", "module_blacklist=bcm2835_wdt"]
        self.start([
            "qemu-system-aarch64", "-M", "raspi3b", "-m", "1G",
            "-display", "none", "-monitor", "none", "-serial", "null", "-serial", "stdio",
            "-no-reboot",
            "-kernel", os.path.join(boot_dir, "vmlinuz"),
            "-initrd", os.path.join(boot_dir, "initramfs"),
            "-dtb", os.path.join(boot_dir, DTB),
            "-append", " ".join(cmdline),
            "-drive", f"file={disk},if=sd,format=raw",
        ], log_path)


def open_shell(g):
    """init's "press Enter" prompt, then Enter until the shell answers:
    the emulated UART is slow enough here to need more than one."""
    if not g.wait_for(r"Please press Enter to activate this console", BOOT_TIMEOUT):
        return False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        g.send("\n")
        if g.wait_for(r"glory-hole# ", 20):
            g.shell = True
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--keep")
    args = ap.parse_args()
    res = bt.Results()
    work = args.keep or tempfile.mkdtemp(prefix="gh-raspi3b-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    disk = os.path.join(work, "sd.img")
    shutil.copyfile(args.image, disk)
    os.truncate(disk, bt.DISK_SIZE)
    parts = bt.partitions(disk)
    boot_dir = os.path.join(work, "slot-a")
    os.makedirs(boot_dir)
    # What a Pi 3 boots: partition 1's slot-a/ folder (config.txt os_prefix).
    for f in ("vmlinuz", "initramfs", "cmdline.txt", DTB):
        bt.mtools(disk, parts[0], "mcopy", "-o", f"::slot-a/{f}", os.path.join(boot_dir, f))
    seed = os.path.join(work, "glory-hole.toml")
    with open(seed, "w") as f:
        f.write('data_dir = "/data/glory-hole"\n[dns]\nlisten = ["0.0.0.0:53"]\n'
                'upstreams = ["192.0.2.1:53"]\n[[local.records]]\nname = "nas.lan"\n'
                'type = "A"\nvalue = "192.168.1.10"\n[web]\nlisten = ["0.0.0.0:80"]\n'
                'appliance = true\n')
    bt.mtools(disk, parts[0], "mcopy", "-o", seed, "::glory-hole.toml")

    log = os.path.join(work, "console.log")
    print(f"booting -M raspi3b (console log: {log})", flush=True)
    g = Raspi3(disk, boot_dir, log)
    try:
        res.check("kernel runs on the Pi 3 device tree",
                  g.wait_for(r"Machine model: Raspberry Pi 3 Model B", 300))
        res.check("initramfs finds the SD card (Pi SD host driver)",
                  g.wait_for(r"glory-hole-init: disk /dev/mmcblk0,", BOOT_TIMEOUT))
        res.check("first boot creates the data partition",
                  g.wait_for(r"first boot: creating the data partition", 120))
        if not res.check("console shell", open_shell(g)):
            return finish(res, g)
        res.numbers["QEMU start to console shell (s)"] = round(time.monotonic() - g.started, 1)
        listening = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rc, text = g.run("logread | grep -c 'DNS on 0.0.0.0:53'")
            if rc == 0:
                listening = text
                break
            time.sleep(3)
        res.check("glory-hole logs its DNS listener", listening is not None)
        answer = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rc, answer = g.run("nslookup nas.lan 127.0.0.1")
            if rc == 0 and "192.168.1.10" in answer:
                break
            time.sleep(3)
        res.check("glory-hole answers nas.lan through its own resolver",
                  "192.168.1.10" in answer, answer[-300:])
        rc, text = g.run("cat /proc/mounts")
        res.check("root squashfs and data ext4 on the SD card",
                  "/dev/mmcblk0p5 / squashfs" in text and "/dev/mmcblk0p7 /data ext4" in text, text)
        res.check("GH-BOOT mounted read-write for the updater",
                  "/dev/mmcblk0p1 /boot/selector vfat rw" in text, text)
        g.send("poweroff\n")
        # Without the watchdog driver the kernel halts and QEMU stays up.
        res.check("clean power-off: data unmounted, system halted",
                  g.wait_for(r"unmounting filesystem[\s\S]*reboot: System halted", 300))
    finally:
        g.kill()
    return finish(res, None, work if not args.keep else None)


def finish(res, g, tmp=None):
    if g:
        g.kill()
    for k, v in res.numbers.items():
        print(f"measured: {k}: {v}")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed or res.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
