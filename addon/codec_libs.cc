// dlopen of the optional codec libraries (see codec_libs.h), once per process.
#include "codec_libs.h"
#include <dlfcn.h>
#include <mutex>

namespace img {

namespace {

// Resolves every name into the table's slots in order; false if the library or a symbol is missing.
template <typename Api>
bool Open(const char* soname, const char* const* names, Api* api) {
  void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return false;
  void** slots = reinterpret_cast<void**>(api);
  for (size_t i = 0; i < sizeof(Api) / sizeof(void*); i++) {
    slots[i] = dlsym(lib, names[i]);
    if (!slots[i]) {
      dlclose(lib);
      return false;
    }
  }
  return true;  // kept open for the life of the process
}

}  // namespace

#ifdef IMG_HAVE_ISAL
const IsalApi* Isal() {
  static IsalApi api;
  static bool ok = false;
  static std::once_flag once;
  std::call_once(once, [] {
    static const char* const names[] = {"isal_deflate_init",  "isal_deflate_set_dict", "isal_deflate",
                                        "isal_inflate_init",  "isal_inflate_reset",    "isal_inflate",
                                        "crc32_gzip_refl"};
    static_assert(sizeof(names) / sizeof(names[0]) == sizeof(IsalApi) / sizeof(void*), "one name per slot");
    ok = Open("libisal.so.2", names, &api);
  });
  return ok ? &api : nullptr;
}
#endif

#ifdef IMG_HAVE_ZSTD
const ZstdApi* Zstd() {
  static ZstdApi api;
  static bool ok = false;
  static std::once_flag once;
  std::call_once(once, [] {
    static const char* const names[] = {"ZSTD_versionString", "ZSTD_isError",         "ZSTD_getErrorName",
                                        "ZSTD_createCCtx",    "ZSTD_freeCCtx",        "ZSTD_CCtx_setParameter",
                                        "ZSTD_compressStream2", "ZSTD_createDCtx",    "ZSTD_freeDCtx",
                                        "ZSTD_decompressStream"};
    static_assert(sizeof(names) / sizeof(names[0]) == sizeof(ZstdApi) / sizeof(void*), "one name per slot");
    ok = Open("libzstd.so.1", names, &api);
  });
  return ok ? &api : nullptr;
}
#endif

}  // namespace img
