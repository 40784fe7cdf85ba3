# cmake --install: libopdev.so, headers, a CMake package (find_package(opdev)) and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS opdev EXPORT opdevTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/opdev DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT opdevTargets NAMESPACE opdev:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/opdev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/opdevConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/opdevConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/opdev)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/opdevConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/opdevConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/opdevConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/opdev)

# Relocatable: the prefix is found from the .pc file's own location, so `cmake --install --prefix X` works.
file(RELATIVE_PATH OPDEV_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/opdev.pc.in ${CMAKE_CURRENT_BINARY_DIR}/opdev.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/opdev.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
