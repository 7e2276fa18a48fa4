# CivetWeb 1.15 from Debian's source package, built into a static library linked straight to
# OpenSSL 3. Debian's binary libcivetweb1 is built for the OpenSSL 1.1 API and dlopens
# libssl.so: with OpenSSL 3 it crashes at the first TLS accept (see DESIGN.md).
# The unpacked source is cached; nothing of it is committed.
set(CIVETWEB_SOURCE_CACHE "${CMAKE_BINARY_DIR}/civetweb-src" CACHE PATH
    "Where Debian's civetweb source package is unpacked")
if(NOT EXISTS "${CIVETWEB_SOURCE_CACHE}/src/civetweb.c")
  message(STATUS "Fetching Debian's civetweb source into ${CIVETWEB_SOURCE_CACHE}")
  execute_process(
    COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/packaging/civetweb-source.sh" "${CIVETWEB_SOURCE_CACHE}"
    RESULT_VARIABLE civetweb_fetch_result)
  if(NOT civetweb_fetch_result EQUAL 0)
    message(FATAL_ERROR "Could not fetch Debian's civetweb source (see above)")
  endif()
endif()

# estca's patches (packaging/civetweb-*.patch, in name order) go to a copy of civetweb.c in the
# build tree: the cache stays pristine, so trees configured before keep building. The .inl
# files civetweb.c includes are still found beside the original, through its src directory.
file(GLOB CIVETWEB_PATCHES CONFIGURE_DEPENDS
     "${CMAKE_CURRENT_SOURCE_DIR}/packaging/civetweb-*.patch")
list(SORT CIVETWEB_PATCHES)
find_program(PATCH_EXECUTABLE patch REQUIRED)
set(CIVETWEB_PATCHED_DIR "${CMAKE_BINARY_DIR}/civetweb-patched")
set(civetweb_patch_commands)
foreach(civetweb_patch IN LISTS CIVETWEB_PATCHES)
  list(APPEND civetweb_patch_commands
    COMMAND "${PATCH_EXECUTABLE}" --batch --forward --quiet -p1 -d "${CIVETWEB_PATCHED_DIR}/tmp"
            -i "${civetweb_patch}")
endforeach()
add_custom_command(
  OUTPUT "${CIVETWEB_PATCHED_DIR}/src/civetweb.c"
  COMMAND "${CMAKE_COMMAND}" -E rm -rf "${CIVETWEB_PATCHED_DIR}/tmp"
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${CIVETWEB_PATCHED_DIR}/tmp/src"
          "${CIVETWEB_PATCHED_DIR}/src"
  COMMAND "${CMAKE_COMMAND}" -E copy "${CIVETWEB_SOURCE_CACHE}/src/civetweb.c"
          "${CIVETWEB_PATCHED_DIR}/tmp/src/civetweb.c"
  ${civetweb_patch_commands}
  COMMAND "${CMAKE_COMMAND}" -E rename "${CIVETWEB_PATCHED_DIR}/tmp/src/civetweb.c"
          "${CIVETWEB_PATCHED_DIR}/src/civetweb.c"
  DEPENDS "${CIVETWEB_SOURCE_CACHE}/src/civetweb.c" ${CIVETWEB_PATCHES}
  COMMENT "Patching civetweb.c (${CIVETWEB_PATCHES})"
  VERBATIM)

add_library(civetweb STATIC "${CIVETWEB_PATCHED_DIR}/src/civetweb.c")
target_include_directories(civetweb SYSTEM PUBLIC "${CIVETWEB_SOURCE_CACHE}/include")
target_include_directories(civetweb PRIVATE "${CIVETWEB_SOURCE_CACHE}/src")
target_compile_definitions(civetweb PRIVATE
  OPENSSL_API_3_0 NO_SSL_DL NO_CGI USE_IPV6 NO_CACHING)
# Third-party code: its warnings are not ours to fix.
target_compile_options(civetweb PRIVATE -w)
target_link_libraries(civetweb PUBLIC PkgConfig::OPENSSL Threads::Threads ${CMAKE_DL_LIBS})
