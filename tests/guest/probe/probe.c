/*
 * vmmd probe guest: a freestanding PVH program that checks the machine a VMM gives it and
 * prints one machine-readable line per check on COM1:
 *
 *   PROBE name=<check> ok=<0|1> key=value ...      (values with spaces are double-quoted)
 *
 * Words on the command line (PVH cmdline, `-append`) choose the checks and the final action:
 *   checks:  serial cmdline memmap acpi cpus      (none named: all of them; `nochecks`: none)
 *   action:  poweroff (default) reset powerbutton idle count dirty
 * Other words are ignored. See README.md in this folder for the lines and what they mean.
 *
 * Every wait is bounded: a failed check prints ok=0 with a reason, never hangs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "port_io.h"
#include "probe_lib.h"

/* ------------------------------------------------------------------ low-level helpers */

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline void cpu_pause(void) { __asm__ volatile("pause"); }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

void *memset(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n);
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}
/* ------------------------------------------------------------------ serial (COM1) */

#define COM1 0x3f8

static void serial_init(void) {
  outb(COM1 + 1, 0x00);  /* IER: no interrupts */
  outb(COM1 + 3, 0x80);  /* LCR: DLAB */
  outb(COM1 + 0, 0x01);  /* 115200 */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03);  /* 8N1 */
  outb(COM1 + 2, 0xC7);  /* FIFO on, cleared */
  outb(COM1 + 4, 0x03);  /* DTR | RTS */
}

/* Writes in bursts of 16 (the FIFO's depth) after a bounded wait for THRE: THRE set means the
 * FIFO is empty. Every port access is a VM exit, so this halves them against a per-byte poll. */
static void serial_write(const char *p, size_t n) {
  while (n) {
    for (int i = 0; i < 100000; i++)
      if (inb(COM1 + 5) & 0x20) break;
    size_t chunk = n < 16 ? n : 16;
    for (size_t i = 0; i < chunk; i++) outb(COM1, (uint8_t)p[i]);
    p += chunk;
    n -= chunk;
  }
}

/* Output goes into a line buffer, flushed on '\n', so one line is one burst of port writes. */
static char line_buf[512];
static size_t line_len;

static void out_char(char c) {
  if (line_len < sizeof(line_buf) - 2) line_buf[line_len++] = c;
  if (c == '\n') {
    serial_write(line_buf, line_len);
    line_len = 0;
  }
}

static void out_str(const char *s) {
  while (*s) out_char(*s++);
}

static void out_num(uint64_t v, unsigned base, int width) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n < width) tmp[n++] = '0';
  while (n) out_char(tmp[--n]);
}

/* printf subset: %s %c %d %u %x %lu %lx %ld %q (quoted string) %% */
static void kprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      out_char(*p);
      continue;
    }
    p++;
    int is_long = 0;
    if (*p == 'l') {
      is_long = 1;
      p++;
    }
    switch (*p) {
      case 's': out_str(va_arg(ap, const char *)); break;
      case 'q': {
        const char *s = va_arg(ap, const char *);
        out_char('"');
        for (; *s; s++) {
          if (*s == '"' || *s == '\\') out_char('\\');
          out_char((*s >= 0x20 && *s < 0x7f) ? *s : '?');
        }
        out_char('"');
        break;
      }
      case 'c': out_char((char)va_arg(ap, int)); break;
      case 'd': {
        int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);
        if (v < 0) {
          out_char('-');
          v = -v;
        }
        out_num((uint64_t)v, 10, 1);
        break;
      }
      case 'u': out_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 1); break;
      case 'x': out_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 1); break;
      case '%': out_char('%'); break;
      default: out_char('?'); break;
    }
  }
  va_end(ap);
}

/* ------------------------------------------------------------------ PVH start info */

struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;   /* version >= 1 */
  uint32_t memmap_entries;
  uint32_t reserved;
};

struct hvm_memmap_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

#define HVM_START_MAGIC 0x336ec578u

static const struct hvm_start_info *si;
static const char *cmdline = "";
static int failures;

static void fail_count(int ok) {
  if (!ok) failures++;
}

/* ------------------------------------------------------------------ command line words */

static int has_word(const char *w) { return cmdline_has_word(cmdline, w); }

/* ------------------------------------------------------------------ ACPI */

struct gas {
  uint8_t space; /* 0 memory, 1 I/O */
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;
  uint64_t addr;
} __attribute__((packed));

