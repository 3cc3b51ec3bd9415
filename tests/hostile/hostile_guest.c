/* A hostile virtio driver: a freestanding PVH guest (the probe's entry.S and linker script) that
 * finds the virtio-pci functions through port 0xCF8 (or, with the word "mmio", the virtio-mmio
 * transports of a microvm at 0xfeb00000 + 512 * i) and then misbehaves forever, round after
 * round, in the ways the command line names (barmove needs PCI):
 *   ports      virtio-serial: PORT_OPEN 1/0 on port 1 as fast as it can (a VSERPORT_CHANGE each)
 *   blkrange   virtio-blk: reads far beyond the end of the disk (an IOERR status each)
 *   failreset  virtio-rng: a queue whose rings lie outside RAM (DEVICE_NEEDS_RESET), reset, again
 *   barmove    virtio-rng: BAR0 moved away and back (the ioeventfds follow each move)
 *   indirect   virtio-blk: a request through a 32768-entry indirect table, the same head offered
 *              again while in flight, reset when the device breaks, again
 * and one word that behaves, for tests that need a guest to use a disk:
 *   blkrw      virtio-blk: reads sector 0, writes sector 1 and reads it back, prints
 *              "HOSTILE blkrw read0=... status=..." lines and "HOSTILE blkrw done", then halts
 * It prints "HOSTILE ready" once everything is set up and "HOSTILE round=N ..." now and then on
 * COM1. tests/hostile/hostile_guest.py measures the worker meanwhile. */
#include <stddef.h>
#include <stdint.h>

#include "port_io.h"

static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }

void *memset(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n) {
  uint8_t *p = d;
  while (n--) *p++ = (uint8_t)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n);
void *memcpy(void *d, const void *s, size_t n) {
  uint8_t *p = d;
  const uint8_t *q = s;
  while (n--) *p++ = *q++;
  return d;
}

/* ---- COM1 */
static void putc_serial(char c) {
  for (int i = 0; i < 100000 && !(inb(0x3fd) & 0x20); i++) {
  }
  outb(0x3f8, (uint8_t)c);
}
static void puts_serial(const char *s) {
  while (*s) putc_serial(*s++);
}
static void putnum(uint64_t v) {
  char buf[24];
  int n = 0;
  do buf[n++] = (char)('0' + v % 10);
  while ((v /= 10) && n < 24);
  while (n) putc_serial(buf[--n]);
}

void isr_handler(uint64_t vec, const uint64_t *frame);
void isr_handler(uint64_t vec, const uint64_t *frame) {
  (void)frame;
  puts_serial("HOSTILE exception vector=");
  putnum(vec);
  puts_serial("\n");
  for (;;) __asm__ volatile("cli; hlt");
}

/* ---- command line */
static const char *cmdline = "";
static int has_word(const char *w) {
  const char *p = cmdline;
  for (;;) {
    while (*p == ' ') p++;
    if (!*p) return 0;
    const char *a = p, *b = w;
    while (*a && *a != ' ' && *b && *a == *b) a++, b++;
    if (!*b && (!*a || *a == ' ')) return 1;
    while (*p && *p != ' ') p++;
  }
}

/* ---- PCI configuration through 0xCF8/0xCFC (bus 0) */
static uint32_t pci_read(unsigned dev, unsigned off) {
  outl(0xCF8, 0x80000000u | (dev << 11) | (off & 0xFC));
  return inl(0xCFC);
}
static void pci_write(unsigned dev, unsigned off, uint32_t v) {
  outl(0xCF8, 0x80000000u | (dev << 11) | (off & 0xFC));
  outl(0xCFC, v);
}

/* ---- MMIO */
static inline void w8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void w16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void w32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint16_t r16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t r32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void w64(uint64_t a, uint64_t v) {
  w32(a, (uint32_t)v);
  w32(a + 4, (uint32_t)(v >> 32));
}

/* ---- virtio-pci (modern) */
enum { C_DFSEL = 8, C_DF = 12, C_NUMQ = 18, C_STATUS = 20, C_QSEL = 22, C_QSIZE = 24, C_QENABLE = 28,
       C_QNOTIFY = 30, C_QDESC = 32, C_QDRIVER = 40, C_QDEVICE = 48 };
#define QSIZE 16

struct ring {
  uint64_t desc, avail, used;
  uint16_t next;     /* avail index the driver publishes next */
  uint16_t notify;   /* queue_notify_off */
};

/* virtio-mmio registers (virtio 1.x, 4.2.2), all 32 bits wide. */
enum { M_MAGIC = 0x00, M_VERSION = 0x04, M_DEVICE = 0x08, M_DFSEL = 0x24, M_DF = 0x20, M_QSEL = 0x30, M_QNUMMAX = 0x34,
       M_QNUM = 0x38, M_QREADY = 0x44, M_QNOTIFY = 0x50, M_STATUS = 0x70, M_QDESC = 0x80, M_QDRIVER = 0x90,
       M_QDEVICE = 0xA0 };
