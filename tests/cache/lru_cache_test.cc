#include "cache/lru_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy {
namespace {

TEST(LruCacheTest, GetPutAndTtl) {
  LruCache<std::string> c(10);
  c.Put("a", "1", 100, 0);
  ASSERT_NE(c.Get("a", 50), nullptr);
  EXPECT_EQ(*c.Get("a", 99), "1");
  EXPECT_EQ(c.Get("a", 100), nullptr);  // expired exactly at the TTL
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats().expirations, 1u);
  c.Put("b", "x", 0, 0);  // a zero TTL stores nothing
  EXPECT_EQ(c.Get("b", 0), nullptr);
}

TEST(LruCacheTest, ACapacityOfZeroStoresNothing) {
  LruCache<int> c(0);
  c.Put("a", 1, 1000, 0);
  EXPECT_EQ(c.Get("a", 1), nullptr);
  EXPECT_EQ(c.size(), 0u);
}

TEST(LruCacheTest, ReplaceKeepsOneEntry) {
  LruCache<int> c(10);
  c.Put("k", 1, 1000, 0);
  c.Put("k", 2, 1000, 0);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(*c.Get("k", 1), 2);
}

TEST(LruCacheTest, EvictsTheLeastRecentlyUsed) {
  LruCache<int> c(3);
  c.Put("a", 1, 1000, 0);
  c.Put("b", 2, 1000, 0);
  c.Put("c", 3, 1000, 0);
  ASSERT_NE(c.Get("a", 1), nullptr);  // a is now the most recent
  c.Put("d", 4, 1000, 1);             // evicts b
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.Get("b", 2), nullptr);
  EXPECT_NE(c.Get("a", 2), nullptr);
  EXPECT_NE(c.Get("c", 2), nullptr);
  EXPECT_NE(c.Get("d", 2), nullptr);
  EXPECT_EQ(c.stats().evictions, 1u);
}

TEST(LruCacheTest, EraseAndClear) {
  LruCache<int> c(3);
  c.Put("a", 1, 1000, 0);
  EXPECT_TRUE(c.Erase("a"));
  EXPECT_FALSE(c.Erase("a"));
  c.Put("b", 1, 1000, 0);
  c.Clear();
  EXPECT_EQ(c.size(), 0u);
  c.Put("c", 1, 1000, 0);
  EXPECT_EQ(*c.Get("c", 1), 1);
}

TEST(LruCacheTest, EraseIfDropsMatchingValuesAndKeepsTheOrderOfTheRest) {
  LruCache<int> c(3);
  c.Put("a", 1, 1000, 0);
  c.Put("b", 2, 1000, 0);
  c.Put("c", 1, 1000, 0);
  EXPECT_EQ(c.EraseIf([](int v) { return v == 1; }), 2u);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.Get("a", 1), nullptr);
  EXPECT_EQ(*c.Get("b", 1), 2);
  // The survivors are still in the LRU list: filling past the capacity evicts "b" first.
  c.Put("d", 4, 1000, 0);
  c.Put("e", 5, 1000, 0);
  c.Put("f", 6, 1000, 0);
  EXPECT_EQ(c.Get("b", 1), nullptr);
  EXPECT_EQ(c.size(), 3u);
}

}  // namespace
}  // namespace ringproxy