struct sdt_header {
  char sig[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  uint32_t creator_id;
  uint32_t creator_revision;
} __attribute__((packed));

static struct {
  int found;        /* RSDP found and checksummed */
  uint64_t rsdp;
  const struct sdt_header *fadt, *dsdt, *madt;
  const struct sdt_header *ssdt[8];
  int nssdt;
  int hw_reduced;
  uint32_t fadt_flags;
  uint16_t sci;
  uint32_t smi_cmd;
  uint8_t acpi_enable;
  struct gas pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm_tmr;
  uint8_t pm1_evt_len;
  int tmr_ext;
  struct gas reset_reg, sleep_ctl, sleep_sts;
  uint8_t reset_value;
  int pm_tmr_stuck;  /* declared in the FADT but not counting: not used as the clock */
  uint64_t used[16][2]; /* [start, end) of every table found, kept clear of the AP trampoline */
  int nused;
  int s5_found;
  int facs;         /* 1 valid, 0 absent, -1 bad */
  int pwrbtn_device; /* a PNP0C0C device in the DSDT/SSDTs */
  uint64_t ged_esel; /* hardware-reduced: QEMU's GED event selector (OperationRegion EREG) */
  uint8_t slp_typa, slp_typb;
  /* MADT */
  uint32_t lapic_addr;
  int n_lapic, n_lapic_enabled, n_ioapic, n_iso;
  uint8_t apic_ids[256];
  int n_apic_ids;
  uint32_t ioapic_addr, ioapic_gsi_base;
  uint32_t sci_gsi;
  uint16_t sci_flags;
} acpi;

static uint64_t gas_read(const struct gas *g) {
  unsigned w = g->bit_width ? g->bit_width : 8;
  if (g->space == 1) {
    uint16_t port = (uint16_t)g->addr;
    if (w <= 8) return inb(port);
    if (w <= 16) return inw(port);
    return inl(port);
  }
  if (w <= 8) return *(volatile uint8_t *)g->addr;
  if (w <= 16) return *(volatile uint16_t *)g->addr;
  return *(volatile uint32_t *)g->addr;
}

static void gas_write(const struct gas *g, uint64_t v) {
  unsigned w = g->bit_width ? g->bit_width : 8;
  if (g->space == 1) {
    uint16_t port = (uint16_t)g->addr;
    if (w <= 8) outb(port, (uint8_t)v);
    else if (w <= 16) outw(port, (uint16_t)v);
    else outl(port, (uint32_t)v);
    return;
  }
  if (w <= 8) *(volatile uint8_t *)g->addr = (uint8_t)v;
  else if (w <= 16) *(volatile uint16_t *)g->addr = (uint16_t)v;
  else *(volatile uint32_t *)g->addr = (uint32_t)v;
}

static void gas_io(struct gas *g, uint32_t port, unsigned bits) {
  g->space = 1;
  g->bit_width = (uint8_t)bits;
  g->bit_offset = 0;
  g->access_size = 0;
  g->addr = port;
}

static void gas_print(const char *key, const struct gas *g) {
  if (!g->addr) {
    kprintf(" %s=none", key);
    return;
  }
  kprintf(" %s=%s:0x%lx", key, g->space == 1 ? "io" : g->space == 0 ? "mem" : "other", g->addr);
}

static const uint8_t *rsdp_scan(uint64_t start, uint64_t end) {
  for (uint64_t a = start; a + 20 <= end; a += 16) {
    const uint8_t *p = (const uint8_t *)a;
    if (mem_eq(p, "RSD PTR ", 8) && checksum(p, 20) == 0) return p;
  }
  return 0;
}

static void note_used(const void *p, uint64_t len) {
  if (acpi.nused < 16) {
    acpi.used[acpi.nused][0] = (uint64_t)p;
    acpi.used[acpi.nused][1] = (uint64_t)p + len;
    acpi.nused++;
  }
}

/* Checksums are verified only when the acpi check reports (`nochecks` skips them: summing a
 * DSDT byte by byte takes tens of milliseconds under PVM). */
static int verify_sums;

static int table_ok(const struct sdt_header *h) {
  return h && h->length >= sizeof(struct sdt_header) && h->length < (16u << 20) &&
         (!verify_sums || checksum(h, h->length) == 0);
}

static const uint8_t *aml_of(const struct sdt_header *t) { return (const uint8_t *)t + sizeof(*t); }
static size_t aml_len(const struct sdt_header *t) { return t->length - sizeof(*t); }

static int table_find_s5(const struct sdt_header *t) {
  return t && aml_find_s5(aml_of(t), aml_len(t), &acpi.slp_typa, &acpi.slp_typb);
}

static void parse_fadt(const struct sdt_header *f) {
  const uint8_t *b = (const uint8_t *)f;
  uint32_t len = f->length;
#define F8(o) (len > (o) ? b[o] : 0)
#define F16(o) (len >= (o) + 2 ? *(const uint16_t *)(b + (o)) : 0)
#define F32(o) (len >= (o) + 4 ? *(const uint32_t *)(b + (o)) : 0)
#define F64(o) (len >= (o) + 8 ? *(const uint64_t *)(b + (o)) : 0)
#define FGAS(o, dst)                                              \
  do {                                                            \
    if (len >= (o) + 12) memcpy(&(dst), b + (o), 12);             \
  } while (0)
  acpi.sci = F16(46);
  acpi.smi_cmd = F32(48);
  acpi.acpi_enable = F8(52);
  acpi.pm1_evt_len = F8(88);
  acpi.fadt_flags = F32(112);
  acpi.hw_reduced = (acpi.fadt_flags >> 20) & 1;
  acpi.tmr_ext = (acpi.fadt_flags >> 8) & 1;
  if (F32(56)) gas_io(&acpi.pm1a_evt, F32(56), acpi.pm1_evt_len * 4);
  if (F32(60)) gas_io(&acpi.pm1b_evt, F32(60), acpi.pm1_evt_len * 4);
  if (F32(64)) gas_io(&acpi.pm1a_cnt, F32(64), 16);
  if (F32(68)) gas_io(&acpi.pm1b_cnt, F32(68), 16);
  if (F32(76)) gas_io(&acpi.pm_tmr, F32(76), 32);
  struct gas g;
  memset(&g, 0, sizeof g);
  FGAS(148, g);
  if (g.addr) acpi.pm1a_evt = g;
  memset(&g, 0, sizeof g);
  FGAS(160, g);
  if (g.addr) acpi.pm1b_evt = g;
  memset(&g, 0, sizeof g);
  FGAS(172, g);
  if (g.addr) acpi.pm1a_cnt = g;
  memset(&g, 0, sizeof g);
  FGAS(184, g);
  if (g.addr) acpi.pm1b_cnt = g;
  memset(&g, 0, sizeof g);
  FGAS(208, g);
  if (g.addr) acpi.pm_tmr = g;
  /* PM1 control registers are 16 bits wide whatever the GAS says about the block. */
  if (acpi.pm1a_cnt.addr) acpi.pm1a_cnt.bit_width = 16;
  if (acpi.pm1b_cnt.addr) acpi.pm1b_cnt.bit_width = 16;
  if (acpi.pm_tmr.addr) acpi.pm_tmr.bit_width = 32;
  if ((acpi.fadt_flags >> 10) & 1) FGAS(116, acpi.reset_reg);
  acpi.reset_value = F8(128);
  FGAS(244, acpi.sleep_ctl);
  FGAS(256, acpi.sleep_sts);
  uint64_t facs = F64(132);
  if (!facs) facs = F32(36);
  if (facs && facs < (1ull << 32)) {
    const uint8_t *fp = (const uint8_t *)facs;
    acpi.facs = mem_eq(fp, "FACS", 4) && *(const uint32_t *)(fp + 4) >= 64 ? 1 : -1;
  }
  uint64_t dsdt = F64(140);
  if (!dsdt) dsdt = F32(40);
  if (dsdt) acpi.dsdt = (const struct sdt_header *)dsdt;
#undef F8
#undef F16
#undef F32
#undef F64
#undef FGAS
}

static void parse_madt(const struct sdt_header *m) {
  const uint8_t *b = (const uint8_t *)m;
  acpi.lapic_addr = *(const uint32_t *)(b + 36);
  acpi.sci_gsi = acpi.sci;
  acpi.sci_flags = 0;
  for (uint32_t off = 44; off + 2 <= m->length;) {
    uint8_t type = b[off], len = b[off + 1];
    if (len < 2 || off + len > m->length) break;
    const uint8_t *e = b + off;
    if (type == 0 && len >= 8) { /* Processor Local APIC */
      acpi.n_lapic++;
      if (*(const uint32_t *)(e + 4) & 1) {
        acpi.n_lapic_enabled++;
        if (acpi.n_apic_ids < 256) acpi.apic_ids[acpi.n_apic_ids++] = e[3];
      }
    } else if (type == 9 && len >= 16) { /* Processor Local x2APIC */
      acpi.n_lapic++;
      uint32_t id = *(const uint32_t *)(e + 4);
      if ((*(const uint32_t *)(e + 8) & 1) && id < 256) {
        acpi.n_lapic_enabled++;
        if (acpi.n_apic_ids < 256) acpi.apic_ids[acpi.n_apic_ids++] = (uint8_t)id;
      }
    } else if (type == 1 && len >= 12) { /* I/O APIC */
      if (!acpi.n_ioapic) {
        acpi.ioapic_addr = *(const uint32_t *)(e + 4);
        acpi.ioapic_gsi_base = *(const uint32_t *)(e + 8);
      }
      acpi.n_ioapic++;
    } else if (type == 2 && len >= 10) { /* Interrupt Source Override */
      acpi.n_iso++;
      if (e[3] == acpi.sci) {
        acpi.sci_gsi = *(const uint32_t *)(e + 4);
        acpi.sci_flags = *(const uint16_t *)(e + 8);
      }
    } else if (type == 5 && len >= 12) { /* Local APIC Address Override */
      uint64_t a = *(const uint64_t *)(e + 4);
      if (a < (1ull << 32)) acpi.lapic_addr = (uint32_t)a;
    }
    off += len;
  }
}

/* Finds and checks the tables; with report set, prints the acpi/fadt/madt lines. */
static void acpi_check(int report) {
  char tables[256];
  size_t tl = 0;
  const char *reason = 0;
  int bad_sums = 0;

#define ADD_TABLE(name4)                                        \
  do {                                                          \
    if (tl + 6 < sizeof tables) {                               \
      if (tl) tables[tl++] = ',';                               \
      for (int k_ = 0; k_ < 4; k_++) {                          \
        char c_ = (name4)[k_];                                  \
        tables[tl++] = (c_ > 0x20 && c_ < 0x7f) ? c_ : '?';     \
      }                                                         \
    }                                                           \
  } while (0)

  const uint8_t *rsdp = 0;
  const char *rsdp_from = "none";
  if (si->rsdp_paddr) {
    rsdp = (const uint8_t *)si->rsdp_paddr;
    rsdp_from = "start_info";
    if (!mem_eq(rsdp, "RSD PTR ", 8)) {
      reason = "start_info_rsdp_bad_signature";
      rsdp = 0;
    }
  }
  if (!rsdp) {
    uint64_t ebda = (uint64_t)(*(const uint16_t *)0x40E) << 4;
    if (ebda >= 0x80000 && ebda < 0xA0000) rsdp = rsdp_scan(ebda, ebda + 1024);
    if (!rsdp) rsdp = rsdp_scan(0xE0000, 0x100000);
    if (rsdp) rsdp_from = "scan";
  }
  memset(tables, 0, sizeof tables);
  verify_sums = report;
  if (!rsdp) {
    if (report) {
      kprintf("PROBE name=acpi ok=0 reason=%s\n", reason ? reason : "no_rsdp");
      fail_count(0);
    }
    return;
  }
  acpi.rsdp = (uint64_t)rsdp;
  note_used(rsdp, 36);
  ADD_TABLE("RSDP");
  uint8_t rev = rsdp[15];
  if (checksum(rsdp, 20) != 0) bad_sums++;
  if (rev >= 2 && checksum(rsdp, *(const uint32_t *)(rsdp + 20)) != 0) bad_sums++;
  uint32_t rsdt = *(const uint32_t *)(rsdp + 16);
  uint64_t xsdt = rev >= 2 ? *(const uint64_t *)(rsdp + 24) : 0;
  const struct sdt_header *root = (const struct sdt_header *)(xsdt ? xsdt : (uint64_t)rsdt);
  int entry_size = xsdt ? 8 : 4;
  if (!root || !table_ok(root) || !mem_eq(root->sig, xsdt ? "XSDT" : "RSDT", 4)) {
    if (report) {
      kprintf("PROBE name=acpi ok=0 reason=bad_%s tables=%s\n", xsdt ? "xsdt" : "rsdt", tables);
      fail_count(0);
    }
    return;
  }
  ADD_TABLE(root->sig);
  note_used(root, root->length);
  int n = (int)((root->length - sizeof(*root)) / entry_size);
  const uint8_t *ents = (const uint8_t *)root + sizeof(*root);
  for (int i = 0; i < n; i++) {
    uint64_t a = entry_size == 8 ? *(const uint64_t *)(ents + 8 * i) : *(const uint32_t *)(ents + 4 * i);
    const struct sdt_header *t = (const struct sdt_header *)a;
    if (!t || a >= (1ull << 32)) {
      bad_sums++;
      continue;
    }
    ADD_TABLE(t->sig);
    if (!table_ok(t)) {
      bad_sums++;
      continue;
    }
    note_used(t, t->length);
    if (mem_eq(t->sig, "FACP", 4)) acpi.fadt = t;
    else if (mem_eq(t->sig, "APIC", 4)) acpi.madt = t;
    else if (mem_eq(t->sig, "SSDT", 4) && acpi.nssdt < 8) acpi.ssdt[acpi.nssdt++] = t;
  }
  if (acpi.fadt) {
    parse_fadt(acpi.fadt);
    if (acpi.dsdt) {
      ADD_TABLE("DSDT");
      if (!table_ok(acpi.dsdt) || !mem_eq(acpi.dsdt->sig, "DSDT", 4)) {
        bad_sums++;
        acpi.dsdt = 0;
      }
    }
    if (acpi.dsdt) note_used(acpi.dsdt, acpi.dsdt->length);
    if (acpi.pm_tmr.addr) {
      /* The PM timer counts at 3.58 MHz: two reads a VM exit apart differ. One that does not
       * count would make every delay endless, so it is reported and not used. */
      uint32_t v0 = (uint32_t)gas_read(&acpi.pm_tmr);
      int moved = 0;
      for (int i = 0; i < 1000 && !moved; i++) moved = (uint32_t)gas_read(&acpi.pm_tmr) != v0;
      if (!moved) {
        acpi.pm_tmr_stuck = 1;
        acpi.pm_tmr.addr = 0;
      }
    }
    acpi.s5_found = table_find_s5(acpi.dsdt);
    if (acpi.hw_reduced) acpi.ged_esel = acpi.dsdt ? aml_find_ged(aml_of(acpi.dsdt), aml_len(acpi.dsdt)) : 0;
    if (report) {
      acpi.pwrbtn_device = acpi.dsdt && aml_has_pwrbtn(aml_of(acpi.dsdt), aml_len(acpi.dsdt));
      for (int i = 0; i < acpi.nssdt && !acpi.pwrbtn_device; i++) acpi.pwrbtn_device = aml_has_pwrbtn(aml_of(acpi.ssdt[i]), aml_len(acpi.ssdt[i]));
    }
    for (int i = 0; i < acpi.nssdt && !acpi.s5_found; i++) acpi.s5_found = table_find_s5(acpi.ssdt[i]);
  }
  if (acpi.madt) parse_madt(acpi.madt);
  acpi.found = 1;
  if (!report) return;

  int ok = bad_sums == 0 && acpi.fadt && acpi.dsdt && acpi.madt;
  if (!reason) {
    reason = bad_sums ? "bad_checksum" : !acpi.fadt ? "no_fadt" : !acpi.dsdt ? "no_dsdt" : !acpi.madt ? "no_madt" : 0;
  } else {
    ok = 0;
  }
  kprintf("PROBE name=acpi ok=%d rsdp=0x%lx from=%s rev=%u root=%s tables=%s bad_checksums=%d",
          ok, acpi.rsdp, rsdp_from, rev, xsdt ? "xsdt" : "rsdt", tables, bad_sums);
  if (reason) kprintf(" reason=%s", reason);
  kprintf("\n");
  fail_count(ok);

  if (acpi.fadt) {
    /* Classic ACPI needs PM1a event/control blocks and an SCI; hardware-reduced needs the
     * sleep control/status registers. Either way an _S5_ package. */
    const char *freason = 0;
    if (acpi.hw_reduced) {
      if (!acpi.sleep_ctl.addr || !acpi.sleep_sts.addr) freason = "no_sleep_registers";
    } else {
      if (!acpi.pm1a_evt.addr) freason = "no_pm1a_evt";
      else if (!acpi.pm1a_cnt.addr) freason = "no_pm1a_cnt";
      else if (acpi.pm1_evt_len < 4) freason = "pm1_evt_len";
      else if (!acpi.sci) freason = "no_sci";
    }
    if (!freason && !acpi.s5_found) freason = "no_s5";
    if (!freason && acpi.pm_tmr_stuck) freason = "pm_timer_not_counting";
    if (!freason && acpi.facs < 0) freason = "bad_facs";
    int fok = !freason;
    kprintf("PROBE name=fadt ok=%d rev=%u hw_reduced=%d sci=%u", fok, acpi.fadt->revision, acpi.hw_reduced,
            acpi.sci);
    gas_print("pm1a_evt", &acpi.pm1a_evt);
    gas_print("pm1b_evt", &acpi.pm1b_evt);
    gas_print("pm1a_cnt", &acpi.pm1a_cnt);
    gas_print("pm1b_cnt", &acpi.pm1b_cnt);
    gas_print("pm_tmr", &acpi.pm_tmr);
    gas_print("reset", &acpi.reset_reg);
    kprintf(" reset_value=0x%x", acpi.reset_value);
    /* FADT flag PWR_BUTTON (bit 4) clear: the fixed-feature power button exists. */
    kprintf(" facs=%s pwrbtn_fixed=%d pwrbtn_device=%d", acpi.facs > 0 ? "ok" : acpi.facs < 0 ? "bad" : "none",
            !acpi.hw_reduced && !((acpi.fadt_flags >> 4) & 1), acpi.pwrbtn_device);
    gas_print("sleep_ctl", &acpi.sleep_ctl);
    if (acpi.s5_found) kprintf(" s5=%u,%u", acpi.slp_typa, acpi.slp_typb);
    else kprintf(" s5=none");
    if (freason) kprintf(" reason=%s", freason);
    kprintf("\n");
    fail_count(fok);
  }
  if (acpi.madt) {
    int mok = acpi.n_lapic_enabled >= 1 && acpi.lapic_addr;
    kprintf("PROBE name=madt ok=%d lapics=%d enabled=%d ioapics=%d isos=%d lapic_addr=0x%x ioapic_addr=0x%x "
            "sci_gsi=%u sci_flags=0x%x\n",
            mok, acpi.n_lapic, acpi.n_lapic_enabled, acpi.n_ioapic, acpi.n_iso, acpi.lapic_addr,
            acpi.ioapic_addr, acpi.sci_gsi, acpi.sci_flags);
    fail_count(mok);
  }
#undef ADD_TABLE
}

/* ------------------------------------------------------------------ time */

/* Microsecond clock from the ACPI PM timer (3.579545 MHz). Without one (hardware-reduced ACPI)
 * the TSC, at the frequency CPUID reports (hypervisor timing leaf, leaf 0x16 or 0x15), or an
 * assumed 2 GHz: good enough to bound waits. */
static uint64_t pm_last, pm_ticks, tsc_khz;

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static void clock_init(void) {
  uint32_t a, b, c, d;
  cpuid(0x40000000, &a, &b, &c, &d);
  if (a >= 0x40000010 && a < 0x40000100) {
    cpuid(0x40000010, &a, &b, &c, &d);
    if (a) tsc_khz = a;
  }
  cpuid(0, &a, &b, &c, &d);
  uint32_t max = a;
  if (!tsc_khz && max >= 0x15) {
    cpuid(0x15, &a, &b, &c, &d);
    if (a && b && c) tsc_khz = (uint64_t)c * b / a / 1000;
  }
  if (!tsc_khz && max >= 0x16) {
    cpuid(0x16, &a, &b, &c, &d);
    if (a & 0xFFFF) tsc_khz = (uint64_t)(a & 0xFFFF) * 1000;
  }
  if (!tsc_khz) tsc_khz = 2000000;
}

static uint64_t now_us(void) {
  if (!acpi.pm_tmr.addr) return rdtsc() * 1000 / tsc_khz;
  uint32_t v = (uint32_t)gas_read(&acpi.pm_tmr);
  uint32_t mask = acpi.tmr_ext ? 0xFFFFFFFFu : 0xFFFFFFu;
  pm_ticks += (v - (uint32_t)pm_last) & mask;
  pm_last = v;
  return pm_ticks * 1000000ull / 3579545ull;
}

static void delay_us(uint64_t us) {
  uint64_t start = now_us();
  while (now_us() - start < us) cpu_pause();
}

/* ------------------------------------------------------------------ CMOS boot counter */

#define CMOS_BOOT_INDEX 0x7E   /* an unused byte of the NVRAM's second half */
#define CMOS_BOOT_MAGIC 0xB0

static uint8_t cmos_read(uint8_t idx) {
  outb(0x70, idx);
  return inb(0x71);
}
static void cmos_write(uint8_t idx, uint8_t v) {
  outb(0x70, idx);
  outb(0x71, v);
}

/* ------------------------------------------------------------------ local APIC, IOAPIC, IDT */

static int x2apic;
static uint64_t lapic_base;

static uint32_t lapic_read(uint32_t reg) {
  if (x2apic) return (uint32_t)rdmsr(0x800 + (reg >> 4));
  return mmio_read32(lapic_base + reg);
}
static void lapic_write(uint32_t reg, uint32_t v) {
  if (x2apic) wrmsr(0x800 + (reg >> 4), v);
  else mmio_write32(lapic_base + reg, v);
}
static uint32_t lapic_id(void) {
  uint32_t id = lapic_read(0x20);
  return x2apic ? id : id >> 24;
}
static int lapic_send_ipi(uint32_t dest, uint32_t low) {
  if (x2apic) {
    wrmsr(0x830, ((uint64_t)dest << 32) | low);
    return 1;
  }
  for (int i = 0; i < 100000 && (lapic_read(0x300) & (1u << 12)); i++) cpu_pause();
  lapic_write(0x310, dest << 24);
  lapic_write(0x300, low);
  for (int i = 0; i < 100000; i++) {
    if (!(lapic_read(0x300) & (1u << 12))) return 1;
    cpu_pause();
  }
  return 0;
}

static void lapic_init(void) {
  uint64_t base = rdmsr(0x1B);
  uint32_t a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  /* `x2apic` on the command line switches the BSP's LAPIC to x2APIC mode when CPUID has it. */
  if (has_word("x2apic") && (c & (1u << 21)) && !((base >> 10) & 1)) {
    base |= (1ull << 11) | (1ull << 10);
    wrmsr(0x1B, base);
  }
  x2apic = (base >> 10) & 1;
  lapic_base = base & 0xFFFFF000ull;
  if (acpi.lapic_addr && !x2apic && acpi.lapic_addr != lapic_base) lapic_base = acpi.lapic_addr;
  /* The 8259s are masked: only the LAPIC and IOAPIC deliver interrupts to the probe. */
  outb(0x21, 0xFF);
  outb(0xA1, 0xFF);
  lapic_write(0xF0, 0x1FF);        /* SVR: enabled, spurious vector 0xFF */
  lapic_write(0x350, 1u << 16);    /* LINT0 masked (ExtINT from the 8259) */
  lapic_write(0x320, 1u << 16);    /* timer masked */
}

struct idt_entry {
  uint16_t off0, sel;
  uint8_t ist, attr;
  uint16_t off1;
  uint32_t off2, zero;
} __attribute__((packed));

static struct idt_entry idt[256];
extern const uint64_t isr_table[];
extern const uint8_t isr_vectors[];
extern const uint32_t isr_count;

#define VEC_SCI 0x30
#define VEC_TIMER 0x31

static volatile uint32_t irq_count[256];
static void acpi_poweroff(void);
static void ioapic_mask_sci(void);

void isr_handler(uint64_t vec, const uint64_t *frame) {
  if (vec < 32) {
    kprintf("PROBE name=exception ok=0 vector=%lu error=0x%lx rip=0x%lx\n", vec, frame[0], frame[1]);
    kprintf("PROBE name=done failures=%d\n", failures + 1);
    acpi_poweroff();
    kprintf("PROBE name=halted\n");
    for (;;) __asm__ volatile("cli; hlt");
  }
  irq_count[vec]++;
  /* The SCI is level-triggered and stays asserted until PWRBTN_STS is cleared, which the main
   * loop does; as an OS masks a level source it has not acked yet, mask it here, or every EOI
   * delivers it again before the loop after hlt can run (a storm seen under nested KVM). */
  if (vec == VEC_SCI) ioapic_mask_sci();
  if (vec != 0xFF) lapic_write(0xB0, 0); /* EOI */
}

static void idt_init(void) {
  for (uint32_t i = 0; i < isr_count; i++) {
    uint64_t a = isr_table[i];
    struct idt_entry *e = &idt[isr_vectors[i]];
    e->off0 = (uint16_t)a;
    e->sel = 0x08;
    e->ist = 0;
    e->attr = 0x8E;
    e->off1 = (uint16_t)(a >> 16);
    e->off2 = (uint32_t)(a >> 32);
  }
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) d = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(d));
}