#define MMIO_BASE 0xFEB00000ull
#define MMIO_TRANSPORTS 8

struct vdev {
  int found;
  uint64_t mmio; /* the virtio-mmio window, or 0: a virtio-pci function */
  unsigned pci;
  uint32_t bar_lo;
  uint64_t bar, common, notify;
  uint32_t mult;
  uint16_t queues;
  struct ring q[8];
  uint64_t mem; /* this device's area of guest RAM */
};

static int vfind_mmio(struct vdev *v, uint16_t device_id, uint64_t mem) {
  for (unsigned i = 0; i < MMIO_TRANSPORTS; i++) {
    uint64_t base = MMIO_BASE + 512ull * i;
    if (r32(base + M_MAGIC) != 0x74726976u || r32(base + M_VERSION) != 2) continue;
    if (r32(base + M_DEVICE) != (uint32_t)(device_id - 0x1040)) continue;
    v->mmio = base;
    v->mem = mem;
    v->found = 1;
    return 1;
  }
  return 0;
}

static int vfind(struct vdev *v, uint16_t device_id, uint64_t mem) {
  if (has_word("mmio")) return vfind_mmio(v, device_id, mem);
  for (unsigned d = 0; d < 32; d++) {
    uint32_t id = pci_read(d, 0);
    if ((id & 0xFFFF) != 0x1AF4 || (id >> 16) != device_id) continue;
    v->pci = d;
    v->bar_lo = pci_read(d, 0x10);
    v->bar = v->bar_lo & ~0xFull;
    if ((v->bar_lo & 6) == 4) v->bar |= (uint64_t)pci_read(d, 0x14) << 32;
    pci_write(d, 4, pci_read(d, 4) | 6);
    for (unsigned at = pci_read(d, 0x34) & 0xFF; at; at = (pci_read(d, at) >> 8) & 0xFF) {
      uint32_t head = pci_read(d, at);
      if ((head & 0xFF) != 9) continue;
      uint64_t where = v->bar + pci_read(d, at + 8);
      switch ((head >> 24) & 0xFF) {
        case 1: v->common = where; break;
        case 2: v->notify = where; v->mult = pci_read(d, at + 16); break;
      }
    }
    v->mem = mem;
    v->found = v->common && v->notify;
    return v->found;
  }
  return 0;
}

/* Reset, features (VERSION_1 + `features_lo`), every queue at QSIZE in v->mem (or, with
 * `rings_at`, the first queue's rings at that address), DRIVER_OK. */
/* Queue i's rings: 4 KiB of v->mem each, or, with `rings_at`, queue 0's at that address (left as is). */
static struct ring *place_ring(struct vdev *v, uint16_t i, uint64_t rings_at) {
  struct ring *r = &v->q[i];
  uint64_t base = rings_at && i == 0 ? rings_at : v->mem + 0x1000ull * i;
  r->desc = base;
  r->avail = base + 16 * QSIZE;
  r->used = base + 0x800;
  r->next = 0;
  if (!rings_at) memset((void *)base, 0, 0x1000);
  return r;
}

static void set_status(struct vdev *v, uint8_t status) {
  if (v->mmio) w32(v->mmio + M_STATUS, status);
  else w8(v->common + C_STATUS, status);
}

static void vinit_mmio(struct vdev *v, uint32_t features_lo, uint64_t rings_at) {
  set_status(v, 0);
  set_status(v, 1);
  set_status(v, 3);
  w32(v->mmio + M_DFSEL, 0);
  w32(v->mmio + M_DF, features_lo);
  w32(v->mmio + M_DFSEL, 1);
  w32(v->mmio + M_DF, 1);
  set_status(v, 3 | 8);
  v->queues = 0;
  for (uint16_t i = 0; i < 8; i++) {
    w32(v->mmio + M_QSEL, i);
    if (!r32(v->mmio + M_QNUMMAX)) break;
    struct ring *r = place_ring(v, i, rings_at);
    w32(v->mmio + M_QNUM, QSIZE);
    w64(v->mmio + M_QDESC, r->desc);
    w64(v->mmio + M_QDRIVER, r->avail);
    w64(v->mmio + M_QDEVICE, r->used);
    w32(v->mmio + M_QREADY, 1);
    v->queues = (uint16_t)(i + 1);
  }
  set_status(v, 3 | 8 | 4);
}

