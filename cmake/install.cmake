# Where `cmake --install` puts the programs (GNU directories; a package uses --prefix /usr).
# - vmctl, vmm-img and vmm in bin/: commands people run (vmm is also usable alone, with
#   QEMU's command line, as qemu-system-x86_64 is).
# - vmmd in sbin/: a system daemon started by systemd, as libvirtd is.
# Units, tmpfiles.d and sysusers.d: systemd/CMakeLists.txt; man pages: docs/man/CMakeLists.txt.
install(TARGETS vmctl vmm-img vmm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS vmmd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# Debian's bash-completion loads completions on demand from here.
install(FILES ${CMAKE_SOURCE_DIR}/cli/vmctl.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME vmctl)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/ARCHITECTURE.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