static void ioapic_route(uint32_t gsi, uint8_t vec, uint16_t mps_flags, int default_level_low) {
  if (!acpi.ioapic_addr || gsi < acpi.ioapic_gsi_base) return;
  uint32_t pin = gsi - acpi.ioapic_gsi_base;
  uint32_t pol = mps_flags & 3, trig = (mps_flags >> 2) & 3;
  int low = pol == 3 || (pol == 0 && default_level_low);
  int level = trig == 3 || (trig == 0 && default_level_low);
  uint32_t lo = vec | (low ? 1u << 13 : 0) | (level ? 1u << 15 : 0);
  uint64_t io = acpi.ioapic_addr;
  mmio_write32(io, 0x10 + 2 * pin + 1);
  mmio_write32(io + 0x10, lapic_id() << 24);
  mmio_write32(io, 0x10 + 2 * pin);
  mmio_write32(io + 0x10, lo);
}

static void ioapic_mask_sci(void) {
  if (!acpi.ioapic_addr || acpi.sci_gsi < acpi.ioapic_gsi_base) return;
  uint32_t pin = acpi.sci_gsi - acpi.ioapic_gsi_base;
  mmio_write32(acpi.ioapic_addr, 0x10 + 2 * pin);
  mmio_write32(acpi.ioapic_addr + 0x10, mmio_read32(acpi.ioapic_addr + 0x10) | (1u << 16));
}

