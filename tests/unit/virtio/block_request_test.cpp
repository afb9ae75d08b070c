#include "devices/virtio/blk/block_request.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "devices/virtio/blk/block_backend.hpp"
#include "tests/unit/virtio/memory_backend.hpp"
#include "tests/unit/virtio/queue_builder.hpp"

namespace devices::virtio {
namespace {

using testing::default_queue;
using testing::MemoryBackend;
using testing::QueueBuilder;

constexpr std::uint64_t kHeader = 0x10000;
constexpr std::uint64_t kData = 0x20000;
constexpr std::uint64_t kStatus = 0x30000;

struct BlockRequestTest : ::testing::Test {
    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    QueueBuilder driver{memory, default_queue()};
    Virtqueue queue{memory, driver.config(), false, true};
    MemoryBackend disk{64 * 1024};
    BlockLimits limits;

    void header(std::uint32_t type, std::uint64_t sector) {
        memory.write<std::uint32_t>(kHeader, type);
        memory.write<std::uint32_t>(kHeader + 4, 0);
        memory.write<std::uint64_t>(kHeader + 8, sector);
        memory.write<std::uint8_t>(kStatus, 0xee);
    }
    // header | data (readable or writable) | status
    DescriptorChain chain(std::uint32_t data_length, bool device_writes) {
        driver.set_descriptor(0, kHeader, 16, kDescNext, 1);
        if (data_length > 0) {
            driver.set_descriptor(1, kData, data_length,
                                  kDescNext | (device_writes ? kDescWrite : 0), 2);
        } else {
            driver.set_descriptor(0, kHeader, 16, kDescNext, 2);
        }
        driver.set_descriptor(2, kStatus, 1, kDescWrite);
        driver.publish(0);
        return *queue.pop();
    }
    std::uint32_t run(const DescriptorChain& c) {
        return execute_block_request(parse_block_request(c), disk, "serial-1234", limits, true,
                                     true)
            .used_length;
    }
    std::uint8_t status() { return memory.read<std::uint8_t>(kStatus); }
};

TEST_F(BlockRequestTest, WriteThenRead) {
    header(kBlkTypeOut, 3);
    for (int i = 0; i < 1024; ++i)
        memory.write<std::uint8_t>(kData + i, static_cast<std::uint8_t>(i * 7));
    EXPECT_EQ(run(chain(1024, false)), 1u);
    EXPECT_EQ(status(), kBlkStatusOk);
    EXPECT_EQ(disk.bytes[3 * 512 + 5], static_cast<std::uint8_t>(35));
    for (int i = 0; i < 1024; ++i) memory.write<std::uint8_t>(kData + i, 0);
    header(kBlkTypeIn, 3);
    EXPECT_EQ(run(chain(1024, true)), 1025u);
    EXPECT_EQ(status(), kBlkStatusOk);
    EXPECT_EQ(memory.read<std::uint8_t>(kData + 5), 35);
}

TEST_F(BlockRequestTest, HeaderAndStatusMaySplitAcrossDescriptors) {
    header(kBlkTypeIn, 0);
    driver.set_descriptor(0, kHeader, 7, kDescNext, 1);
    driver.set_descriptor(1, kHeader + 7, 9, kDescNext, 2);
    driver.set_descriptor(2, kData, 513, kDescWrite);  // 512 data + status
    driver.publish(0);
    disk.bytes[0] = 0x5a;
    memory.write<std::uint8_t>(kData + 512, 0xee);
    EXPECT_EQ(run(*queue.pop()), 513u);
    EXPECT_EQ(memory.read<std::uint8_t>(kData), 0x5a);
    EXPECT_EQ(memory.read<std::uint8_t>(kData + 512), kBlkStatusOk);
}

TEST_F(BlockRequestTest, OutOfRangeSectorsAreIoErrors) {
    const std::uint64_t sectors = disk.size() / 512;
    header(kBlkTypeIn, sectors);
    EXPECT_EQ(run(chain(512, true)), 1u);
    EXPECT_EQ(status(), kBlkStatusIoErr);
    header(kBlkTypeOut, sectors - 1);
    run(chain(1024, false));
    EXPECT_EQ(status(), kBlkStatusIoErr);
    header(kBlkTypeIn, ~std::uint64_t{0} / 256);  // sector * 512 overflows
    run(chain(512, true));
    EXPECT_EQ(status(), kBlkStatusIoErr);
    header(kBlkTypeIn, 0);  // not a multiple of the sector size
    run(chain(100, true));
    EXPECT_EQ(status(), kBlkStatusIoErr);
}

TEST_F(BlockRequestTest, FlushReachesTheBackend) {
    header(kBlkTypeFlush, 0);
    EXPECT_EQ(run(chain(0, false)), 1u);
    EXPECT_EQ(status(), kBlkStatusOk);
    EXPECT_EQ(disk.flushes, 1);
}

TEST_F(BlockRequestTest, GetIdReturnsTheSerial) {
    header(kBlkTypeGetId, 0);
    EXPECT_EQ(run(chain(20, true)), 21u);
    std::array<char, 20> id{};
    std::memcpy(id.data(), memory.span(kData, 20).data(), 20);
    EXPECT_STREQ(id.data(), "serial-1234");
}

TEST_F(BlockRequestTest, UnknownTypeIsUnsupported) {
    header(0x1234, 0);
    EXPECT_EQ(run(chain(512, false)), 1u);
    EXPECT_EQ(status(), kBlkStatusUnsupported);
}

TEST_F(BlockRequestTest, ReadOnlyDiskRefusesWrites) {
    MemoryBackend read_only(4096, true);
    header(kBlkTypeOut, 0);
    const auto request = parse_block_request(chain(512, false));
    execute_block_request(request, read_only, "", limits, true, true);
    EXPECT_EQ(status(), kBlkStatusIoErr);
}

TEST_F(BlockRequestTest, DiscardAndWriteZeroes) {
    std::fill(disk.bytes.begin(), disk.bytes.end(), 0xaa);
    struct Segment {
        std::uint64_t sector;
        std::uint32_t sectors;
        std::uint32_t flags;
    };
    header(kBlkTypeWriteZeroes, 0);
    memory.write(kData, Segment{2, 2, 1});
    run(chain(16, false));
    EXPECT_EQ(status(), kBlkStatusOk);
    EXPECT_EQ(disk.bytes[2 * 512], 0);
    EXPECT_EQ(disk.bytes[4 * 512], 0xaa);
    header(kBlkTypeDiscard, 0);
    memory.write(kData, Segment{0, 8, 0});
    run(chain(16, false));
    EXPECT_EQ(status(), kBlkStatusOk);
    EXPECT_EQ(disk.discards, 1);
    // Unknown flags, bad segment sizes and out-of-range segments.
    memory.write(kData, Segment{0, 8, 1});  // unmap flag on discard
    run(chain(16, false));
    EXPECT_EQ(status(), kBlkStatusUnsupported);
    run(chain(15, false));
    EXPECT_EQ(status(), kBlkStatusUnsupported);
    memory.write(kData, Segment{~std::uint64_t{0}, 8, 0});
    run(chain(16, false));
    EXPECT_EQ(status(), kBlkStatusIoErr);
    // Not negotiated: unsupported.
    memory.write(kData, Segment{0, 8, 0});
    const auto request = parse_block_request(chain(16, false));
    execute_block_request(request, disk, "", limits, false, false);
    EXPECT_EQ(status(), kBlkStatusUnsupported);
}

TEST_F(BlockRequestTest, ChainsThatCannotCarryARequestAreDeviceErrors) {
    header(kBlkTypeIn, 0);
    driver.set_descriptor(0, kHeader, 16);  // no status byte
    driver.publish(0);
    EXPECT_THROW(parse_block_request(*queue.pop()), DeviceError);
    driver.set_descriptor(0, kHeader, 8, kDescNext, 2);  // short header
    driver.set_descriptor(2, kStatus, 1, kDescWrite);
    driver.publish(0);
    EXPECT_THROW(parse_block_request(*queue.pop()), DeviceError);
    driver.set_descriptor(0, kHeader, 16, kDescNext, 2);  // zero-length status
    driver.set_descriptor(2, kStatus, 0, kDescWrite);
    driver.publish(0);
    EXPECT_THROW(parse_block_request(*queue.pop()), DeviceError);
}

// RawFileBackend against a real file.
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(std::size_t size) {
        char name[] = "/tmp/vmm-blk-test.XXXXXX";
        const int fd = ::mkstemp(name);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
        ::close(fd);
        path = name;
    }
    ~TempFile() { std::filesystem::remove(path); }
};

TEST(RawFileBackend, ReadsWritesAndFlushes) {
    TempFile file(1 << 20);
    RawFileBackend backend(file.path, false);
    EXPECT_EQ(backend.size(), 1u << 20);
    std::array<std::uint8_t, 4096> out{};
    out.fill(0x42);
    std::array<std::uint8_t, 4096> in{};
    const iovec write_vec{out.data(), out.size()};
    const iovec read_vec{in.data(), in.size()};
    EXPECT_FALSE(backend.write(8192, std::span(&write_vec, 1)));
    EXPECT_FALSE(backend.flush());
    EXPECT_FALSE(backend.read(8192, std::span(&read_vec, 1)));
    EXPECT_EQ(in, out);
    EXPECT_FALSE(backend.write_zeroes(8192, 4096, {}));
    EXPECT_FALSE(backend.read(8192, std::span(&read_vec, 1)));
    EXPECT_EQ(in[100], 0);
    EXPECT_FALSE(backend.discard(0, 4096));
    // Reading past the end of the file is an error, not a short success.
    EXPECT_EQ(backend.read((1 << 20) - 100, std::span(&read_vec, 1)), std::errc::io_error);
}

TEST(RawFileBackend, ClearErrorsForMissingBusyAndReadOnly) {
    try {
        RawFileBackend missing("/nonexistent/disk.img", false);
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("/nonexistent/disk.img"), std::string::npos);
        EXPECT_NE(std::string(error.what()).find("No such file"), std::string::npos);
    }
    TempFile file(1 << 20);
    RawFileBackend first(file.path, false);
    try {
        RawFileBackend second(file.path, false);
        FAIL();
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("in use by another process"), std::string::npos);
    }
    TempFile other(1 << 20);
    RawFileBackend read_only(other.path, true);
    RawFileBackend read_only_too(other.path, true);  // shared locks coexist
    std::array<std::uint8_t, 512> bytes{};
    const iovec vec{bytes.data(), bytes.size()};
    EXPECT_EQ(read_only.write(0, std::span(&vec, 1)), std::errc::read_only_file_system);
    EXPECT_TRUE(read_only.read_only());
}

TEST(RawFileBackend, TinyImageIsRefused) {
    TempFile file(100);
    EXPECT_THROW(RawFileBackend(file.path, false), base::Error);
}

}  // namespace
}  // namespace devices::virtio
