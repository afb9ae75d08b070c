#include "vmm/boot/bzimage.hpp"

#include <gtest/gtest.h>

#include "refusal.hpp"
#include "test_images.hpp"
#include "test_request.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/boot/linux_loader.hpp"

namespace vmm::boot {
namespace {

using test::GiB;
using test::KiB;
using test::kRsdp;
using test::MiB;
using test::request_for;

std::vector<std::uint8_t> initrd_of(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 13 + 1);
    return bytes;
}

TEST(BzImage, LoadsKernelZeroPageAndCommandLine) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const auto image = test::make_bzimage();
    const BootEntry entry = load_kernel(memory, request_for(image, "console=ttyS0 panic=1"));

    EXPECT_EQ(entry.mode, BootEntry::Mode::Linux64);
    EXPECT_EQ(entry.entry_point, x86::kHighMemoryStart + 0x200);
    EXPECT_EQ(entry.boot_info_address, x86::kZeroPageAddress);

    // The protected-mode kernel (everything after the setup sectors) at 1 MiB.
    const auto loaded = memory.span(x86::kHighMemoryStart, 64 * KiB);
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), image.begin() + 5 * 512));

    const boot_params params = test::read_zero_page(memory);
    EXPECT_EQ(params.hdr.header, 0x53726448u);
    EXPECT_EQ(params.hdr.version, 0x020f);
    EXPECT_EQ(params.hdr.type_of_loader, 0xff);
    EXPECT_EQ(params.hdr.code32_start, x86::kHighMemoryStart);
    EXPECT_EQ(params.hdr.cmd_line_ptr, x86::kCmdlineAddress);
    EXPECT_EQ(params.ext_cmd_line_ptr, 0u);
    EXPECT_EQ(params.hdr.ramdisk_image, 0u);
    EXPECT_EQ(params.hdr.ramdisk_size, 0u);
    EXPECT_EQ(params.acpi_rsdp_addr, kRsdp);
    EXPECT_EQ(params.sentinel, 0);
    EXPECT_EQ(test::read_c_string(memory, x86::kCmdlineAddress), "console=ttyS0 panic=1");
}

TEST(BzImage, ZeroPageCarriesTheE820Map) {
    auto memory = GuestMemory::create_x86(5 * GiB);
    load_kernel(memory, request_for(test::make_bzimage()));
    const boot_params params = test::read_zero_page(memory);
    const auto expected = build_e820_map(memory);
    ASSERT_EQ(params.e820_entries, expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(params.e820_table[i].addr, expected[i].address);
        EXPECT_EQ(params.e820_table[i].size, expected[i].size);
        EXPECT_EQ(params.e820_table[i].type, static_cast<std::uint32_t>(expected[i].type));
    }
}

TEST(BzImage, SetupHeaderIsCopiedVerbatim) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const auto image = test::make_bzimage();
    load_kernel(memory, request_for(image));
    const boot_params params = test::read_zero_page(memory);
    EXPECT_EQ(params.hdr.setup_sects, 4);
    EXPECT_EQ(params.hdr.boot_flag, 0xaa55);
    EXPECT_EQ(params.hdr.init_size, 8 * MiB);
    EXPECT_EQ(params.hdr.pref_address, 16 * MiB);
    EXPECT_EQ(params.hdr.xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
    EXPECT_EQ(params.hdr.vid_mode, 0xffff);
}

TEST(BzImage, InitrdGoesPageAlignedAtTheTopOfLowRam) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    auto request = request_for(test::make_bzimage());
    const auto initrd = initrd_of(1 * MiB + 123);
    request.initrd = initrd;
    load_kernel(memory, request);

    const boot_params params = test::read_zero_page(memory);
    const std::uint64_t address = params.hdr.ramdisk_image;
    EXPECT_EQ(address % 4096, 0u);
    EXPECT_EQ(address, (64 * MiB - initrd.size()) & ~std::uint64_t{4095});
    EXPECT_EQ(params.hdr.ramdisk_size, initrd.size());
    EXPECT_EQ(params.ext_ramdisk_image, 0u);
    EXPECT_EQ(params.ext_ramdisk_size, 0u);
    // Above what the kernel needs while booting: pref_address + init_size.
    EXPECT_GE(address, 16 * MiB + 8 * MiB);
    const auto loaded = memory.span(address, initrd.size());
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), initrd.begin()));
}

TEST(BzImage, InitrdStaysBelowInitrdAddrMax) {
    auto memory = GuestMemory::create_x86(8 * GiB);
    test::BzImageOptions options;
    options.initrd_addr_max = 0x0fff'ffff;  // 256 MiB
    auto request = request_for(test::make_bzimage(options));
    request.initrd = initrd_of(3 * MiB);
    load_kernel(memory, request);
    const boot_params params = test::read_zero_page(memory);
    EXPECT_EQ(params.hdr.ramdisk_image + params.hdr.ramdisk_size, 256 * MiB);
}

TEST(BzImage, InitrdStaysBelowTwoGiBOnLargeGuests) {
    auto memory = GuestMemory::create_x86(16 * GiB);
    auto request = request_for(test::make_bzimage());
    request.initrd = initrd_of(8 * KiB);
    load_kernel(memory, request);
    const boot_params params = test::read_zero_page(memory);
    EXPECT_EQ(params.hdr.ramdisk_image, 2 * GiB - 8 * KiB);
}