/* Periodic LAPIC timer as a wake-up for hlt loops (about 50 ms at KVM's 1 GHz APIC bus). */
static void lapic_timer_start(void) {
  lapic_write(0x3E0, 0x3);                 /* divide by 16 */
  lapic_write(0x320, VEC_TIMER | (1u << 17));
  lapic_write(0x380, 3125000);
}

/* ------------------------------------------------------------------ checks */

static void check_start(uint8_t boot) {
  int ok = si->magic == HVM_START_MAGIC;
  kprintf("PROBE name=start ok=%d magic=0x%x version=%u flags=0x%x modules=%u boot=%u\n", ok, si->magic,
          si->version, si->flags, si->nr_modules, boot);
  fail_count(ok);
}

static void check_serial(void) {
  outb(COM1 + 7, 0x5A);
  uint8_t s1 = inb(COM1 + 7);
  outb(COM1 + 7, 0xA5);
  uint8_t s2 = inb(COM1 + 7);
  uint8_t lsr = inb(COM1 + 5);
  uint8_t iir = inb(COM1 + 2);
  uint8_t lcr = inb(COM1 + 3);
  int scratch = s1 == 0x5A && s2 == 0xA5;
  int thre = (lsr & 0x60) == 0x60;
  int ok = scratch && thre && lcr == 0x03;
  kprintf("PROBE name=serial ok=%d port=0x3f8 scratch=%d lsr=0x%x iir=0x%x lcr=0x%x fifo=%d", ok, scratch, lsr,
          iir, lcr, (iir & 0xC0) == 0xC0);
  if (!ok) kprintf(" reason=%s", !scratch ? "scratch" : !thre ? "lsr" : "lcr");
  kprintf("\n");
  fail_count(ok);
}

