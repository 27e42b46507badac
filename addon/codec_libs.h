// The optional codec libraries, opened at run time with dlopen rather than linked: an addon
// built where ISA-L and libzstd are installed still loads where they are not (the pod tests'
// Debian minbase has no libisal2; a prebuilt addon or the single-file img travels to such
// hosts) and falls back to zlib and the zstd program there. The headers fix the ABI; the
// sonames (libisal.so.2, libzstd.so.1) are the ABI versions those headers describe.
#pragma once
#ifdef IMG_HAVE_ISAL
#include <isa-l.h>
#endif
#ifdef IMG_HAVE_ZSTD
#include <zstd.h>
#endif

namespace img {

#ifdef IMG_HAVE_ISAL
struct IsalApi {
  void (*deflate_init)(isal_zstream*);
  int (*deflate_set_dict)(isal_zstream*, uint8_t*, uint32_t);
  int (*deflate)(isal_zstream*);
  void (*inflate_init)(inflate_state*);
  void (*inflate_reset)(inflate_state*);
  int (*inflate)(inflate_state*);
  uint32_t (*crc32_gzip_refl)(uint32_t, const unsigned char*, uint64_t);
};
// ISA-L's functions, or nullptr when libisal.so.2 does not load (or lacks one of them).
const IsalApi* Isal();
#endif

#ifdef IMG_HAVE_ZSTD
struct ZstdApi {
  const char* (*versionString)();
  unsigned (*isError)(size_t);
  const char* (*getErrorName)(size_t);
  ZSTD_CCtx* (*createCCtx)();
  size_t (*freeCCtx)(ZSTD_CCtx*);
  size_t (*CCtx_setParameter)(ZSTD_CCtx*, ZSTD_cParameter, int);
  size_t (*compressStream2)(ZSTD_CCtx*, ZSTD_outBuffer*, ZSTD_inBuffer*, ZSTD_EndDirective);
  ZSTD_DCtx* (*createDCtx)();
  size_t (*freeDCtx)(ZSTD_DCtx*);
  size_t (*decompressStream)(ZSTD_DCtx*, ZSTD_outBuffer*, ZSTD_inBuffer*);
};
// libzstd's functions, or nullptr when libzstd.so.1 does not load (or lacks one of them).
const ZstdApi* Zstd();
#endif

}  // namespace img