TEST(BzImage, ZeroSetupSectsMeansFour) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    test::BzImageOptions options;
    options.setup_sects = 0;
    const auto image = test::make_bzimage(options);
    load_kernel(memory, request_for(image));
    EXPECT_EQ(memory.read<std::uint8_t>(x86::kHighMemoryStart), image[5 * 512]);
}

TEST(BzImage, EmptyCommandLineIsJustTheNul) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    load_kernel(memory, request_for(test::make_bzimage(), ""));
    EXPECT_EQ(test::read_c_string(memory, x86::kCmdlineAddress), "");
}

TEST(BzImage, CommandLineOfExactlyCmdlineSizeFits) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const std::string cmdline(2047, 'x');
    load_kernel(memory, request_for(test::make_bzimage(), cmdline));
    EXPECT_EQ(test::read_c_string(memory, x86::kCmdlineAddress), cmdline);
}

// --- Refusals: each leaves guest memory untouched. ---

class BzImageRefusal : public ::testing::Test {
  protected:
    GuestMemory memory = GuestMemory::create_x86(64 * MiB);
};

TEST_F(BzImageRefusal, HeaderCutShort) {
    auto image = test::make_bzimage();
    image.resize(0x220);
    test::expect_refused(memory, request_for(image), "truncated");
}

TEST_F(BzImageRefusal, HeaderSignatureOnly) {
    auto image = test::make_bzimage();
    image.resize(0x206);
    test::expect_refused(memory, request_for(image), "truncated");
}

TEST_F(BzImageRefusal, SetupSectorsBeyondTheFile) {
    test::BzImageOptions options;
    options.setup_sects = 200;
    auto image = test::make_bzimage(options);
    image.resize(4096);
    test::expect_refused(memory, request_for(image), "truncated");
}

TEST_F(BzImageRefusal, KernelCutShort) {
    auto image = test::make_bzimage();
    image.resize(image.size() - 1000);
    test::expect_refused(memory, request_for(image), "truncated");
}

TEST_F(BzImageRefusal, MissingBootFlag) {
    test::BzImageOptions options;
    options.boot_flag = 0;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "boot flag");
}

TEST_F(BzImageRefusal, OldBootProtocol) {
    test::BzImageOptions options;
    options.version = 0x020a;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "2.10");
}

TEST_F(BzImageRefusal, NotLoadedHigh) {
    test::BzImageOptions options;
    options.loadflags = 0;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "LOADED_HIGH");
}

TEST_F(BzImageRefusal, No64BitEntry) {
    test::BzImageOptions options;
    options.xloadflags = 0;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "XLF_KERNEL_64");
}

TEST_F(BzImageRefusal, SetupHeaderTooLong) {
    test::BzImageOptions options;
    options.header_jump = 0xff;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "malformed");
}

TEST_F(BzImageRefusal, ZeroInitSize) {
    test::BzImageOptions options;
    options.init_size = 0;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "init_size");
}

TEST_F(BzImageRefusal, BadKernelAlignment) {
    test::BzImageOptions options;
    options.kernel_alignment = 3 * MiB;
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "kernel_alignment");
}

TEST_F(BzImageRefusal, KernelDoesNotFitInRam) {
    test::BzImageOptions options;
    options.init_size = 60 * MiB;  // 16 MiB + 60 MiB > 64 MiB
    test::expect_refused(memory, request_for(test::make_bzimage(options)), "needs guest RAM");
}

TEST_F(BzImageRefusal, CommandLineLongerThanCmdlineSize) {
    test::BzImageOptions options;
    options.cmdline_size = 255;
    test::expect_refused(memory, request_for(test::make_bzimage(options), std::string(256, 'x')),
                         "command line of 256 bytes");
}

TEST_F(BzImageRefusal, CommandLineLongerThanItsArea) {
    test::BzImageOptions options;
    options.cmdline_size = 0x100000;
    test::expect_refused(
        memory, request_for(test::make_bzimage(options), std::string(x86::kCmdlineMaxSize, 'x')),
        "command line");
}

TEST_F(BzImageRefusal, InitrdLargerThanFreeRam) {
    auto request = request_for(test::make_bzimage());
    request.initrd = initrd_of(48 * MiB);  // kernel needs up to 24 MiB of 64
    test::expect_refused(memory, request, "does not fit");
}

TEST_F(BzImageRefusal, InitrdAboveInitrdAddrMax) {
    test::BzImageOptions options;
    options.initrd_addr_max = 24 * MiB + 4095;  // only 4 KiB above the kernel
    auto request = request_for(test::make_bzimage(options));
    request.initrd = initrd_of(8 * KiB);
    test::expect_refused(memory, request, "does not fit");
}

TEST_F(BzImageRefusal, EmptyInitrd) {
    auto request = request_for(test::make_bzimage());
    request.initrd = std::vector<std::uint8_t>{};
    test::expect_refused(memory, request, "empty");
}

}  // namespace
}  // namespace vmm::boot
