/*
 * The probe guest's pure helpers (no I/O, no globals): byte search, ACPI checksums, command-line
 * words and the small AML scans. Freestanding C for the guest, also compiled by the host's C++
 * compiler for probe_lib_test.cpp.
 */
#ifndef VMMD_PROBE_LIB_H
#define VMMD_PROBE_LIB_H

#include <stddef.h>
#include <stdint.h>

static inline int mem_eq(const void *a, const void *b, size_t n) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  for (size_t i = 0; i < n; i++)
    if (p[i] != q[i]) return 0;
  return 1;
}

static inline size_t str_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* First occurrence of byte c in [p, end), or end. `repne scasb` is one instruction: under PVM a
 * byte-by-byte loop costs ~20 times more. */
static inline const uint8_t *find_byte(const uint8_t *p, const uint8_t *end, uint8_t c) {
  if (p >= end) return end;
  uint64_t n = (uint64_t)(end - p);
  uint64_t di = (uint64_t)p;
  __asm__ volatile("cld; repne scasb" : "+D"(di), "+c"(n) : "a"(c) : "cc", "memory");
  const uint8_t *hit = (const uint8_t *)di - 1;
  return (hit >= p && hit < end && *hit == c) ? hit : end;
}

/* Sum of bytes mod 256: 32 bytes a step in 16-bit lanes, folded every KiB before a lane can
 * overflow (guest code is slow under PVM and a DSDT is several KiB). */
static inline uint8_t checksum(const void *p, size_t n) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t total = 0;
  const uint64_t m = 0x00FF00FF00FF00FFull;
  while (n >= 32) {
    uint64_t acc = 0; /* each lane gains at most 8 * 255 a step: 32 steps stay below 65536 */
    for (int k = 0; k < 32 && n >= 32; k++, n -= 32, b += 32) {
      uint64_t w0, w1, w2, w3;
      __builtin_memcpy(&w0, b, 8);
      __builtin_memcpy(&w1, b + 8, 8);
      __builtin_memcpy(&w2, b + 16, 8);
      __builtin_memcpy(&w3, b + 24, 8);
      acc += (w0 & m) + ((w0 >> 8) & m) + (w1 & m) + ((w1 >> 8) & m) + (w2 & m) + ((w2 >> 8) & m) + (w3 & m) +
             ((w3 >> 8) & m);
    }
    total += (acc & 0xFFFF) + ((acc >> 16) & 0xFFFF) + ((acc >> 32) & 0xFFFF) + (acc >> 48);
  }
  while (n--) total += *b++;
  return (uint8_t)total;
}

/* Whether the command line has the word w (words are separated by spaces or tabs). */
static inline int cmdline_has_word(const char *cmdline, const char *w) {
  size_t n = str_len(w);
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ' || *p == '\t') p++;
    const char *s = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (n && (size_t)(p - s) == n && mem_eq(s, w, n)) return 1;
  }
  return 0;
}

/* Finds Name(_S5_, Package(){a, b, ...}) in AML and stores its first two integers (the SLP_TYP
 * values for PM1a and PM1b). Returns 0 when absent. */
static inline int aml_find_s5(const uint8_t *aml, size_t len, uint8_t *slp_typa, uint8_t *slp_typb) {
  if (len < 12) return 0;
  const uint8_t *end = aml + len;
  for (const uint8_t *p = aml + 2; (p = find_byte(p, end - 8, '_')) < end - 8; p++) {
    if (!mem_eq(p, "_S5_", 4)) continue;
    if (!(p[-1] == 0x08 || (p[-1] == '\\' && p[-2] == 0x08))) continue; /* NameOp, optional root */
    const uint8_t *q = p + 4;
    if (*q++ != 0x12) continue; /* PackageOp */
    q += (*q >> 6) + 1;         /* PkgLength: lead byte + (bits 7:6) more bytes */
    q++;                        /* NumElements */
    uint8_t v[2];
    for (int i = 0; i < 2; i++) {
      if (q + 1 >= end) return 0;
      if (*q == 0x0A) { /* BytePrefix */
        v[i] = q[1];
        q += 2;
      } else if (*q == 0xFF) { /* OnesOp */
        v[i] = 0xFF;
        q++;
      } else { /* ZeroOp (0), OneOp (1) */
        v[i] = *q++;
      }
    }
    *slp_typa = v[0];
    *slp_typb = v[1];
    return 1;
  }
  return 0;
}

/* QEMU's Generic Event Device (hardware-reduced ACPI: microvm) declares
 * OperationRegion (EREG, SystemMemory, <addr>, 4); its first register (ESEL) holds the pending
 * events (value 2: power down) and clears on read. Returns <addr>, or 0 when absent. */
static inline uint64_t aml_find_ged(const uint8_t *aml, size_t len) {
  if (len < 20) return 0;
  const uint8_t *end = aml + len;
  for (const uint8_t *p = aml; (p = find_byte(p, end - 16, 0x5B)) < end - 16; p++) {
    if (p[1] != 0x80 || !mem_eq(p + 2, "EREG", 4) || p[6] != 0x00) continue; /* OpRegionOp, SystemMemory */
    const uint8_t *q = p + 7;
    uint64_t a = 0;
    if (*q == 0x0C) __builtin_memcpy(&a, q + 1, 4); /* DWordPrefix */
    else if (*q == 0x0E) __builtin_memcpy(&a, q + 1, 8); /* QWordPrefix */
    return a;
  }
  return 0;
}

/* Whether AML names a power button: _HID PNP0C0C as EISAID() (a DWordConst) or as a string. */
static inline int aml_has_pwrbtn(const uint8_t *aml, size_t len) {
  static const uint8_t id[5] = {0x0C, 0x41, 0xD0, 0x0C, 0x0C};
  if (len < 8) return 0;
  const uint8_t *end = aml + len;
  for (const uint8_t *q = aml; (q = find_byte(q, end - 4, 0x0C)) < end - 4; q++)
    if (mem_eq(q, id, 5)) return 1;
  for (const uint8_t *q = aml; (q = find_byte(q, end - 6, 'P')) < end - 6; q++)
    if (mem_eq(q, "PNP0C0C", 7)) return 1;
  return 0;
}

#endif
