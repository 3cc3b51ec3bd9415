# Runs at install time (see CMakeLists.txt): writes vmmd.service and vmmd.socket with the paths of
# the prefix being installed to, and installs them.
function(vmmd_install_path out relative)
  if(IS_ABSOLUTE "${relative}")
    set(${out} "${relative}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${relative}" PARENT_SCOPE)
  endif()
endfunction()

vmmd_install_path(VMMD_SBINDIR "${VMMD_REL_SBINDIR}")
vmmd_install_path(VMMD_BINDIR "${VMMD_REL_BINDIR}")
vmmd_install_path(VMMD_DOCDIR "${VMMD_REL_DOCDIR}")
if(VMMD_UNIT_DIR_OVERRIDE)
  set(unit_dir "${VMMD_UNIT_DIR_OVERRIDE}")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND VMMD_SYSTEMD_PC_UNIT_DIR)
  set(unit_dir "${VMMD_SYSTEMD_PC_UNIT_DIR}")
else()
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

foreach(unit vmmd.service vmmd.socket)
  configure_file("${VMMD_UNIT_SOURCES}/${unit}.in" "${VMMD_UNIT_STAGING}/${unit}" @ONLY)
endforeach()
file(INSTALL "${VMMD_UNIT_STAGING}/vmmd.service" "${VMMD_UNIT_STAGING}/vmmd.socket"
     DESTINATION "${unit_dir}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
