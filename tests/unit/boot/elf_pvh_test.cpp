#include "vmm/boot/elf_pvh.hpp"

#include <gtest/gtest.h>

#include "refusal.hpp"
#include "test_images.hpp"
#include "test_request.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/boot/linux_loader.hpp"
#include "vmm/boot/pvh_start_info.hpp"

namespace vmm::boot {
namespace {

using test::GiB;
using test::KiB;
using test::kRsdp;
using test::MiB;
using test::request_for;

TEST(ElfPvh, LoadsSegmentsAndEntersAtThePvhNote) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    // Garbage where the segment's bss goes, to prove the loader zeroes it.
    memory.write_bytes(16 * MiB + 64 * KiB, std::vector<std::uint8_t>(64 * KiB, 0xee));
    const auto image = test::make_elf();
    const BootEntry entry = load_kernel(memory, request_for(image));

    EXPECT_EQ(entry.mode, BootEntry::Mode::Pvh32);
    EXPECT_EQ(entry.entry_point, 16 * MiB + 0x1000);
    EXPECT_EQ(entry.boot_info_address, x86::kPvhStartInfoAddress);

    const auto text = memory.span(16 * MiB, 64 * KiB);
    EXPECT_TRUE(std::equal(text.begin(), text.end(), image.begin() + test::kElfDataOffset));
    const auto bss = memory.span(16 * MiB + 64 * KiB, 64 * KiB);
    EXPECT_TRUE(std::all_of(bss.begin(), bss.end(), [](std::uint8_t b) { return b == 0; }));
    EXPECT_EQ(test::read_c_string(memory, x86::kCmdlineAddress), "console=ttyS0");
}

TEST(ElfPvh, StartInfoDescribesCommandLineRsdpAndMemoryMap) {
    auto memory = GuestMemory::create_x86(5 * GiB);
    load_kernel(memory, request_for(test::make_elf()));
    const auto info = memory.read<pvh::StartInfo>(x86::kPvhStartInfoAddress);
    EXPECT_EQ(info.magic, 0x336ec578u);
    EXPECT_EQ(info.version, 1u);
    EXPECT_EQ(info.nr_modules, 0u);
    EXPECT_EQ(info.modlist_paddr, 0u);
    EXPECT_EQ(info.cmdline_paddr, x86::kCmdlineAddress);
    EXPECT_EQ(info.rsdp_paddr, kRsdp);

    const auto e820 = build_e820_map(memory);
    ASSERT_EQ(info.memmap_entries, e820.size());
    for (std::size_t i = 0; i < e820.size(); ++i) {
        const auto entry =
            memory.read<pvh::MemmapEntry>(info.memmap_paddr + i * sizeof(pvh::MemmapEntry));
        EXPECT_EQ(entry.addr, e820[i].address);
        EXPECT_EQ(entry.size, e820[i].size);
        EXPECT_EQ(entry.type, static_cast<std::uint32_t>(e820[i].type));
        EXPECT_EQ(entry.reserved, 0u);
    }
}

TEST(ElfPvh, InitrdIsTheFirstModule) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    auto request = request_for(test::make_elf());
    const std::vector<std::uint8_t> initrd(5000, 0x5a);
    request.initrd = initrd;
    load_kernel(memory, request);

    const auto info = memory.read<pvh::StartInfo>(x86::kPvhStartInfoAddress);
    ASSERT_EQ(info.nr_modules, 1u);
    const auto module = memory.read<pvh::ModlistEntry>(info.modlist_paddr);
    EXPECT_EQ(module.size, initrd.size());
    EXPECT_EQ(module.paddr % 4096, 0u);
    EXPECT_EQ(module.paddr, (64 * MiB - initrd.size()) & ~std::uint64_t{4095});
    const auto loaded = memory.span(module.paddr, initrd.size());
    EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), initrd.begin()));
}

TEST(ElfPvh, AcceptsA32BitEntryNote) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    test::ElfOptions options;
    options.pvh_desc_size = 4;
    EXPECT_EQ(load_kernel(memory, request_for(test::make_elf(options))).entry_point,
              16 * MiB + 0x1000);
}

// --- Refusals: each leaves guest memory untouched. ---

class ElfRefusal : public ::testing::Test {
  protected:
    GuestMemory memory = GuestMemory::create_x86(64 * MiB);
};

TEST_F(ElfRefusal, HeaderCutShort) {
    auto image = test::make_elf();
    image.resize(40);
    test::expect_refused(memory, request_for(image), "truncated");
}

TEST_F(ElfRefusal, ProgramHeadersOutsideTheFile) {
    auto image = test::make_elf();
    Elf64_Ehdr header;
    std::memcpy(&header, image.data(), sizeof(header));
    header.e_phoff = image.size() - 10;
    std::memcpy(image.data(), &header, sizeof(header));
    test::expect_refused(memory, request_for(image), "outside the file");
}