static void check_cmdline(void) {
  kprintf("PROBE name=cmdline ok=1 present=%d len=%u value=%q\n", si->cmdline_paddr != 0,
          (unsigned)str_len(cmdline), cmdline);
}

static const char *memtype_name(uint32_t t) {
  switch (t) {
    case 1: return "ram";
    case 2: return "reserved";
    case 3: return "acpi";
    case 4: return "nvs";
    case 5: return "unusable";
    case 6: return "disabled";
    case 7: return "pmem";
    default: return "other";
  }
}

static void check_memmap(void) {
  if (si->version < 1 || !si->memmap_paddr || !si->memmap_entries) {
    kprintf("PROBE name=memmap ok=0 reason=no_memmap version=%u\n", si->version);
    fail_count(0);
    return;
  }
  const struct hvm_memmap_entry *m = (const struct hvm_memmap_entry *)si->memmap_paddr;
  uint64_t below = 0, above = 0, top = 0;
  int touched = 0, touch_bad = 0, overlap = 0;
  for (uint32_t i = 0; i < si->memmap_entries; i++) {
    if (m[i].type != 1) continue;
    uint64_t s = m[i].addr, e = m[i].addr + m[i].size;
    if (e > top) top = e;
    uint64_t lo_end = e < (1ull << 32) ? e : (1ull << 32);
    if (s < lo_end) below += lo_end - s;
    if (e > (1ull << 32)) above += e - (s > (1ull << 32) ? s : (1ull << 32));
    for (uint32_t j = 0; j < i; j++)
      if (m[j].type == 1 && m[j].addr < e && s < m[j].addr + m[j].size) overlap++;
    /* The last 8 bytes of every RAM region the page tables reach must hold what is written. */
    if (e <= (3ull << 30) && m[i].size >= 8) {
      volatile uint64_t *p = (volatile uint64_t *)(e - 8);
      uint64_t saved = *p;
      *p = 0x5a5aa5a512345678ull ^ e;
      if (*p != (0x5a5aa5a512345678ull ^ e)) touch_bad++;
      *p = saved;
      touched++;
    }
  }
  int ok = below > 0 && !touch_bad && !overlap;
  kprintf("PROBE name=memmap ok=%d entries=%u ram_below_4g_kib=%lu ram_above_4g_kib=%lu total_kib=%lu top_kib=%lu "
          "touched=%d",
          ok, si->memmap_entries, below >> 10, above >> 10, (below + above) >> 10, top >> 10, touched);
  if (!ok) kprintf(" reason=%s", touch_bad ? "ram_readback" : overlap ? "overlap" : "no_ram");
  kprintf(" map=");
  for (uint32_t i = 0; i < si->memmap_entries && i < 12; i++)
    kprintf("%s0x%lx+0x%lx:%s", i ? "," : "", m[i].addr, m[i].size, memtype_name(m[i].type));
  kprintf("\n");
  fail_count(ok);
}