static void vinit(struct vdev *v, uint32_t features_lo, uint64_t rings_at) {
  if (v->mmio) {
    vinit_mmio(v, features_lo, rings_at);
    return;
  }
  w8(v->common + C_STATUS, 0);
  w8(v->common + C_STATUS, 1);
  w8(v->common + C_STATUS, 3);
  w32(v->common + C_DFSEL, 0);
  w32(v->common + C_DF, features_lo);
  w32(v->common + C_DFSEL, 1);
  w32(v->common + C_DF, 1);
  w8(v->common + C_STATUS, 3 | 8);
  v->queues = r16(v->common + C_NUMQ);
  if (v->queues > 8) v->queues = 8;
  for (uint16_t i = 0; i < v->queues; i++) {
    struct ring *r = place_ring(v, i, rings_at);
    w16(v->common + C_QSEL, i);
    w16(v->common + C_QSIZE, QSIZE);
    w64(v->common + C_QDESC, r->desc);
    w64(v->common + C_QDRIVER, r->avail);
    w64(v->common + C_QDEVICE, r->used);
    r->notify = r16(v->common + C_QNOTIFY);
    w16(v->common + C_QENABLE, 1);
  }
  w8(v->common + C_STATUS, 3 | 8 | 4);
}

static void set_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  volatile uint8_t *d = (volatile uint8_t *)(r->desc + 16ull * i);
  *(volatile uint64_t *)d = addr;
  *(volatile uint32_t *)(d + 8) = len;
  *(volatile uint16_t *)(d + 12) = flags;
  *(volatile uint16_t *)(d + 14) = next;
}
static void offer(struct ring *r, uint16_t head) {
  volatile uint16_t *avail = (volatile uint16_t *)r->avail;
  avail[2 + r->next % QSIZE] = head;
  barrier();
  avail[1] = ++r->next;
  barrier();
}
static uint16_t used_idx(const struct ring *r) { return *(volatile uint16_t *)(r->used + 2); }
static void kick(struct vdev *v, uint16_t q) {
  if (v->mmio) w32(v->mmio + M_QNOTIFY, q);
  else w16(v->notify + (uint64_t)v->q[q].notify * v->mult, q);
}
static int needs_reset(struct vdev *v) {
  return (v->mmio ? r32(v->mmio + M_STATUS) : *(volatile uint8_t *)(v->common + C_STATUS)) & 0x40;
}

/* ---- the misbehaviours */
static struct vdev con, blk, rng;
#define NEXT 1
#define WRITE 2
#define INDIRECT 4

/* virtio-serial control message on the control transmit queue (3). */
static void control(uint32_t id, uint16_t event, uint16_t value) {
  struct ring *r = &con.q[3];
  for (int spin = 0; (uint16_t)(r->next - used_idx(r)) >= QSIZE && spin < 1000000; spin++) {
  }
  uint16_t slot = r->next % QSIZE;
  uint64_t buf = con.mem + 0x10000 + 16ull * slot;
  *(volatile uint32_t *)buf = id;
  *(volatile uint16_t *)(buf + 4) = event;
  *(volatile uint16_t *)(buf + 6) = value;
  set_desc(r, slot, buf, 8, 0, 0);
  offer(r, slot);
  kick(&con, 3);
}

static void ports_setup(void) {
  vinit(&con, 1u << 1 /* MULTIPORT */, 0);
  struct ring *rx = &con.q[2];  /* control receive: buffers for what the device says */
  for (uint16_t i = 0; i < QSIZE; i++) {
    set_desc(rx, i, con.mem + 0x20000 + 64ull * i, 64, WRITE, 0);
    offer(rx, i);
  }
  kick(&con, 2);
  control(0, 0, 1);  /* DEVICE_READY */
  control(1, 3, 1);  /* PORT_READY, port 1 */
}
static void ports_round(uint64_t round) { control(1, 6, (uint16_t)(round & 1)); /* PORT_OPEN 1/0 */ }

static void blk_request(uint16_t slot, uint32_t type, uint64_t sector) {
  uint16_t data_flags = type == 1 /* OUT: the device reads the data */ ? NEXT : NEXT | WRITE;
  struct ring *r = &blk.q[0];
  uint64_t header = blk.mem + 0x10000 + 32ull * slot;
  *(volatile uint32_t *)header = type;
  *(volatile uint32_t *)(header + 4) = 0;
  *(volatile uint64_t *)(header + 8) = sector;
  uint16_t d = (uint16_t)(3 * slot);
  set_desc(r, d, header, 16, NEXT, (uint16_t)(d + 1));
  set_desc(r, (uint16_t)(d + 1), blk.mem + 0x20000 + 512ull * slot, 512, data_flags, (uint16_t)(d + 2));
  set_desc(r, (uint16_t)(d + 2), header + 16, 1, WRITE, 0);
  offer(r, d);
}
static void blkrange_round(void) {
  struct ring *r = &blk.q[0];
  if (needs_reset(&blk)) vinit(&blk, 0, 0);
  if ((uint16_t)(r->next - used_idx(r)) >= QSIZE / 3) return;  /* five requests of three descriptors in flight */
  blk_request((uint16_t)(r->next % (QSIZE / 3)), 0 /* IN */, 1ull << 40);
  kick(&blk, 0);
}

