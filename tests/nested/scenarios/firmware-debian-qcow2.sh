# The Debian system disk as qcow2 (converted by vmm-img): SeaBIOS, GRUB, systemd to the login
# prompt, qemu-ga's guest-get-osinfo, then guest-shutdown powers it off (one boot: the reboot is
# firmware-debian-raw's). Needs run.sh --disk debian-qcow2=...
BOOT_DISK=debian-qcow2 BOOT_FORMAT=qcow2 firmware_debian_check poweroff
