// SPDX-License-Identifier: MIT
#include "offload.h"

#include <cstring>

namespace kniv {

namespace {

constexpr size_t kEthHlen = 14;
constexpr uint16_t kEthIp = 0x0800, kEthIp6 = 0x86dd, kEthVlan = 0x8100;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;

uint32_t Sum16(const uint8_t* p, size_t len, uint32_t s) {
  for (size_t i = 0; i + 1 < len; i += 2) s += (p[i] << 8) | p[i + 1];
  if (len & 1) s += p[len - 1] << 8;
  return s;
}

uint16_t Fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint32_t Get32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

// Where the headers of a TCP over IPv4/IPv6 frame are, from its first len bytes.
struct TcpLayout {
  size_t l3, l4, hdrs;  // IP header, TCP header, payload offsets
  bool v4;
};

bool ParseTcp(const uint8_t* f, size_t len, TcpLayout* t) {
  t->l3 = kEthHlen;
  if (len < t->l3 + 2) return false;
  uint16_t type = Get16(f + 12);
  if (type == kEthVlan) {
    if (len < t->l3 + 6) return false;
    type = Get16(f + 16);
    t->l3 += 4;
  }
  const size_t l3 = t->l3;
  t->v4 = type == kEthIp;
  if (t->v4) {
    if (len < l3 + 20 || (f[l3] >> 4) != 4 || f[l3 + 9] != kTcp) return false;
    if ((f[l3] & 0x0f) < 5) return false;
    t->l4 = l3 + (f[l3] & 0x0f) * 4u;
  } else if (type == kEthIp6) {
    // Extension headers are not handled here: the frame is refused instead.
    if (len < l3 + 40 || (f[l3] >> 4) != 6 || f[l3 + 6] != kTcp) return false;
    t->l4 = l3 + 40;
  } else {
    return false;
  }
  if (len < t->l4 + 20 || (f[t->l4 + 12] >> 4) < 5) return false;
  t->hdrs = t->l4 + (f[t->l4 + 12] >> 4) * 4u;
  return len >= t->hdrs;
}

}  // namespace

bool SeedTcpChecksum(uint8_t* f, size_t head_len, size_t len, uint16_t* start, uint16_t* off) {
  TcpLayout t;
  if (head_len > len || !ParseTcp(f, head_len, &t) || len - t.l4 > 0xffff) return false;
  const size_t l4len = len - t.l4;
  uint32_t pseudo = t.v4 ? Sum16(f + t.l3 + 12, 8, 0) : Sum16(f + t.l3 + 8, 32, 0);
  pseudo += kTcp + static_cast<uint32_t>(l4len);
  Put16(f + t.l4 + 16, Fold(pseudo));
  *start = static_cast<uint16_t>(t.l4);
  *off = 16;
  return true;
}

bool CompleteChecksum(uint8_t* frame, size_t len, size_t start, size_t off) {
  if (start > len || off > len - start || len - start - off < 2) return false;
  uint16_t sum = static_cast<uint16_t>(~Fold(Sum16(frame + start, len - start, 0)));
  // A UDP checksum of 0 means "none"; 0xffff is the same sum.
  Put16(frame + start + off, sum ? sum : 0xffff);
  return true;
}

bool SegmentTcp(const uint8_t* f, size_t len, uint16_t mss, std::vector<uint8_t>* out,
                std::vector<Segment>* segs) {
  TcpLayout t;
  if (mss == 0 || !ParseTcp(f, len, &t) || len <= t.hdrs) return false;
  const size_t l3 = t.l3, l4 = t.l4, hdrs = t.hdrs;
  const bool v4 = t.v4;

  const size_t payload = len - hdrs;
  const uint32_t seq0 = Get32(f + l4 + 4);
  const uint16_t id0 = v4 ? Get16(f + l3 + 4) : 0;
  const uint8_t flags0 = f[l4 + 13];
  for (size_t done = 0, i = 0; done < payload; done += mss, i++) {
    const size_t chunk = payload - done < mss ? payload - done : mss;
    const bool last = done + chunk == payload;
    const size_t at = out->size();
    out->resize(at + hdrs + chunk);
    uint8_t* s = out->data() + at;
    std::memcpy(s, f, hdrs);
    std::memcpy(s + hdrs, f + hdrs + done, chunk);

    const uint16_t l4len = static_cast<uint16_t>(hdrs - l4 + chunk);
    uint32_t pseudo;
    if (v4) {
      Put16(s + l3 + 2, static_cast<uint16_t>(l4 - l3 + l4len));
      Put16(s + l3 + 4, static_cast<uint16_t>(id0 + i));
      Put16(s + l3 + 10, 0);
      Put16(s + l3 + 10, static_cast<uint16_t>(~Fold(Sum16(s + l3, l4 - l3, 0))));
      pseudo = Sum16(s + l3 + 12, 8, 0);
    } else {
      Put16(s + l3 + 4, l4len);
      pseudo = Sum16(s + l3 + 8, 32, 0);
    }
    Put32(s + l4 + 4, seq0 + static_cast<uint32_t>(done));
    uint8_t fl = flags0;
    if (!last) fl &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
    if (i > 0) fl &= static_cast<uint8_t>(~kTcpCwr);
    s[l4 + 13] = fl;
    Put16(s + l4 + 16, 0);
    pseudo += kTcp + l4len;
    Put16(s + l4 + 16, static_cast<uint16_t>(~Fold(Sum16(s + l4, l4len, pseudo))));
    segs->push_back({at, hdrs + chunk});
  }
  return true;
}

}  // namespace kniv