extern const uint8_t ap_tramp_start[], ap_tramp_end[], ap_tramp_count[], ap_tramp_bitmap[];

static int page_is_free_ram(uint64_t p) {
  if (!si->memmap_paddr) return p >= 0x1000 && p < 0x9F000;
  const struct hvm_memmap_entry *m = (const struct hvm_memmap_entry *)si->memmap_paddr;
  int ram = 0;
  for (uint32_t i = 0; i < si->memmap_entries; i++)
    if (m[i].type == 1 && m[i].addr <= p && p + 0x1000 <= m[i].addr + m[i].size) ram = 1;
  if (!ram) return 0;
  uint64_t avoid[3][2] = {{(uint64_t)si, (uint64_t)si + sizeof(*si)},
                           {si->cmdline_paddr, si->cmdline_paddr + str_len(cmdline) + 1},
                           {si->memmap_paddr, si->memmap_paddr + si->memmap_entries * sizeof(struct hvm_memmap_entry)}};
  for (int i = 0; i < 3; i++)
    if (avoid[i][0] && avoid[i][0] < p + 0x1000 && p < avoid[i][1]) return 0;
  for (int i = 0; i < acpi.nused; i++)
    if (acpi.used[i][0] < p + 0x1000 && p < acpi.used[i][1]) return 0;
  return 1;
}

