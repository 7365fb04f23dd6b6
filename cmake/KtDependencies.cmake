# Finds kt's dependencies at their Debian 12 locations without extra -D flags.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# nlohmann-json (header only) and yaml-cpp / PCRE2 / hwloc.
find_package(nlohmann_json 3 REQUIRED)

if(KT_STATIC_TOOLS)
  set(KT_LIB_SUFFIX .a)
else()
  set(KT_LIB_SUFFIX .so)
endif()

find_path(KT_YAML_CPP_INCLUDE yaml-cpp/yaml.h REQUIRED)
find_library(KT_YAML_CPP_LIB NAMES libyaml-cpp${KT_LIB_SUFFIX} yaml-cpp REQUIRED)
add_library(kt::yaml-cpp UNKNOWN IMPORTED)
set_target_properties(kt::yaml-cpp PROPERTIES IMPORTED_LOCATION ${KT_YAML_CPP_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${KT_YAML_CPP_INCLUDE})

find_path(KT_PCRE2_INCLUDE pcre2.h REQUIRED)
find_library(KT_PCRE2_LIB NAMES libpcre2-8${KT_LIB_SUFFIX} pcre2-8 REQUIRED)
add_library(kt::pcre2 UNKNOWN IMPORTED)
set_target_properties(kt::pcre2 PROPERTIES IMPORTED_LOCATION ${KT_PCRE2_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${KT_PCRE2_INCLUDE}
  INTERFACE_COMPILE_DEFINITIONS PCRE2_CODE_UNIT_WIDTH=8)

# utf8proc: Unicode normalisation (NFC/NFD/NFKC/NFKD) for the tokenizer.
find_path(KT_UTF8PROC_INCLUDE utf8proc.h REQUIRED)
find_library(KT_UTF8PROC_LIB NAMES libutf8proc${KT_LIB_SUFFIX} utf8proc REQUIRED)
add_library(kt::utf8proc UNKNOWN IMPORTED)
set_target_properties(kt::utf8proc PROPERTIES IMPORTED_LOCATION ${KT_UTF8PROC_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${KT_UTF8PROC_INCLUDE})

# hwloc (optional): NUMA-aware host memory and pinned threads. Debian's
# static libhwloc.a calls libudev, which has no static archive; the runtime
# then supplies inert udev stand-ins (lib/Runtime/Kernels/UdevStubs.c).
find_path(KT_HWLOC_INCLUDE hwloc.h)
find_library(KT_HWLOC_LIB NAMES libhwloc${KT_LIB_SUFFIX} hwloc)
if(KT_HWLOC_INCLUDE AND KT_HWLOC_LIB)
  add_library(kt::hwloc UNKNOWN IMPORTED)
  set_target_properties(kt::hwloc PROPERTIES IMPORTED_LOCATION ${KT_HWLOC_LIB}
    INTERFACE_INCLUDE_DIRECTORIES ${KT_HWLOC_INCLUDE}
    INTERFACE_COMPILE_DEFINITIONS KT_HAVE_HWLOC=1)
  if(KT_HWLOC_LIB MATCHES "\\.a$")
    set(KT_HWLOC_STATIC ON)
  endif()
endif()

if(KT_BUILD_COMPILER)
  set(KT_LLVM_PREFIX /usr/lib/llvm-19 CACHE PATH "Prefix of LLVM/MLIR 19")
  # The version file matches major.minor, so ask for 19.1 (docs/building.md).
  find_package(MLIR 19.1 REQUIRED CONFIG
    HINTS ${KT_LLVM_PREFIX}/lib/cmake/mlir)
  list(APPEND CMAKE_MODULE_PATH ${MLIR_CMAKE_DIR} ${LLVM_CMAKE_DIR})
  include(TableGen)
  include(AddLLVM)
  include(AddMLIR)
  include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
  if(KT_STATIC_TOOLS)
    # LLVMSupport's exported interface names the shared zstd and z3; a static
    # tool takes the static zstd and zlib and drops z3 (unused by MLIR).
    find_library(KT_ZSTD_STATIC libzstd.a REQUIRED)
    find_library(KT_Z_STATIC libz.a REQUIRED)
    set_property(TARGET LLVMSupport PROPERTY INTERFACE_LINK_LIBRARIES
      "rt;dl;m;${KT_Z_STATIC};${KT_ZSTD_STATIC};LLVMDemangle")
    # Debian builds LLVM with LLVM_LINK_LLVM_DYLIB, so every exported MLIR
    # library names the shared "LLVM". Never mix it with static archives
    # (duplicate symbols): point the MLIR libraries at the static LLVM
    # components they need instead.
    foreach(t IN LISTS MLIR_EXPORTED_TARGETS)
      if(TARGET ${t})
        get_target_property(libs ${t} INTERFACE_LINK_LIBRARIES)
        if(libs)
          list(TRANSFORM libs REPLACE "^LLVM$" "LLVMSupport;LLVMDemangle")
          set_property(TARGET ${t} PROPERTY INTERFACE_LINK_LIBRARIES "${libs}")
        endif()
      endif()
    endforeach()
  endif()
  find_program(KT_LIT lit.py HINTS ${KT_LLVM_PREFIX}/build/utils/lit REQUIRED)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
endif()

if(KT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(KT_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    set(KT_BUILD_BENCHMARKS OFF)
  endif()
endif()

# Shipped tools: only glibc at run time (docs/building.md).
function(kt_static_tool target)
  if(KT_STATIC_TOOLS)
    target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
endfunction()
