/*
 * PVH entry of the probe guest, interrupt stubs, and the AP real-mode trampoline.
 *
 * PVH (Xen's HVM direct boot, also used by QEMU, Firecracker, Cloud Hypervisor): the loader
 * enters pvh_start in 32-bit protected mode, paging off, flat CS/DS/ES/SS, interrupts off,
 * %ebx = physical address of struct hvm_start_info. The page tables below are built by the
 * assembler (identity map of the first 4 GiB with 2 MiB pages, the last GiB uncached for
 * MMIO), so the stub runs only a few dozen instructions before C code: guest code is slow
 * under PVM.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* The note the loader looks for: name "Xen", type 18, desc = 32-bit entry (stored as a quad,
 * as Linux does; QEMU reads a pointer-sized value, Xen the low 32 bits). */
	.section .note.pvh, "a", @note
	.balign 4
	.long 2f - 1f          /* namesz */
	.long 4f - 3f          /* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.quad pvh_start
4:	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	movl %ebx, %esi                 /* start_info, kept across the switch */
	lgdt gdt_desc
	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax                 /* PAE */
	movl %eax, %cr4
	movl $0xC0000080, %ecx          /* EFER */
	rdmsr
	orl $0x100, %eax                /* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax           /* PG | PE */
	movl %eax, %cr0
	ljmp $0x08, $long_entry

	.code64
long_entry:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	leaq stack_top(%rip), %rsp
	/* .bss is zeroed here, not trusted to the loader: a VMM that resets without reloading
	 * the image must still give boot 2 a clean state. */
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	movl %esi, %edi                 /* probe_main(start_info_paddr) */
	call probe_main
1:	cli
	hlt
	jmp 1b

/* Interrupt and exception stubs: push (error code, vector) and call isr_handler(vector, frame). */
	.macro ISR vec, has_err
isr_\vec:
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
	.endm

	.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31,48,49,255
	ISR \v, 0
	.endr
	.irp v, 8,10,11,12,13,14,17,21,29,30
	ISR \v, 1
	.endr

isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq 72(%rsp), %rdi             /* vector */
	leaq 80(%rsp), %rsi             /* error code, rip, cs, rflags, rsp, ss */
	call isr_handler
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl isr_table, isr_vectors, isr_count
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,48,49,255
	.quad isr_\v
	.endr
isr_vectors:
	.byte 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,48,49,255
isr_count:
	.long 35

/*
 * AP trampoline, copied by the BSP to a free page below 1 MiB; the SIPI starts each AP at
 * its first byte in real mode with CS = page >> 4, IP = 0. The AP sets its initial APIC ID's
 * bit in the bitmap, increments the counter and parks with interrupts off.
 */
	.section .rodata
	.balign 16
	.globl ap_tramp_start, ap_tramp_end, ap_tramp_count, ap_tramp_bitmap
	.code16
ap_tramp_start:
	cli
	movw %cs, %ax
	movw %ax, %ds
	movl $1, %eax
	cpuid
	shrl $24, %ebx
	lock btsl %ebx, (ap_tramp_bitmap - ap_tramp_start)
	lock incl (ap_tramp_count - ap_tramp_start)
1:	cli
	hlt
	jmp 1b
	.balign 4
ap_tramp_count:
	.long 0
ap_tramp_bitmap:
	.fill 8, 4, 0                   /* 256 APIC IDs */
ap_tramp_end:
	.code64

/* GDT: null, 64-bit code (0x08), data (0x10). */
	.section .rodata
	.balign 16
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF
	.quad 0x00CF92000000FFFF
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

/* Identity map of 0-4 GiB: PML4 -> PDPT -> 4 page directories of 2 MiB pages.
 * 0-3 GiB write-back, 3-4 GiB uncached (LAPIC, IOAPIC, PCI holes, GED). */
	.section .data.pt, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x3
	.quad pd + 0x1000 + 0x3
	.quad pd + 0x2000 + 0x3
	.quad pd + 0x3000 + 0x3
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 1536
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
	.rept 512
	.quad (i << 21) | 0x9B          /* P | RW | PWT | PCD | PS */
	.set i, i + 1
	.endr

	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
	.globl stack_top
stack_top:

	.section .note.GNU-stack, "", @progbits