static void check_cpus(void) {
  if (!acpi.madt) {
    kprintf("PROBE name=cpus ok=0 reason=no_madt\n");
    fail_count(0);
    return;
  }
  uint32_t bsp = lapic_id();
  uint64_t tramp = 0;
  for (uint64_t p = 0x8000; p < 0x9F000; p += 0x1000)
    if (page_is_free_ram(p)) {
      tramp = p;
      break;
    }
  if (!tramp) {
    kprintf("PROBE name=cpus ok=0 madt=%d reason=no_trampoline_page\n", acpi.n_lapic_enabled);
    fail_count(0);
    return;
  }
  size_t tsize = (size_t)(ap_tramp_end - ap_tramp_start);
  memcpy((void *)tramp, ap_tramp_start, tsize);
  volatile uint32_t *count = (volatile uint32_t *)(tramp + (size_t)(ap_tramp_count - ap_tramp_start));
  volatile uint8_t *bitmap = (volatile uint8_t *)(tramp + (size_t)(ap_tramp_bitmap - ap_tramp_start));
  int aps = 0, ipi_fail = 0;
  uint32_t sipi = 0x4600 | (uint32_t)(tramp >> 12);
  for (int i = 0; i < acpi.n_apic_ids; i++) {
    uint32_t id = acpi.apic_ids[i];
    if (id == bsp) continue;
    aps++;
    if (!lapic_send_ipi(id, 0x4500)) ipi_fail++;  /* INIT, level assert */
  }
  if (aps) {
    delay_us(10000);
    for (int i = 0; i < acpi.n_apic_ids; i++)
      if (acpi.apic_ids[i] != bsp && !lapic_send_ipi(acpi.apic_ids[i], sipi)) ipi_fail++;
    delay_us(200);
    for (int i = 0; i < acpi.n_apic_ids; i++)
      if (acpi.apic_ids[i] != bsp && !(bitmap[acpi.apic_ids[i] >> 3] & (1 << (acpi.apic_ids[i] & 7))))
        lapic_send_ipi(acpi.apic_ids[i], sipi);
  }
  uint64_t t0 = now_us();
  while ((int)*count < aps && now_us() - t0 < 2000000) cpu_pause();
  uint64_t waited = now_us() - t0;
  int started = (int)*count, missing = 0;
  for (int i = 0; i < acpi.n_apic_ids; i++)
    if (acpi.apic_ids[i] != bsp && !(bitmap[acpi.apic_ids[i] >> 3] & (1 << (acpi.apic_ids[i] & 7)))) missing++;
  int bsp_listed = 0, dup = 0;
  for (int i = 0; i < acpi.n_apic_ids; i++) {
    if (acpi.apic_ids[i] == bsp) bsp_listed = 1;
    for (int j = 0; j < i; j++)
      if (acpi.apic_ids[j] == acpi.apic_ids[i]) dup = 1;
  }
  int ok = started == aps && !missing && !ipi_fail && bsp_listed && !dup;
  kprintf("PROBE name=cpus ok=%d madt=%d started=%d aps=%d bsp_apic_id=%u x2apic=%d trampoline=0x%lx wait_us=%lu",
          ok, acpi.n_lapic_enabled, started + 1, aps, bsp, x2apic, tramp, waited);
  if (!ok)
    kprintf(" reason=%s missing=%d", !bsp_listed ? "bsp_not_in_madt" : dup ? "duplicate_apic_id" : ipi_fail ? "ipi_not_delivered" : "ap_timeout", missing);
  kprintf("\n");
  fail_count(ok);
}

/* ------------------------------------------------------------------ actions */

static void acpi_enable_mode(void) {
  if (acpi.hw_reduced || !acpi.pm1a_cnt.addr) return;
  if (gas_read(&acpi.pm1a_cnt) & 1) return; /* SCI_EN */
  if (!acpi.smi_cmd || !acpi.acpi_enable) return;
  outb((uint16_t)acpi.smi_cmd, acpi.acpi_enable);
  for (int i = 0; i < 100000 && !(gas_read(&acpi.pm1a_cnt) & 1); i++) cpu_pause();
}

static void acpi_poweroff(void) {
  if (!acpi.fadt) return;
  if (acpi.hw_reduced) {
    if (!acpi.sleep_ctl.addr) return;
    gas_write(&acpi.sleep_ctl, ((uint64_t)(acpi.slp_typa & 7) << 2) | (1u << 5));
  } else {
    if (!acpi.pm1a_cnt.addr) return;
    uint16_t a = (uint16_t)gas_read(&acpi.pm1a_cnt) & ~(uint16_t)(7u << 10);
    if (acpi.pm1b_cnt.addr) {
      uint16_t b = (uint16_t)gas_read(&acpi.pm1b_cnt) & ~(uint16_t)(7u << 10);
      gas_write(&acpi.pm1b_cnt, b | ((acpi.slp_typb & 7u) << 10) | (1u << 13));
    }
    gas_write(&acpi.pm1a_cnt, a | ((acpi.slp_typa & 7u) << 10) | (1u << 13));
  }
}

static void action_poweroff(void) {
  if (!acpi.fadt || !acpi.s5_found) {
    kprintf("PROBE name=poweroff ok=0 reason=%s\n", !acpi.fadt ? "no_fadt" : "no_s5");
    return;
  }
  kprintf("PROBE name=poweroff method=%s slp_typ=%u\n", acpi.hw_reduced ? "sleep_ctl" : "pm1_cnt", acpi.slp_typa);
  acpi_poweroff();
  delay_us(1000000);
  kprintf("PROBE name=poweroff ok=0 reason=still_running\n");
}

static void action_reset(uint8_t boot) {
  if (boot >= 2) {
    kprintf("PROBE name=reset ok=1 boot=%u\n", boot);
    cmos_write(CMOS_BOOT_INDEX, 0);
    action_poweroff();
    return;
  }
  kprintf("PROBE name=reset boot=%u\n", boot);
  if (!acpi.reset_reg.addr) {
    kprintf("PROBE name=reset ok=0 reason=no_reset_reg\n");
    action_poweroff();
    return;
  }
  cmos_write(CMOS_BOOT_INDEX, (uint8_t)(CMOS_BOOT_MAGIC | boot));
  if (cmos_read(CMOS_BOOT_INDEX) != (uint8_t)(CMOS_BOOT_MAGIC | boot)) {
    /* Without NVRAM the next boot could not tell it is the second: reset would loop. */
    kprintf("PROBE name=reset ok=0 reason=no_cmos_nvram\n");
    action_poweroff();
    return;
  }
  gas_write(&acpi.reset_reg, acpi.reset_value);
  delay_us(1000000);
  cmos_write(CMOS_BOOT_INDEX, 0);
  kprintf("PROBE name=reset ok=0 reason=still_running\n");
  action_poweroff();
}