TEST_F(ElfRefusal, ProgramHeaderOffsetOverflows) {
    auto image = test::make_elf();
    Elf64_Ehdr header;
    std::memcpy(&header, image.data(), sizeof(header));
    header.e_phoff = ~std::uint64_t{0} - 8;
    std::memcpy(image.data(), &header, sizeof(header));
    test::expect_refused(memory, request_for(image), "outside the file");
}

TEST_F(ElfRefusal, SegmentDataOutsideTheFile) {
    auto image = test::make_elf();
    image.resize(test::kElfDataOffset + 100);  // PT_LOAD claims 64 KiB from here
    test::expect_refused(memory, request_for(image), "outside the file");
}

TEST_F(ElfRefusal, SegmentOffsetOverflows) {
    auto image = test::make_elf();
    auto load = test::read_phdr(image, test::kElfLoadPhdrOffset);
    load.p_offset = ~std::uint64_t{0} - 16;
    test::write_phdr(image, test::kElfLoadPhdrOffset, load);
    test::expect_refused(memory, request_for(image), "outside the file");
}

TEST_F(ElfRefusal, SegmentOutsideRam) {
    test::ElfOptions options;
    options.paddr = 2 * GiB;
    test::expect_refused(memory, request_for(test::make_elf(options)), "outside the guest RAM");
}

TEST_F(ElfRefusal, SegmentRunningPastTheEndOfRam) {
    test::ElfOptions options;
    options.paddr = 64 * MiB - 64 * KiB;  // file part fits, bss does not
    test::expect_refused(memory, request_for(test::make_elf(options)), "outside the guest RAM");
}

TEST_F(ElfRefusal, SegmentOverTheBootDataBelowOneMiB) {
    test::ElfOptions options;
    options.paddr = 0x10000;
    test::expect_refused(memory, request_for(test::make_elf(options)), "outside the guest RAM");
}

TEST_F(ElfRefusal, SegmentAddressOverflows) {
    auto image = test::make_elf();
    auto load = test::read_phdr(image, test::kElfLoadPhdrOffset);
    load.p_paddr = ~std::uint64_t{0} - 4096;
    test::write_phdr(image, test::kElfLoadPhdrOffset, load);
    test::expect_refused(memory, request_for(image), "outside the guest RAM");
}

TEST_F(ElfRefusal, FileSizeLargerThanMemorySize) {
    test::ElfOptions options;
    options.memory_size = 4 * KiB;
    test::expect_refused(memory, request_for(test::make_elf(options)), "malformed segment");
}

TEST_F(ElfRefusal, NoPvhNote) {
    test::ElfOptions options;
    options.pvh_note = false;
    test::expect_refused(memory, request_for(test::make_elf(options)), "PVH");
}

TEST_F(ElfRefusal, PvhEntryOutsideTheLoadedImage) {
    test::ElfOptions options;
    options.entry_offset = 100 * KiB;  // in the bss, not in the file's bytes
    test::expect_refused(memory, request_for(test::make_elf(options)), "entry point");
}

TEST_F(ElfRefusal, PvhNoteOfOddSize) {
    test::ElfOptions options;
    options.pvh_desc_size = 2;
    test::expect_refused(memory, request_for(test::make_elf(options)), "PVH entry note");
}

TEST_F(ElfRefusal, NoteRunningPastItsSegment) {
    auto image = test::make_elf();
    // The first note's n_namesz, right after the PT_NOTE data starts.
    const std::size_t notes_offset = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
    const std::uint32_t huge = 0x7fff'0000;
    std::memcpy(image.data() + notes_offset, &huge, sizeof(huge));
    test::expect_refused(memory, request_for(image), "malformed ELF note");
}

TEST_F(ElfRefusal, Elf32) {
    test::ElfOptions options;
    options.elf_class = ELFCLASS32;
    test::expect_refused(memory, request_for(test::make_elf(options)), "ELF64");
}

TEST_F(ElfRefusal, SharedObject) {
    test::ElfOptions options;
    options.type = ET_DYN;
    test::expect_refused(memory, request_for(test::make_elf(options)), "not an executable");
}

TEST_F(ElfRefusal, NoLoadableSegment) {
    auto image = test::make_elf();
    auto load = test::read_phdr(image, test::kElfLoadPhdrOffset);
    load.p_type = PT_NULL;
    test::write_phdr(image, test::kElfLoadPhdrOffset, load);
    test::expect_refused(memory, request_for(image), "no loadable segment");
}

TEST_F(ElfRefusal, CommandLineLongerThanItsArea) {
    test::expect_refused(memory,
                         request_for(test::make_elf(), std::string(x86::kCmdlineMaxSize, 'x')),
                         "command line");
}

TEST_F(ElfRefusal, InitrdThatDoesNotFit) {
    auto request = request_for(test::make_elf());
    request.initrd = std::vector<std::uint8_t>(60 * MiB, 1);
    test::expect_refused(memory, request, "does not fit");
}

}  // namespace
}  // namespace vmm::boot
