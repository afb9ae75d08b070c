// vmm::GuestMemory: the x86 layout around the 32-bit MMIO hole, bounds and
// overflow checks on every access, typed reads/writes, and the memfd backing.
#include "vmm/guest_memory.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/mapped_region.hpp"
#include "vmm/x86/layout.hpp"

namespace {

using ::testing::HasSubstr;
using vmm::x86::GiB;
using vmm::x86::MiB;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kLow = 3 * GiB;   // top of low RAM (start of the MMIO hole)
constexpr std::uint64_t kHigh = 4 * GiB;  // start of high RAM

std::string create_error(std::uint64_t size) {
    try {
        vmm::GuestMemory::create_x86(size);
    } catch (const base::Error& error) {
        return error.what();
    }
    ADD_FAILURE() << "create_x86(" << size << ") did not throw";
    return {};
}

TEST(GuestMemoryLayout, SixteenMiBIsTheMinimum) {
    auto memory = vmm::GuestMemory::create_x86(16 * MiB);
    ASSERT_EQ(memory.regions().size(), 1u);
    EXPECT_EQ(memory.regions()[0].guest_address, 0u);
    EXPECT_EQ(memory.regions()[0].size, 16 * MiB);
    EXPECT_EQ(memory.ram_size(), 16 * MiB);
    EXPECT_EQ(memory.end(), 16 * MiB);

    EXPECT_THAT(create_error(16 * MiB - 4096), HasSubstr("too small"));
    EXPECT_THAT(create_error(0), HasSubstr("too small"));
}

TEST(GuestMemoryLayout, SixtyFourMiBIsOneLowRegion) {
    auto memory = vmm::GuestMemory::create_x86(64 * MiB);
    ASSERT_EQ(memory.regions().size(), 1u);
    const auto& low = memory.regions()[0];
    EXPECT_EQ(low.guest_address, 0u);
    EXPECT_EQ(low.size, 64 * MiB);
    EXPECT_EQ(low.file_offset, 0u);
    EXPECT_NE(low.host_address, nullptr);
    EXPECT_EQ(memory.end(), 64 * MiB);
}

TEST(GuestMemoryLayout, ThreeGiBFillsLowMemoryExactly) {
    auto memory = vmm::GuestMemory::create_x86(3 * GiB);
    ASSERT_EQ(memory.regions().size(), 1u);
    EXPECT_EQ(memory.regions()[0].size, kLow);
    EXPECT_EQ(memory.end(), kLow);
    EXPECT_TRUE(memory.contains(kLow - 1, 1));
    EXPECT_FALSE(memory.contains(kLow, 1));
    EXPECT_FALSE(memory.contains(kHigh, 1));
}

TEST(GuestMemoryLayout, ThreeAndAHalfGiBPutsTheRestAtFourGiB) {
    auto memory = vmm::GuestMemory::create_x86(3 * GiB + 512 * MiB);
    ASSERT_EQ(memory.regions().size(), 2u);
    const auto& low = memory.regions()[0];
    const auto& high = memory.regions()[1];
    EXPECT_EQ(low.guest_address, 0u);
    EXPECT_EQ(low.size, kLow);
    EXPECT_EQ(low.file_offset, 0u);
    EXPECT_EQ(high.guest_address, kHigh);
    EXPECT_EQ(high.size, 512 * MiB);
    EXPECT_EQ(high.file_offset, kLow);
    // Host addresses agree with guest addresses modulo 2 MiB (huge pages),
    // with a guard after the low region.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(low.host_address) % (2 * MiB), 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(high.host_address) % (2 * MiB), 0u);
    EXPECT_GE(high.host_address, low.host_address + kLow + 4096);
    EXPECT_EQ(memory.ram_size(), 3 * GiB + 512 * MiB);
    EXPECT_EQ(memory.end(), kHigh + 512 * MiB);
}

TEST(GuestMemoryLayout, SixteenGiB) {
    auto memory = vmm::GuestMemory::create_x86(16 * GiB);
    ASSERT_EQ(memory.regions().size(), 2u);
    EXPECT_EQ(memory.regions()[0].size, kLow);
    EXPECT_EQ(memory.regions()[1].guest_address, kHigh);
    EXPECT_EQ(memory.regions()[1].size, 13 * GiB);
    EXPECT_EQ(memory.ram_size(), 16 * GiB);
    EXPECT_EQ(memory.end(), 17 * GiB);
    // Touch the very last byte of RAM.
    memory.write<std::uint8_t>(17 * GiB - 1, 0xab);
    EXPECT_EQ(memory.read<std::uint8_t>(17 * GiB - 1), 0xab);
    EXPECT_FALSE(memory.contains(17 * GiB, 1));
}

TEST(GuestMemoryLayout, UnalignedSizesAreRefused) {
    EXPECT_THAT(create_error(64 * MiB + 1), HasSubstr("multiple of 4 KiB"));
    EXPECT_THAT(create_error(64 * MiB + 512), HasSubstr("multiple of 4 KiB"));
    EXPECT_THAT(create_error(64 * MiB - 1), HasSubstr("multiple of 4 KiB"));
}

TEST(GuestMemoryLayout, HugeSizesAreRefusedBeforeMapping) {
    EXPECT_THAT(create_error(255 * GiB + 4096), HasSubstr("larger than the supported 255 GiB"));
    EXPECT_THAT(create_error(1024 * GiB), HasSubstr("larger than"));
    EXPECT_THAT(create_error(1024 * GiB + 4096), HasSubstr("larger than"));
    EXPECT_THAT(create_error(kMax & ~std::uint64_t{4095}), HasSubstr("larger than"));
}

TEST(GuestMemoryCreate, RejectsBadRegionLists) {
    using Ranges = std::vector<std::pair<vmm::GuestAddress, std::uint64_t>>;
    const Ranges empty;
    EXPECT_THROW(vmm::GuestMemory::create(empty), base::Error);
    const Ranges zero_size{{0, 0}};
    EXPECT_THROW(vmm::GuestMemory::create(zero_size), base::Error);
    const Ranges unaligned_start{{0x800, 0x1000}};
    EXPECT_THROW(vmm::GuestMemory::create(unaligned_start), base::Error);
    const Ranges unaligned_size{{0, 0x1800}};
    EXPECT_THROW(vmm::GuestMemory::create(unaligned_size), base::Error);
    const Ranges overlapping{{0, 0x2000}, {0x1000, 0x1000}};
    EXPECT_THROW(vmm::GuestMemory::create(overlapping), base::Error);
    const Ranges out_of_order{{0x10000, 0x1000}, {0, 0x1000}};
    EXPECT_THROW(vmm::GuestMemory::create(out_of_order), base::Error);
    const Ranges wraps{{kMax & ~std::uint64_t{4095}, 0x2000}};
    EXPECT_THROW(vmm::GuestMemory::create(wraps), base::Error);
}

TEST(GuestMemoryCreate, ArbitraryLayoutPacksRegionsInTheMemfd) {
    using Ranges = std::vector<std::pair<vmm::GuestAddress, std::uint64_t>>;
    const Ranges ranges{{0, 0x2000}, {0x2000, 0x1000}, {0x100000, 0x3000}};
    auto memory = vmm::GuestMemory::create(ranges);
    ASSERT_EQ(memory.regions().size(), 3u);
    EXPECT_EQ(memory.regions()[1].file_offset, 0x2000u);
    EXPECT_EQ(memory.regions()[2].file_offset, 0x3000u);
    EXPECT_EQ(memory.ram_size(), 0x6000u);
    EXPECT_EQ(memory.end(), 0x103000u);
    // Adjacent regions are still separate: a span may not cross between them.
    EXPECT_TRUE(memory.contains(0x1ff8, 8));
    EXPECT_TRUE(memory.contains(0x2000, 8));
    EXPECT_FALSE(memory.contains(0x1ffc, 8));
    EXPECT_FALSE(memory.contains(0x3000, 1));
    EXPECT_TRUE(memory.contains(0x102fff, 1));
}

// Regions adjacent in guest addresses are not adjacent in the host's: a
// guard page follows each, so a host access running past a region's end
// faults instead of reading or writing the next region.
TEST(GuestMemoryCreate, AGuardPageFollowsEveryRegionInHostMemory) {
    using Ranges = std::vector<std::pair<vmm::GuestAddress, std::uint64_t>>;
    const Ranges ranges{{0, 0x2000}, {0x2000, 0x1000}};
    auto memory = vmm::GuestMemory::create(ranges);
    const auto& first = memory.regions()[0];
    const auto& second = memory.regions()[1];
    EXPECT_GE(second.host_address, first.host_address + first.size + 4096);
    // The same memfd pages behind the regions, at their file offsets.
    first.host_address[0x1fff] = 0x5a;
    second.host_address[0] = 0xa5;
    std::uint8_t byte = 0;
    ASSERT_EQ(::pread(memory.memfd(), &byte, 1, 0x1fff), 1);
    EXPECT_EQ(byte, 0x5a);
    ASSERT_EQ(::pread(memory.memfd(), &byte, 1, 0x2000), 1);
    EXPECT_EQ(byte, 0xa5);
}

TEST(GuestMemoryCreateDeathTest, WritingPastARegionFaults) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    auto memory = vmm::GuestMemory::create_x86(16 * MiB);
    volatile std::uint8_t* past_end = memory.regions()[0].host_address + 16 * MiB;
    EXPECT_DEATH({ *past_end = 1; }, "");
}

