# Sourced by the L2 tests. find_port NAME: loads the virtio console driver and sets PORT to the
# /dev node of the virtio-serial port named NAME, waiting up to 5 s for the driver and the device
# to exchange their control messages (there is no udev to react to it); returns 1 if none came.
find_port() {
  modprobe -a virtio_pci virtio_mmio virtio_console 2>/dev/null
  PORT= _tries=0
  while [ -z "$PORT" ] && [ $_tries -lt 50 ]; do
    for _p in /sys/class/virtio-ports/*; do
      [ "$(cat "$_p/name" 2>/dev/null)" = "$1" ] && PORT=/dev/${_p##*/}
    done
    [ -n "$PORT" ] || { sleep 0.1; _tries=$((_tries + 1)); }
  done
  [ -n "$PORT" ]
}
