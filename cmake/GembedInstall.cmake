# `cmake --install build [--prefix DIR]` installs:
#   lib/libgembed.so*                       the library (C API exported, internals hidden)
#   include/gembed/{gembed.h,gembed.hpp,version.h}  the public headers (C, and C++ over it)
#   lib/cmake/gembed/                       the CMake package: find_package(gembed) gives gembed::gembed
#   bin/gembed                              the CLI
# The engine's own headers (src/) and its static layers are not installed: a
# user sees only the public headers, and libgembed.so carries everything else.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GEMBED_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gembed)

install(TARGETS gembed_lib EXPORT gembedTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES
  ${PROJECT_SOURCE_DIR}/include/gembed/gembed.h
  ${PROJECT_SOURCE_DIR}/include/gembed/gembed.hpp
  ${PROJECT_BINARY_DIR}/include/gembed/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gembed)
if(TARGET gembed)  # the CLI (GEMBED_BUILD_TOOLS)
  install(TARGETS gembed RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(EXPORT gembedTargets NAMESPACE gembed:: DESTINATION ${GEMBED_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/gembedConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gembedConfig.cmake
  INSTALL_DESTINATION ${GEMBED_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gembedConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)  # 0.x: a minor release may change the API
install(FILES ${PROJECT_BINARY_DIR}/gembedConfig.cmake ${PROJECT_BINARY_DIR}/gembedConfigVersion.cmake
  DESTINATION ${GEMBED_INSTALL_CMAKEDIR})
