# Helpers shared by every module's CMakeLists.txt.
#
# Arrow enforcement: every module's public header lives at
# <module>/<module>.h in the source tree, but the source root is never on an
# include path. Instead each module gets a private include root in the build
# tree, build/inc/<module>/, holding one symlink <module> -> the module's
# source folder, and that root is a PUBLIC include directory of the module's
# library. A target therefore sees "<module>/<module>.h" only for the modules
# it links (directly or through a PUBLIC dependency), so an include that
# crosses the arrows of docs/architecture.md fails to compile.

set(MOOR_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wimplicit-fallthrough
    -Wformat=2 -Wvla -Wundef -Wpointer-arith -Wwrite-strings
    -Wold-style-definition -Wnull-dereference)
if(MOOR_WERROR)
  list(APPEND MOOR_WARNINGS -Werror)
endif()

# Flags for moor's own code (not generated code).
function(moor_target_flags target)
  target_compile_options(${target} PRIVATE ${MOOR_WARNINGS})
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  if(CMAKE_BUILD_TYPE MATCHES "Rel")
    target_compile_options(${target} PRIVATE -fstack-protector-strong)
    target_compile_definitions(${target} PRIVATE _FORTIFY_SOURCE=2)
  endif()
endfunction()

# moor_module(NAME SOURCES ... DEPS ...): a static library moor_<name> whose
# public header is <name>/<name>.h, usable by targets that link it.
function(moor_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(inc ${CMAKE_BINARY_DIR}/inc/${name})
  file(MAKE_DIRECTORY ${inc})
  if(NOT EXISTS ${inc}/${name})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${inc}/${name} SYMBOLIC)
  endif()
  add_library(moor_${name} STATIC ${M_SOURCES})
  target_include_directories(moor_${name} PUBLIC ${inc})
  target_link_libraries(moor_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  moor_target_flags(moor_${name})
endfunction()

# moor_forbid_includes(MODULE PATTERN): a test that fails when any file of
# MODULE includes a header matching PATTERN (extended regex). raft/ and kv/
# must stay free of clocks, syscalls, threads and the event loop.
function(moor_forbid_includes name pattern)
  add_test(NAME arrows_${name}
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-includes.sh
                   ${CMAKE_SOURCE_DIR}/${name} "${pattern}")
endfunction()