class GuestMemorySpans : public ::testing::Test {
  protected:
    // 3.5 GiB: [0, 3G) and [4G, 4.5G). Pages are only touched, never committed.
    vmm::GuestMemory memory = vmm::GuestMemory::create_x86(3 * GiB + 512 * MiB);
    const std::uint64_t high_end = kHigh + 512 * MiB;
};

TEST_F(GuestMemorySpans, SpanPointsIntoTheRightRegion) {
    auto low = memory.span(0x1234, 16);
    EXPECT_EQ(low.data(), memory.regions()[0].host_address + 0x1234);
    EXPECT_EQ(low.size(), 16u);
    auto high = memory.span(kHigh + 0x10, 8);
    EXPECT_EQ(high.data(), memory.regions()[1].host_address + 0x10);
    EXPECT_EQ(high.size(), 8u);
}

TEST_F(GuestMemorySpans, RangeEndingExactlyAtTheEndOfARegionIsRam) {
    auto low_tail = memory.try_span(kLow - 8, 8);
    ASSERT_TRUE(low_tail.has_value());
    EXPECT_EQ(low_tail->data(), memory.regions()[0].host_address + kLow - 8);
    EXPECT_TRUE(memory.try_span(0, kLow).has_value());
    EXPECT_TRUE(memory.try_span(high_end - 1, 1).has_value());
    EXPECT_TRUE(memory.try_span(kHigh, 512 * MiB).has_value());
}

