// vmm::cli::parse_size: "512M", "4G", "1024K", bare numbers as MiB, and the
// inputs it must refuse rather than misread.
#include "vmm/cli/size_parser.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace {

using vmm::cli::parse_size;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;
constexpr std::uint64_t TiB = 1024 * GiB;

TEST(ParseSize, Suffixes) {
    EXPECT_EQ(parse_size("512M"), 512 * MiB);
    EXPECT_EQ(parse_size("4G"), 4 * GiB);
    EXPECT_EQ(parse_size("1024K"), 1024 * KiB);
    EXPECT_EQ(parse_size("1T"), TiB);
    EXPECT_EQ(parse_size("65536B"), 65536u);
}

TEST(ParseSize, SuffixesAreCaseInsensitive) {
    EXPECT_EQ(parse_size("512m"), 512 * MiB);
    EXPECT_EQ(parse_size("4g"), 4 * GiB);
    EXPECT_EQ(parse_size("8k"), 8 * KiB);
    EXPECT_EQ(parse_size("2t"), 2 * TiB);
    EXPECT_EQ(parse_size("7b"), 7u);
}

TEST(ParseSize, BareNumberMeansMiB) {
    EXPECT_EQ(parse_size("64"), 64 * MiB);
    EXPECT_EQ(parse_size("1"), MiB);
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("0512"), 512 * MiB);  // leading zeros are decimal, not octal
}

TEST(ParseSize, LongSpellings) {
    EXPECT_EQ(parse_size("512MiB"), 512 * MiB);
    EXPECT_EQ(parse_size("512MB"), 512 * MiB);
    EXPECT_EQ(parse_size("2GiB"), 2 * GiB);
    EXPECT_EQ(parse_size("16KiB"), 16 * KiB);
    EXPECT_EQ(parse_size("1TiB"), TiB);
}

TEST(ParseSize, RejectsUnknownUnits) {
    EXPECT_EQ(parse_size("12Q"), std::nullopt);
    EXPECT_EQ(parse_size("12P"), std::nullopt);
    EXPECT_EQ(parse_size("12E"), std::nullopt);
    EXPECT_EQ(parse_size("12iB"), std::nullopt);
    EXPECT_EQ(parse_size("12BiB"), std::nullopt);
    EXPECT_EQ(parse_size("12BB"), std::nullopt);
    EXPECT_EQ(parse_size("12Mi"), std::nullopt);
    EXPECT_EQ(parse_size("12MiBs"), std::nullopt);
    EXPECT_EQ(parse_size("12MM"), std::nullopt);
    EXPECT_EQ(parse_size("12Mib"), std::nullopt);
}

TEST(ParseSize, RejectsMalformedText) {
    EXPECT_EQ(parse_size(""), std::nullopt);
    EXPECT_EQ(parse_size("M"), std::nullopt);
    EXPECT_EQ(parse_size("G4"), std::nullopt);
    EXPECT_EQ(parse_size("-1"), std::nullopt);
    EXPECT_EQ(parse_size("+1"), std::nullopt);
    EXPECT_EQ(parse_size(" 512M"), std::nullopt);
    EXPECT_EQ(parse_size("512M "), std::nullopt);
    EXPECT_EQ(parse_size("512 M"), std::nullopt);
    EXPECT_EQ(parse_size("1.5G"), std::nullopt);
    EXPECT_EQ(parse_size("0x100"), std::nullopt);
    EXPECT_EQ(parse_size("1,024"), std::nullopt);
    EXPECT_EQ(parse_size(std::string("512\0M", 5)), std::nullopt);
}

TEST(ParseSize, RejectsOverflow) {
    EXPECT_EQ(parse_size("99999999999999999999G"), std::nullopt);  // digits overflow
    EXPECT_EQ(parse_size("99999999999999999999"), std::nullopt);
    EXPECT_EQ(parse_size("18446744073709551616B"), std::nullopt);  // 2^64
    EXPECT_EQ(parse_size("17179869184G"), std::nullopt);           // 2^34 GiB = 2^64
    EXPECT_EQ(parse_size("16777216T"), std::nullopt);              // 2^24 TiB = 2^64
    EXPECT_EQ(parse_size("17592186044416M"), std::nullopt);        // bare: 2^44 MiB
}

TEST(ParseSize, LargestValuesThatFit) {
    EXPECT_EQ(parse_size("18446744073709551615B"), 18446744073709551615ull);
    EXPECT_EQ(parse_size("17179869183G"), 17179869183ull * GiB);
    EXPECT_EQ(parse_size("16777215T"), 16777215ull * TiB);
}

}  // namespace