/* blkrw: ordinary requests one at a time, each waited for (polling the used ring). */
static void blk_one(uint16_t slot, uint32_t type, uint64_t sector, const char *label) {
  struct ring *r = &blk.q[0];
  uint16_t done = (uint16_t)(used_idx(r) + 1);
  blk_request(slot, type, sector);
  kick(&blk, 0);
  while (used_idx(r) != done) __asm__ volatile("pause");
  const volatile uint8_t *data = (const volatile uint8_t *)(blk.mem + 0x20000 + 512ull * slot);
  puts_serial("HOSTILE blkrw ");
  puts_serial(label);
  puts_serial("=");
  for (int i = 0; i < 16; i++) putc_serial(data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '.');
  puts_serial(" status=");
  putnum(*(volatile uint8_t *)(blk.mem + 0x10000 + 32ull * slot + 16));
  puts_serial("\n");
}
static void blkrw(void) {
  vinit(&blk, 0, 0);
  blk_one(0, 0 /* IN */, 0, "read0");
  static const char text[] = "guest wrote this";
  volatile uint8_t *out = (volatile uint8_t *)(blk.mem + 0x20000 + 512ull * 1);
  for (int i = 0; i < 512; i++) out[i] = (uint8_t)text[i % 16];
  blk_one(1, 1 /* OUT */, 1, "write1");
  blk_one(2, 0 /* IN */, 1, "read1");
  puts_serial("HOSTILE blkrw done\n");
  for (;;) __asm__ volatile("cli; hlt");
}

/* 32768 descriptors, each 16 readable bytes chained to the next, in one indirect table (512 KiB),
 * offered twice under the same head; the device breaks and the driver resets it. */
static void indirect_setup(void) {
  uint64_t table = 0x1000000;  /* 16 MiB */
  for (uint32_t i = 0; i < 32768; i++) {
    volatile uint8_t *d = (volatile uint8_t *)(table + 16ull * i);
    *(volatile uint64_t *)d = blk.mem + 0x10000;
    *(volatile uint32_t *)(d + 8) = 16;
    *(volatile uint16_t *)(d + 12) = i + 1 < 32768 ? NEXT : 0;
    *(volatile uint16_t *)(d + 14) = (uint16_t)(i + 1 < 32768 ? i + 1 : 0);
  }
}
static void indirect_round(void) {
  struct ring *r = &blk.q[0];
  if (needs_reset(&blk)) vinit(&blk, 1u << 28 /* INDIRECT_DESC */, 0);
  set_desc(r, 15, 0x1000000, 32768 * 16, INDIRECT, 0);
  offer(r, 15);
  offer(r, 15);
  kick(&blk, 0);
}

static void failreset_round(void) {
  vinit(&rng, 0, 0xF0000000ull);  /* rings in the PCI hole: the device needs a reset */
  set_status(&rng, 0);
}

static void barmove_round(void) {
  pci_write(rng.pci, 0x10, (rng.bar_lo & 0xF) | 0xE0000000u);
  pci_write(rng.pci, 0x10, rng.bar_lo);
}

/* ---- main */
void probe_main(uint32_t start_info_paddr);
void probe_main(uint32_t start_info_paddr) {
  const uint32_t *si = (const uint32_t *)(uint64_t)start_info_paddr;
  if (si && si[0] == 0x336ec578u) cmdline = (const char *)*(const uint64_t *)(si + 6);
  int ports = has_word("ports"), blkrange = has_word("blkrange"), failreset = has_word("failreset"),
      barmove = has_word("barmove") && !has_word("mmio"), indirect = has_word("indirect"), rw = has_word("blkrw");
  if ((ports && !vfind(&con, 0x1043, 0x800000)) || ((blkrange || indirect || rw) && !vfind(&blk, 0x1042, 0xA00000)) ||
      ((failreset || barmove) && !vfind(&rng, 0x1044, 0xC00000))) {
    puts_serial("HOSTILE missing device\n");
    for (;;) __asm__ volatile("cli; hlt");
  }
  if (rw) blkrw();
  if (ports) ports_setup();
  if (blkrange || indirect) vinit(&blk, indirect ? 1u << 28 : 0, 0);
  if (indirect) indirect_setup();
  if (failreset || barmove) vinit(&rng, 0, 0);
  puts_serial("HOSTILE ready\n");
  for (uint64_t round = 1;; round++) {
    if (ports) ports_round(round);
    if (blkrange) blkrange_round();
    if (indirect) indirect_round();
    if (failreset) failreset_round();
    if (barmove) barmove_round();
    if ((round & (round - 1)) == 0) {
      puts_serial("HOSTILE round=");
      putnum(round);
      puts_serial("\n");
    }
  }
}
