# The probe under real QEMU (label "probe"). Three machines:
#   microvm,rtc=on + KVM   qboot firmware, hardware-reduced ACPI (GED): ~0.3 s a run here (PVM)
#   q35 + TCG              SeaBIOS + pvh.bin, classic ACPI (ICH9 PM at 0x600): ~0.3 s a run
#   q35 + KVM              the same machine under PVM: SeaBIOS is slow there, 3-15 s a boot
# The KVM ones carry the label "kvm" (on a host without a usable /dev/kvm, scripts/test.sh runs
# them inside an L1 that has one).
set(_probe ${VMMD_PROBE_ELF})
set(_run ${Python3_EXECUTABLE} ${VMMD_PROBE_RUNNER})
set(_common -display none -nodefaults -serial stdio -kernel ${_probe})
set(_kvm -accel kvm -cpu host,-arch-capabilities)
set(_tcg -accel tcg)

# probe_qemu_test(NAME MACHINE kvm|tcg RUNNER_ARGS... -- QEMU_ARGS...)
function(probe_qemu_test name machine accel)
  set(runner_args)
  set(qemu_args)
  set(in_qemu OFF)
  foreach(a IN LISTS ARGN)
    if(a STREQUAL "--")
      set(in_qemu ON)
    elseif(in_qemu)
      list(APPEND qemu_args "${a}")
    else()
      list(APPEND runner_args "${a}")
    endif()
  endforeach()
  set(labels "probe")
  if(accel STREQUAL "kvm")
    list(APPEND runner_args --need-kvm)
    set(accel_args ${_kvm})
    set(labels "probe;kvm")
  else()
    set(accel_args ${_tcg})
  endif()
  # A generous bound (q35 under PVM takes 3-15 s a boot depending on the host's load); it only
  # matters when something hangs, and the probe itself never waits unbounded.
  add_test(NAME ${name}
    COMMAND ${_run} --timeout 150 ${runner_args} -- ${QEMU_SYSTEM_X86_64} -M ${machine} ${accel_args} ${_common} ${qemu_args})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 200 SKIP_RETURN_CODE 77)
endfunction()

# What the probe sees: CPUs from the MADT all started, the memory asked for, the command line.
foreach(cfg "microvm,rtc=on;kvm;microvm_kvm" "q35;tcg;q35_tcg")
  list(GET cfg 0 machine)
  list(GET cfg 1 accel)
  list(GET cfg 2 tag)
  foreach(smp 1 2 4)
    foreach(mem 64 512)
      math(EXPR lo "(${mem} - 2) * 1024")
      math(EXPR hi "${mem} * 1024")
      probe_qemu_test(probe_qemu_${tag}_smp${smp}_m${mem} ${machine} ${accel}
        --expect cpus:madt=${smp},started=${smp}
        --expect "memmap:total_kib>=${lo},total_kib<=${hi}"
        --expect "cmdline:value=probe-test smp=${smp}"
        --expect poweroff
        -- -smp ${smp} -m ${mem} -append "probe-test smp=${smp}")
    endforeach()
  endforeach()
endforeach()
probe_qemu_test(probe_qemu_q35_kvm_smp1_m64 q35 kvm
  --expect cpus:madt=1,started=1 --expect memmap:total_kib>=63488 --expect poweroff
  -- -smp 1 -m 64)
probe_qemu_test(probe_qemu_q35_kvm_smp4_m512 q35 kvm
  --expect cpus:madt=4,started=4 --expect memmap:total_kib>=522240 --expect poweroff
  -- -smp 4 -m 512)

# Actions: reset boots twice (the CMOS boot counter says so), -no-reboot exits after boot 1,
# the ACPI power button (QMP system_powerdown) leads to a clean poweroff.
foreach(cfg "microvm,rtc=on;kvm;microvm_kvm" "q35;tcg;q35_tcg" "q35;kvm;q35_kvm")
  list(GET cfg 0 machine)
  list(GET cfg 1 accel)
  list(GET cfg 2 tag)
  probe_qemu_test(probe_qemu_${tag}_reset ${machine} ${accel}
    --expect reset:boot=1 --expect reset:boot=2,ok=1 --expect start:boot=2 --expect poweroff
    -- -smp 2 -m 64 -append "reset")
  probe_qemu_test(probe_qemu_${tag}_reset_noreboot ${machine} ${accel}
    --expect reset:boot=1 --reject start:boot=2 --reject poweroff
    -- -no-reboot -smp 1 -m 64 -append "reset nochecks")
  probe_qemu_test(probe_qemu_${tag}_powerbutton ${machine} ${accel}
    --qmp auto --powerdown --expect ready --expect powerbutton.ok=1 --expect poweroff
    -- -smp 1 -m 64 -qmp unix:@QMP@,server=on,wait=off -append "powerbutton")
endforeach()

# The driver's own expectations work: a missing check must fail the run.
probe_qemu_test(probe_qemu_runner_rejects q35 tcg
  --expect cpus:madt=3
  -- -smp 1 -m 64 -append "cpus")
set_tests_properties(probe_qemu_runner_rejects PROPERTIES
  PASS_REGULAR_EXPRESSION "run_probe: FAIL.*expected a line matching 'cpus:madt=3'")

# Without ACPI the probe cannot power off: it says why and halts, and the driver stops at once.
probe_qemu_test(probe_qemu_noacpi_halts microvm,acpi=off,rtc=on tcg
  --timeout 60 --expect acpi:ok=0,reason=no_rsdp --expect halted
  -- -smp 1 -m 64)
set_tests_properties(probe_qemu_noacpi_halts PROPERTIES
  PASS_REGULAR_EXPRESSION "the probe halted without powering off")

# idle: ready, then halted with interrupts on until the VMM is told to quit.
probe_qemu_test(probe_qemu_microvm_kvm_idle microvm,rtc=on kvm
  --qmp auto --on-ready quit --expect ready:action=idle --reject poweroff
  -- -smp 2 -m 64 -qmp unix:@QMP@,server=on,wait=off -append "idle")

# x2APIC mode (KVM only: QEMU 7.2's TCG has no x2APIC): IPIs, EOIs and the timer through MSRs.
probe_qemu_test(probe_qemu_microvm_kvm_x2apic microvm,rtc=on kvm
  --expect cpus:x2apic=1,madt=4,started=4 -- -smp 4 -m 64 -append "x2apic")
probe_qemu_test(probe_qemu_microvm_kvm_x2apic_powerbutton microvm,rtc=on kvm
  --qmp auto --powerdown --expect powerbutton.ok=1 --expect poweroff
  -- -smp 1 -m 64 -qmp unix:@QMP@,server=on,wait=off -append "x2apic powerbutton")
probe_qemu_test(probe_qemu_q35_kvm_x2apic_powerbutton q35 kvm
  --qmp auto --powerdown --expect cpus:x2apic=1,started=2 --expect powerbutton:ok=1,sci_irqs=1 --expect poweroff
  -- -smp 2 -m 64 -qmp unix:@QMP@,server=on,wait=off -append "x2apic powerbutton")