TEST_F(GuestMemorySpans, OneByteTooFarIsNotRam) {
    EXPECT_FALSE(memory.try_span(kLow - 8, 9).has_value());
    EXPECT_FALSE(memory.try_span(0, kLow + 1).has_value());
    EXPECT_FALSE(memory.try_span(high_end - 1, 2).has_value());
    EXPECT_FALSE(memory.try_span(high_end, 1).has_value());
    EXPECT_FALSE(memory.try_span(kHigh - 1, 2).has_value());  // starts in the hole
}

TEST_F(GuestMemorySpans, TheMmioHoleIsNotRam) {
    EXPECT_FALSE(memory.try_span(kLow, 1).has_value());
    EXPECT_FALSE(memory.try_span(0xfee00000, 4).has_value());
    EXPECT_FALSE(memory.try_span(kHigh - 4096, 4096).has_value());
}

TEST_F(GuestMemorySpans, RangeStraddlingBothRegionsIsRefused) {
    // Starts in low RAM and ends in high RAM: the host bytes are contiguous in
    // the mapping, but the guest range covers the hole, so it must fail.
    EXPECT_FALSE(memory.try_span(kLow - 4096, kHigh - kLow + 8192).has_value());
    EXPECT_FALSE(memory.try_span(0, high_end).has_value());
    EXPECT_THROW(memory.span(kLow - 4, 8), base::Error);
}