static void action_powerbutton(void) {
  struct gas sts, en;
  memset(&sts, 0, sizeof sts);
  if (acpi.hw_reduced) {
    /* No PM1 block: poll QEMU's GED event selector when the DSDT has one. */
    if (!acpi.ged_esel || acpi.ged_esel >= (1ull << 32)) {
      kprintf("PROBE name=powerbutton ok=0 reason=hw_reduced_no_ged\n");
      action_poweroff();
      return;
    }
    (void)mmio_read32(acpi.ged_esel); /* clear stale events */
  } else {
    if (!acpi.pm1a_evt.addr) {
      kprintf("PROBE name=powerbutton ok=0 reason=no_pm1_evt\n");
      action_poweroff();
      return;
    }
    sts = acpi.pm1a_evt;
    en = acpi.pm1a_evt;
    sts.bit_width = 16;
    en.bit_width = 16;
    en.addr += acpi.pm1_evt_len / 2;
    acpi_enable_mode();
    gas_write(&sts, 1u << 8);                   /* clear a stale PWRBTN_STS */
    gas_write(&en, gas_read(&en) | (1u << 8));  /* PWRBTN_EN */
    ioapic_route(acpi.sci_gsi, VEC_SCI, acpi.sci_flags, 1);
  }
  lapic_timer_start();
  kprintf("PROBE name=ready action=powerbutton via=%s\n", acpi.hw_reduced ? "ged" : "pm1");
  /* Sleep until the SCI or the ~50 ms timer wakes us, then look at the status. Bounded to
   * about 10 minutes by the clock and by a count of timer wake-ups. */
  uint64_t t0 = now_us();
  int seen = 0;
  for (uint32_t wakes = 0; wakes < 12000 && now_us() - t0 < 600000000ull; wakes++) {
    if (acpi.hw_reduced ? (mmio_read32(acpi.ged_esel) & 2) : (gas_read(&sts) & (1u << 8))) {
      seen = 1;
      break;
    }
    __asm__ volatile("sti; hlt; cli");
  }
  /* A timer wake-up can find PWRBTN_STS set before the SCI it raises is delivered (the VMM sets
   * the status, then raises the line; interrupts are off while we look): give the SCI a few timer
   * ticks to arrive before counting. A VMM that never raises it still fails the expectation. */
  for (uint32_t ticks = 0; seen && !acpi.hw_reduced && irq_count[VEC_SCI] == 0 && ticks < 4; ticks++)
    __asm__ volatile("sti; hlt; cli");
  lapic_write(0x320, 1u << 16);
  if (!seen) {
    kprintf("PROBE name=powerbutton ok=0 reason=timeout\n");
    action_poweroff();
    return;
  }
  if (!acpi.hw_reduced) gas_write(&sts, 1u << 8);
  kprintf("PROBE name=powerbutton ok=1 via=%s sci_irqs=%u timer_irqs=%u\n", acpi.hw_reduced ? "ged" : "pm1",
          irq_count[VEC_SCI], irq_count[VEC_TIMER]);
  action_poweroff();
}

static void action_idle(void) {
  kprintf("PROBE name=ready action=idle\n");
  for (;;) __asm__ volatile("sti; hlt");
}

/* Counts LAPIC timer wake-ups (~50 ms each) and prints the count at each, for the state tests:
 * a machine saved and loaded elsewhere goes on from the same n (the counter lives in registers
 * and on the stack; the wake-ups need the LAPIC timer, the IDT and the interrupt flag restored). */
static void action_count(void) {
  /* `busy`: no sleeping, lines as fast as the port takes them, so a pause lands mid-line, on a
   * port I/O exit (the state tests check that no byte is lost or doubled across a load). */
  int busy = has_word("busy");
  lapic_timer_start();
  kprintf("PROBE name=ready action=count\n");
  for (uint32_t n = 1; n < 1000000; n++) {
    if (!busy) __asm__ volatile("sti; hlt; cli");
    kprintf("PROBE name=count n=%u timer_irqs=%u\n", n, irq_count[VEC_TIMER]);
  }
  lapic_write(0x320, 1u << 16);
  action_poweroff();
}

/* Dirties memory without pause, for live-migration tests: rewrites the first word of each page
 * of 4 MiB at 16 MiB, round after round, after checking that the page still holds what the
 * previous round wrote (bad= counts pages that do not: memory lost or stale after a migration).
 * At each ~50 ms timer tick it prints `PROBE name=dirty n=ROUNDS bad=BAD ticks=T`. Bounded to
 * 12000 ticks (~10 minutes), then powers off. */
#define DIRTY_BASE 0x1000000ull
#define DIRTY_PAGES 1024u
static void action_dirty(void) {
  lapic_timer_start();
  kprintf("PROBE name=ready action=dirty pages=%u\n", DIRTY_PAGES);
  volatile uint64_t *base = (volatile uint64_t *)DIRTY_BASE;
  uint64_t round = 0;
  uint32_t bad = 0, last_ticks = 0;
  __asm__ volatile("sti");
  while (irq_count[VEC_TIMER] < 12000) {
    for (uint32_t p = 0; p < DIRTY_PAGES; p++) {
      volatile uint64_t *word = base + (uint64_t)p * 512;
      if (round && *word != ((round << 32) | p)) bad++;
      *word = ((round + 1) << 32) | p;
    }
    round++;
    uint32_t ticks = irq_count[VEC_TIMER];
    if (ticks != last_ticks) {
      last_ticks = ticks;
      kprintf("PROBE name=dirty n=%u bad=%u ticks=%u\n", (uint32_t)round, bad, ticks);
    }
  }
  __asm__ volatile("cli");
  lapic_write(0x320, 1u << 16);
  action_poweroff();
}

/* ------------------------------------------------------------------ main */

void probe_main(uint32_t start_info_paddr) {
  serial_init();
  si = (const struct hvm_start_info *)(uint64_t)start_info_paddr;
  if (si && si->magic == HVM_START_MAGIC && si->cmdline_paddr) cmdline = (const char *)si->cmdline_paddr;

  uint8_t c = cmos_read(CMOS_BOOT_INDEX);
  uint8_t boot = (uint8_t)(((c & 0xF0) == CMOS_BOOT_MAGIC ? (c & 0x0F) : 0) + 1);

  idt_init();
  check_start(boot);
  if (si->magic != HVM_START_MAGIC) {
    kprintf("PROBE name=done failures=%d\n", failures);
    kprintf("PROBE name=halted\n");
    return;
  }

  int any = has_word("serial") || has_word("cmdline") || has_word("memmap") || has_word("acpi") ||
            has_word("cpus");
  int all = !any && !has_word("nochecks");
  int want_acpi = all || has_word("acpi");

  acpi_check(want_acpi);
  clock_init();
  now_us();
  lapic_init();

  if (all || has_word("serial")) check_serial();
  if (all || has_word("cmdline")) check_cmdline();
  if (all || has_word("memmap")) check_memmap();
  if (all || has_word("cpus")) check_cpus();

  kprintf("PROBE name=done failures=%d\n", failures);

  if (has_word("reset")) action_reset(boot);
  else if (has_word("powerbutton")) action_powerbutton();
  else if (has_word("idle")) action_idle();
  else if (has_word("count")) action_count();
  else if (has_word("dirty")) action_dirty();
  else action_poweroff();
  /* Only reached when the action failed (its line says why): nothing else to do. */
  kprintf("PROBE name=halted\n");
}
