# Firmware boot of the Debian system disk (tests/guest/disks, raw): SeaBIOS, GRUB, systemd to the
# login prompt, the real qemu-ga answers guest-get-osinfo, a reboot from inside (guest-shutdown
# mode reboot) comes back through the firmware to a second login prompt; see firmware_debian_check
# in l1/lib.sh. Needs run.sh --disk debian-raw=...
BOOT_DISK=debian-raw BOOT_FORMAT=raw firmware_debian_check reboot