TEST_F(GuestMemorySpans, AddressPlusLengthOverflowIsRefused) {
    EXPECT_FALSE(memory.try_span(kMax, 1).has_value());
    EXPECT_FALSE(memory.try_span(kMax, 2).has_value());
    EXPECT_FALSE(memory.try_span(kMax - 7, 16).has_value());
    // These wrap around to small addresses that *are* RAM if unchecked.
    EXPECT_FALSE(memory.try_span(0x1000, kMax).has_value());
    EXPECT_FALSE(memory.try_span(0x1000, kMax - 0xfff).has_value());  // end == 2^64
    EXPECT_FALSE(memory.try_span(kHigh, kMax - kHigh + 0x2000).has_value());
    EXPECT_FALSE(memory.try_span(0, kMax).has_value());
    EXPECT_FALSE(memory.try_read<std::uint64_t>(kMax - 3).has_value());
    EXPECT_THROW(memory.span(kMax - 3, 8), base::Error);
}

TEST_F(GuestMemorySpans, ZeroLength) {
    auto inside = memory.try_span(0x1000, 0);
    ASSERT_TRUE(inside.has_value());
    EXPECT_TRUE(inside->empty());
    EXPECT_TRUE(memory.try_span(kHigh + 0x1000, 0).has_value());
    EXPECT_FALSE(memory.try_span(kLow + 0x1000, 0).has_value());  // in the hole
    EXPECT_FALSE(memory.try_span(kMax, 0).has_value());
    EXPECT_NO_THROW(memory.write_bytes(0x1000, {}));
}

TEST_F(GuestMemorySpans, SpanErrorNamesTheRange) {
    try {
        memory.span(0xc0001000, 0x20);
        FAIL() << "span() did not throw";
    } catch (const base::Error& error) {
        EXPECT_THAT(error.what(), HasSubstr("0xc0001000"));
        EXPECT_THAT(error.what(), HasSubstr("0x20"));
    }
}

TEST_F(GuestMemorySpans, ReadWriteRoundTripInBothRegions) {
    memory.write<std::uint64_t>(0x1000, 0x1122334455667788);
    EXPECT_EQ(memory.read<std::uint64_t>(0x1000), 0x1122334455667788u);
    EXPECT_EQ(memory.read<std::uint32_t>(0x1004), 0x11223344u);  // little endian
    EXPECT_EQ(memory.read<std::uint8_t>(0x1000), 0x88);

    memory.write<std::uint32_t>(kHigh + 0x100, 0xdeadbeef);
    EXPECT_EQ(memory.read<std::uint32_t>(kHigh + 0x100), 0xdeadbeefu);
    // Distinct guest addresses are distinct bytes: the high region does not
    // alias the start of the low one.
    EXPECT_EQ(memory.read<std::uint32_t>(0x100), 0u);

    struct Packed {
        std::uint16_t a;
        std::uint8_t b[6];
    };
    memory.write(kLow - sizeof(Packed), Packed{0xbeef, {1, 2, 3, 4, 5, 6}});
    const auto packed = memory.read<Packed>(kLow - sizeof(Packed));
    EXPECT_EQ(packed.a, 0xbeef);
    EXPECT_EQ(packed.b[5], 6);
}

TEST_F(GuestMemorySpans, WriteBytesAndTheSpanSeeTheSameMemory) {
    const std::array<std::uint8_t, 5> bytes{1, 2, 3, 4, 5};
    memory.write_bytes(kHigh + 0x2000, bytes);
    auto view = memory.span(kHigh + 0x2000, 5);
    EXPECT_TRUE(std::equal(view.begin(), view.end(), bytes.begin()));
    view[0] = 9;
    EXPECT_EQ(memory.read<std::uint8_t>(kHigh + 0x2000), 9);
}

TEST_F(GuestMemorySpans, FailedWriteChangesNothing) {
    memory.write<std::uint64_t>(kLow - 8, 0);
    EXPECT_THROW(memory.write<std::uint64_t>(kLow - 4, ~std::uint64_t{0}), base::Error);
    EXPECT_EQ(memory.read<std::uint64_t>(kLow - 8), 0u);
    const std::array<std::uint8_t, 16> bytes{};
    EXPECT_THROW(memory.write_bytes(high_end - 8, bytes), base::Error);
    EXPECT_THROW(memory.read<std::uint16_t>(high_end - 1), base::Error);
}

