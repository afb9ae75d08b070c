#include "vmm/boot/linux_loader.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

#include "refusal.hpp"
#include "test_images.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/boot/pvh_start_info.hpp"

namespace vmm::boot {
namespace {

using test::GiB;
using test::KiB;
using test::MiB;

constexpr const char* kNotAKernel = "is not a Linux bzImage or an ELF kernel with a PVH note";

BootRequest request_for(std::vector<std::uint8_t> kernel) {
    BootRequest request;
    request.kernel = std::move(kernel);
    request.cmdline = "console=ttyS0";
    request.kernel_name = "/boot/test-image";
    return request;
}

// The refusal tests rely on this helper; make sure it can fail.
TEST(LinuxLoader, UntouchedMemoryCheckSeesASingleWrite) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    EXPECT_TRUE(test::memory_untouched(memory));
    memory.write<std::uint8_t>(40 * MiB, 0);
    EXPECT_FALSE(test::memory_untouched(memory));
}

TEST(LinuxLoader, RefusesAnEmptyFile) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    test::expect_refused(memory, request_for({}), "/boot/test-image is empty");
}

TEST(LinuxLoader, RefusesRandomBytes) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    std::mt19937 random(42);
    std::vector<std::uint8_t> bytes(1 * MiB);
    for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
    test::expect_refused(memory, request_for(bytes), kNotAKernel);
}

TEST(LinuxLoader, RefusesAText) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const std::string text = "#!/bin/sh\necho this is not a kernel\n";
    test::expect_refused(memory, request_for({text.begin(), text.end()}), kNotAKernel);
}

TEST(LinuxLoader, RefusesAFileShorterThanTheSetupHeader) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    auto image = test::make_bzimage();
    image.resize(0x203);  // cut inside the "HdrS" signature
    test::expect_refused(memory, request_for(image), kNotAKernel);
}

TEST(LinuxLoader, NamesTheFileInErrors) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    auto image = test::make_bzimage();
    image.resize(0x220);
    test::expect_refused(memory, request_for(image), "/boot/test-image is truncated");
}

TEST(LinuxLoader, DispatchesOnTheFormat) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    EXPECT_EQ(load_kernel(memory, request_for(test::make_bzimage())).mode,
              BootEntry::Mode::Linux64);
    auto other = GuestMemory::create_x86(64 * MiB);
    EXPECT_EQ(load_kernel(other, request_for(test::make_elf())).mode, BootEntry::Mode::Pvh32);
}

// --- Real kernels, when the environment names one. ---

std::vector<std::uint8_t> read_whole_file(const char* path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error(std::string("cannot open ") + path);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

class RealKernel : public ::testing::TestWithParam<std::uint64_t> {};

// VMM_TEST_KERNEL: a distribution bzImage (e.g. Debian's vmlinuz).
TEST_P(RealKernel, BzImageLoads) {
    const char* path = std::getenv("VMM_TEST_KERNEL");
    if (path == nullptr || *path == '\0') GTEST_SKIP() << "VMM_TEST_KERNEL is not set";
    auto memory = GuestMemory::create_x86(GetParam());
    BootRequest request;
    request.kernel = read_whole_file(path);
    request.kernel_name = path;
    request.initrd = std::vector<std::uint8_t>(3 * MiB + 17, 0x42);
    request.cmdline = "console=ttyS0 panic=1 root=/dev/vda";
    request.rsdp_address = x86::kAcpiTablesStart;

    const BootEntry entry = load_kernel(memory, request);
    EXPECT_EQ(entry.mode, BootEntry::Mode::Linux64);
    EXPECT_EQ(entry.entry_point, x86::kHighMemoryStart + 0x200);

    const boot_params params = test::read_zero_page(memory);
    EXPECT_EQ(params.hdr.header, 0x53726448u);
    EXPECT_GE(params.hdr.version, 0x020c);
    EXPECT_EQ(params.hdr.boot_flag, 0xaa55);
    EXPECT_NE(params.hdr.xloadflags & XLF_KERNEL_64, 0);
    EXPECT_EQ(params.hdr.type_of_loader, 0xff);
    EXPECT_EQ(params.hdr.cmd_line_ptr, x86::kCmdlineAddress);
    EXPECT_EQ(params.acpi_rsdp_addr, x86::kAcpiTablesStart);
    EXPECT_EQ(params.e820_entries, build_e820_map(memory).size());
    EXPECT_EQ(params.hdr.ramdisk_size, 3 * MiB + 17);
    EXPECT_EQ(params.hdr.ramdisk_image % 4096, 0u);
    EXPECT_GE(params.hdr.ramdisk_image, params.hdr.pref_address + params.hdr.init_size);
    EXPECT_LE(std::uint64_t{params.hdr.ramdisk_image} + params.hdr.ramdisk_size,
              std::uint64_t{params.hdr.initrd_addr_max} + 1);
    EXPECT_EQ(test::read_c_string(memory, x86::kCmdlineAddress), request.cmdline);

    const std::size_t setup_sects = request.kernel[0x1f1] == 0 ? 4 : request.kernel[0x1f1];
    const std::size_t kernel_offset = (setup_sects + 1) * 512;
    const auto loaded = memory.span(x86::kHighMemoryStart, request.kernel.size() - kernel_offset);
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), request.kernel.begin() + kernel_offset));
}

// VMM_TEST_VMLINUX: an uncompressed vmlinux built with CONFIG_PVH=y.
TEST_P(RealKernel, VmlinuxLoadsThroughPvh) {
    const char* path = std::getenv("VMM_TEST_VMLINUX");
    if (path == nullptr || *path == '\0') GTEST_SKIP() << "VMM_TEST_VMLINUX is not set";
    auto memory = GuestMemory::create_x86(GetParam());
    BootRequest request;
    request.kernel = read_whole_file(path);
    request.kernel_name = path;
    request.initrd = std::vector<std::uint8_t>(1 * MiB, 0x42);
    request.cmdline = "console=ttyS0";
    request.rsdp_address = x86::kAcpiTablesStart;

    const BootEntry entry = load_kernel(memory, request);
    EXPECT_EQ(entry.mode, BootEntry::Mode::Pvh32);
    EXPECT_GE(entry.entry_point, x86::kHighMemoryStart);
    EXPECT_LT(entry.entry_point, 4 * GiB);
    const auto info = memory.read<pvh::StartInfo>(x86::kPvhStartInfoAddress);
    EXPECT_EQ(info.magic, pvh::kStartMagic);
    EXPECT_EQ(info.nr_modules, 1u);
    EXPECT_EQ(info.memmap_entries, build_e820_map(memory).size());
}

INSTANTIATE_TEST_SUITE_P(Memory, RealKernel, ::testing::Values(512 * MiB, 4 * GiB),
                         [](const auto& info) { return std::to_string(info.param / MiB) + "MiB"; });

}  // namespace
}  // namespace vmm::boot
