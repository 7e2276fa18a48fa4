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

add_library(civetweb STATIC "${CIVETWEB_SOURCE_CACHE}/src/civetweb.c")
target_include_directories(civetweb SYSTEM PUBLIC "${CIVETWEB_SOURCE_CACHE}/include")
target_compile_definitions(civetweb PRIVATE
  OPENSSL_API_3_0 NO_SSL_DL NO_CGI USE_IPV6 NO_CACHING)
# Third-party code: its warnings are not ours to fix.
target_compile_options(civetweb PRIVATE -w)
target_link_libraries(civetweb PUBLIC PkgConfig::OPENSSL Threads::Threads ${CMAKE_DL_LIBS})
