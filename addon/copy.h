// The byte-copy core shared by copyFile and copyTree.
#pragma once
#include <sys/types.h>
#include <atomic>
#include "addon.h"

namespace img {
// What a tree copy learned about its filesystems, so each file does not
// retry a path the kernel already refused.
struct CopyHints {
  std::atomic<bool> noClone{false};
  std::atomic<bool> noCopyRange{false};
};

// Copies all of `in` into `out` (both open; out empty): FICLONE when the
// filesystem shares extents, else copy_file_range, else read/write.
// Returns bytes copied, or -1 with `fail` set.
// A known size > 0 ends the copy once reached (saves the final EOF probe).
off_t CopyFd(int in, int out, off_t size, SysError& fail, const std::string& path, CopyHints* hints = nullptr);
}
