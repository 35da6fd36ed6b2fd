// The cache reader (include/locality/caches.hpp) on sysfs folders written
// here: a whole one, a missing one, an empty one, a bad size; and the sizes
// the blocking rules read, refused where a cache is missing.
#include "locality/caches.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace locality {
namespace {

namespace fs = std::filesystem;

class SysfsCaches : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("locality_caches_" + std::string(
                                     ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void entry(int index, const std::string& level, const std::string& type, const std::string& size,
             const std::string& ways = "8", const std::string& line = "64") {
    const fs::path dir = root_ / ("index" + std::to_string(index));
    fs::create_directories(dir);
    for (const auto& [name, value] :
         {std::pair{"level", level}, {"type", type}, {"size", size},
          {"ways_of_associativity", ways}, {"coherency_line_size", line}}) {
      std::ofstream(dir / name) << value << "\n";
    }
  }
  fs::path root_;
};

TEST_F(SysfsCaches, ReadsEveryEntryWithItsUnit) {
  entry(0, "1", "Data", "48K", "12");
  entry(1, "1", "Instruction", "32K");
  entry(2, "2", "Unified", "2048K", "16");
  entry(3, "3", "Unified", "105M", "15");
  const auto caches = sysfs_caches(root_.string());
  ASSERT_EQ(caches.size(), 4u);
  EXPECT_EQ(caches[0].type, "Data");
  EXPECT_EQ(caches[0].size_bytes, 48 << 10);
  EXPECT_EQ(caches[0].ways, 12);
  EXPECT_EQ(caches[3].level, 3);
  EXPECT_EQ(caches[3].size_bytes, 105LL << 20);
  const CacheSizes sizes = cache_sizes_from(caches);
  EXPECT_EQ(sizes.l1d_bytes, 48 << 10);
  EXPECT_EQ(sizes.l2_bytes, 2 << 20);
}

TEST_F(SysfsCaches, MissingOrEmptyFolderIsAClearError) {
  EXPECT_THROW(sysfs_caches((root_ / "no-such-folder").string()), CacheError);
  try {
    sysfs_caches(root_.string());
    FAIL() << "an empty folder was accepted";
  } catch (const CacheError& e) {
    EXPECT_NE(std::string(e.what()).find("lists no caches"), std::string::npos) << e.what();
  }
}

TEST_F(SysfsCaches, ABadSizeIsRefusedNotGuessed) {
  for (const char* bad : {"", "K", "12Q", "-4K", "99999999999999999999", "9999999999999G"}) {
    fs::remove_all(root_);
    entry(0, "1", "Data", bad);
    EXPECT_THROW(sysfs_caches(root_.string()), CacheError) << "size '" << bad << "'";
  }
}

TEST(CacheSizes, AMissingLevelIsRefused) {
  EXPECT_THROW(cache_sizes_from({{1, "Data", 32 << 10, 8, 64}}), CacheError);
  EXPECT_THROW(cache_sizes_from({{2, "Unified", 1 << 20, 8, 64}}), CacheError);
  EXPECT_THROW(cache_sizes_from({{1, "Data", 0, 8, 64}, {2, "Unified", 1 << 20, 8, 64}}),
               CacheError);
}

TEST(CacheSizes, ThisMachineHasAnL1dAndAnL2) {
  const CacheSizes& sizes = machine_cache_sizes();
  EXPECT_GE(sizes.l1d_bytes, 4 << 10);
  EXPECT_GE(sizes.l2_bytes, sizes.l1d_bytes);
  EXPECT_FALSE(sizes.source.empty());
  // Under the geometry tests (tests/CMakeLists.txt), the folder they wrote.
  if (const char* folder = std::getenv("LOCALITY_CACHE_SYSFS")) {
    EXPECT_EQ(sizes.source, "sysfs (" + std::string(folder) + ")");
  }
}

}  // namespace
}  // namespace locality