TEST_F(GuestMemorySpans, TryReadIsNonThrowing) {
    memory.write<std::uint16_t>(0x500, 0x1234);
    EXPECT_EQ(memory.try_read<std::uint16_t>(0x500), std::optional<std::uint16_t>(0x1234));
    EXPECT_FALSE(memory.try_read<std::uint16_t>(kLow - 1).has_value());
    EXPECT_FALSE(memory.try_read<std::uint8_t>(kLow).has_value());
    EXPECT_TRUE(memory.try_read<std::uint8_t>(kLow - 1).has_value());
    EXPECT_FALSE(memory.try_read<std::uint32_t>(high_end - 2).has_value());
}

TEST_F(GuestMemorySpans, ContainsMatchesTrySpan) {
    EXPECT_TRUE(memory.contains(0, 1));
    EXPECT_TRUE(memory.contains(kHigh, 1));
    EXPECT_FALSE(memory.contains(kLow, 1));
    EXPECT_FALSE(memory.contains(kMax, 1));
}

TEST(GuestMemoryMemfd, IsAValidCloseOnExecFileOfTheRamSize) {
    auto memory = vmm::GuestMemory::create_x86(3 * GiB + 512 * MiB);
    const int fd = memory.memfd();
    ASSERT_GE(fd, 0);
    const int fd_flags = ::fcntl(fd, F_GETFD);
    ASSERT_NE(fd_flags, -1);
    EXPECT_TRUE(fd_flags & FD_CLOEXEC);
    struct stat status {};
    ASSERT_EQ(::fstat(fd, &status), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(status.st_size), memory.ram_size());
}

TEST(GuestMemoryMemfd, SecondMappingSharesThePages) {
    auto memory = vmm::GuestMemory::create_x86(3 * GiB + 512 * MiB);
    const auto& high = memory.regions()[1];
    // Map 2 pages of the high region again, at its offset in the memfd.
    auto other = base::MappedRegion::map(8192, PROT_READ | PROT_WRITE, MAP_SHARED, memory.memfd(),
                                         static_cast<off_t>(high.file_offset));

    // Written through the second mapping, seen through span(): MAP_SHARED.
    other.data()[0x10] = 0x5a;
    other.data()[0x1fff] = 0xa5;
    EXPECT_EQ(memory.span(kHigh + 0x10, 1)[0], 0x5a);
    EXPECT_EQ(memory.read<std::uint8_t>(kHigh + 0x1fff), 0xa5);

    // And the other way round.
    memory.write<std::uint32_t>(kHigh + 0x100, 0xcafef00d);
    std::uint32_t seen = 0;
    std::memcpy(&seen, other.data() + 0x100, sizeof(seen));
    EXPECT_EQ(seen, 0xcafef00du);

    // The low region is at offset 0 of the file.
    memory.write<std::uint8_t>(0x42, 0x77);
    std::uint8_t byte = 0;
    ASSERT_EQ(::pread(memory.memfd(), &byte, 1, 0x42), 1);
    EXPECT_EQ(byte, 0x77);
}

TEST(GuestMemoryMemfd, MovedMemoryKeepsItsMappingAndFd) {
    auto memory = vmm::GuestMemory::create_x86(16 * MiB);
    memory.write<std::uint32_t>(0x10, 42);
    const int fd = memory.memfd();
    vmm::GuestMemory moved(std::move(memory));
    EXPECT_EQ(moved.memfd(), fd);
    EXPECT_EQ(moved.read<std::uint32_t>(0x10), 42u);
    EXPECT_EQ(moved.ram_size(), 16 * MiB);
}

TEST(GuestMemoryMemfd, EachGuestGetsItsOwnMemory) {
    auto a = vmm::GuestMemory::create_x86(16 * MiB);
    auto b = vmm::GuestMemory::create_x86(16 * MiB);
    EXPECT_NE(a.memfd(), b.memfd());
    a.write<std::uint32_t>(0x1000, 1);
    b.write<std::uint32_t>(0x1000, 2);
    EXPECT_EQ(a.read<std::uint32_t>(0x1000), 1u);
    EXPECT_EQ(b.read<std::uint32_t>(0x1000), 2u);
}

}  // namespace
