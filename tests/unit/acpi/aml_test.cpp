#include "vmm/acpi/aml.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"

namespace vmm::acpi::aml {
namespace {

TEST(Aml, PkgLengthOneByte) {
    EXPECT_EQ(pkg_length(0), (Bytes{0x01}));
    EXPECT_EQ(pkg_length(62), (Bytes{0x3f}));
}

TEST(Aml, PkgLengthTwoBytes) {
    // 63 + 2 = 65 = 0x41: lead 0x40 | 0x1, then 0x41 >> 4.
    EXPECT_EQ(pkg_length(63), (Bytes{0x41, 0x04}));
    EXPECT_EQ(pkg_length(4093), (Bytes{0x4f, 0xff}));
}

TEST(Aml, PkgLengthThreeAndFourBytes) {
    EXPECT_EQ(pkg_length(4094), (Bytes{0x81, 0x00, 0x01}));            // 4097 = 0x1001
    EXPECT_EQ(pkg_length(1u << 20), (Bytes{0xc4, 0x00, 0x00, 0x01}));  // 0x100004
    EXPECT_THROW(pkg_length(1u << 28), base::Error);
}

TEST(Aml, NameStrings) {
    EXPECT_EQ(name_string("_S5"), (Bytes{'_', 'S', '5', '_'}));
    EXPECT_EQ(name_string("\\_SB"), (Bytes{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(name_string("\\_SB.PCI0"),
              (Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
    EXPECT_EQ(name_string("A.B.C"),
              (Bytes{0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
}

TEST(Aml, RejectsInvalidNames) {
    EXPECT_THROW(name_string(""), base::Error);
    EXPECT_THROW(name_string("TOOLONG"), base::Error);
    EXPECT_THROW(name_string("1ABC"), base::Error);
    EXPECT_THROW(name_string("com1"), base::Error);
    EXPECT_THROW(name_string("\\_SB..X"), base::Error);
}

TEST(Aml, Integers) {
    EXPECT_EQ(integer(0), (Bytes{0x00}));
    EXPECT_EQ(integer(1), (Bytes{0x01}));
    EXPECT_EQ(integer(5), (Bytes{0x0a, 0x05}));
    EXPECT_EQ(integer(0x3f8), (Bytes{0x0b, 0xf8, 0x03}));
    EXPECT_EQ(integer(0xe000'0000), (Bytes{0x0c, 0x00, 0x00, 0x00, 0xe0}));
    EXPECT_EQ(integer(0x1'0000'0000), (Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(Aml, EisaIdMatchesIasl) {
    // iasl encodes EisaId ("PNP0501") as DWordConst 0x0105D041.
    EXPECT_EQ(eisa_id("PNP0501"), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
    EXPECT_EQ(eisa_id("PNP0A08"), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x08}));
    EXPECT_THROW(eisa_id("pnp0501"), base::Error);
    EXPECT_THROW(eisa_id("PNP05"), base::Error);
    EXPECT_THROW(eisa_id("PNP050G"), base::Error);
}

TEST(Aml, Strings) {
    EXPECT_EQ(string("ab"), (Bytes{0x0d, 'a', 'b', 0}));
}

TEST(Aml, NamedPackage) {
    const Bytes elements[] = {integer(5), integer(0)};
    EXPECT_EQ(name("_S5", package(elements)),
              (Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}));
}

TEST(Aml, Com1ResourceTemplate) {
    const Bytes descriptors[] = {io_port_descriptor(0x3f8, 0x3f8, 0, 8),
                                 irq_no_flags_descriptor(4)};
    // What iasl produces for ResourceTemplate () { IO (Decode16, 0x3F8,
    // 0x3F8, 0x00, 0x08) IRQNoFlags () {4} }.
    EXPECT_EQ(resource_template(descriptors),
              (Bytes{0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, 0x22,
                     0x10, 0x00, 0x79, 0x00}));
    EXPECT_THROW(irq_no_flags_descriptor(16), base::Error);
}

TEST(Aml, Memory32FixedMatchesIasl) {
    // iasl: Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000).
    EXPECT_EQ(memory32_fixed_descriptor(0xe000'0000, 0x1000'0000),
              (Bytes{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x10}));
}

TEST(Aml, ScopeAndDevice) {
    const Bytes inner[] = {name("_UID", integer(1))};
    const Bytes dev = device("COM1", inner);
    EXPECT_EQ(dev, (Bytes{0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x01}));
    const Bytes outer[] = {dev};
    const Bytes sb = scope("\\_SB", outer);
    EXPECT_EQ(sb[0], 0x10);
    EXPECT_EQ(sb[1], 1 + 5 + dev.size());
    EXPECT_EQ(sb.size(), 2 + 5 + dev.size());
}

TEST(Aml, LongBodiesUseMultiBytePkgLength) {
    std::vector<Bytes> terms;
    for (int i = 0; i < 20; ++i) terms.push_back(name("_UID", integer(1)));  // 6 bytes each
    const Bytes sb = scope("\\_SB", terms);
    // Body: 5 name bytes + 120 term bytes = 125; encoded length 127 = 0x7f.
    EXPECT_EQ(sb[1], 0x4f);
    EXPECT_EQ(sb[2], 0x07);
    EXPECT_EQ(sb.size(), 1 + 2 + 125u);
}

}  // namespace
}  // namespace vmm::acpi::aml
