// The byte-copy core shared by copyFile and copyTree.
#pragma once
#include <sys/types.h>
#include "addon.h"

namespace img {
// Copies all of `in` into `out` (both open; out empty): FICLONE when the
// filesystem shares extents, else copy_file_range, else read/write.
// Returns bytes copied, or -1 with `fail` set.
off_t CopyFd(int in, int out, off_t size, SysError& fail, const std::string& path);
}
