// Guest-side block benchmark for bench/virtio.sh: queue-depth-1 O_DIRECT
// reads or writes of one block size on a block device for a fixed time, the
// shape of fio's psync engine at iodepth=1. Linked statically so that it runs
// in the busybox guest initramfs (fio with its 60 shared libraries would not
// fit). At depth 1 every request pays the whole VMM round trip (notify,
// worker wake-up, host I/O, interrupt), which is what the benchmark compares.
//
// usage: disk_io_bench DEVICE seqread|seqwrite|randread|randwrite BLOCK_BYTES SECONDS
// prints: DISK-BENCH mode=<mode> bs=<bytes> ios=<n> seconds=<s> iops=<n> mibps=<n>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "base/unique_fd.hpp"

namespace {

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};

int fail(const char* what) {
    std::fprintf(stderr, "disk_io_bench: %s: %s\n", what, std::strerror(errno));
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr,
                     "usage: disk_io_bench DEVICE seqread|seqwrite|randread|randwrite "
                     "BLOCK_BYTES SECONDS\n");
        return 2;
    }
    const std::string_view mode = argv[2];
    const bool write = mode == "seqwrite" || mode == "randwrite";
    const bool random = mode == "randread" || mode == "randwrite";
    if (!write && !random && mode != "seqread") {
        std::fprintf(stderr, "disk_io_bench: unknown mode '%s'\n", argv[2]);
        return 2;
    }
    const long block = std::strtol(argv[3], nullptr, 10);
    const long seconds = std::strtol(argv[4], nullptr, 10);
    if (block < 512 || block % 512 != 0 || block > (1 << 24) || seconds < 1) {
        std::fprintf(stderr, "disk_io_bench: bad block size or duration\n");
        return 2;
    }

    const base::UniqueFd device(::open(argv[1], (write ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC));
    if (!device) return fail(argv[1]);
    const int fd = device.get();
    // A regular file works too (a quick check on the host).
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail("fstat");
    std::uint64_t device_bytes = static_cast<std::uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode) && ::ioctl(fd, BLKGETSIZE64, &device_bytes) != 0)
        return fail("BLKGETSIZE64");
    const std::uint64_t blocks = device_bytes / static_cast<std::uint64_t>(block);
    if (blocks == 0) {
        std::fprintf(stderr, "disk_io_bench: device smaller than one block\n");
        return 1;
    }

    void* raw = nullptr;
    if (::posix_memalign(&raw, 4096, static_cast<std::size_t>(block)) != 0) return fail("alloc");
    const std::unique_ptr<void, FreeDeleter> buffer(raw);
    std::memset(buffer.get(), 0xa5, static_cast<std::size_t>(block));

    // xorshift64: cheap and deterministic, so runs under both VMMs touch the
    // same blocks in the same order.
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    std::uint64_t next_block = 0;
    std::uint64_t ios = 0;
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto end = start + std::chrono::seconds(seconds);
    auto now = start;
    while (now < end) {
        // Check the clock every 16 requests: it is a syscall-free vDSO call,
        // but there is no need to pay it per request.
        for (int i = 0; i < 16; ++i) {
            std::uint64_t index;
            if (random) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                index = state % blocks;
            } else {
                index = next_block;
                next_block = (next_block + 1) % blocks;
            }
            const auto offset = static_cast<off_t>(index * static_cast<std::uint64_t>(block));
            const ssize_t done = write ? ::pwrite(fd, buffer.get(), block, offset)
                                       : ::pread(fd, buffer.get(), block, offset);
            if (done != block) return fail(write ? "pwrite" : "pread");
            ++ios;
        }
        now = Clock::now();
    }
    if (write && ::fdatasync(fd) != 0) return fail("fdatasync");
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("DISK-BENCH mode=%s bs=%ld ios=%llu seconds=%.2f iops=%.0f mibps=%.1f\n",
                argv[2], block, static_cast<unsigned long long>(ios), elapsed,
                static_cast<double>(ios) / elapsed,
                static_cast<double>(ios) * static_cast<double>(block) / elapsed / (1 << 20));
    return 0;
}
