#pragma once
// Token embedding on the CPU: a row gather forward, a deterministic scatter-add backward.
#include <cstdint>
#include <cstring>
#include <string>

#include "slm/core/error.hpp"

namespace slm::cpu {

// tokens: (n), table: (vocab, d), out: (n, d)
template <class T>
void embedding_forward(const int32_t* tokens, const T* table, T* out, int64_t n, int64_t d,
                       int64_t vocab) {
    for (int64_t i = 0; i < n; ++i) {
        const int32_t t = tokens[i];
        require(t >= 0 && t < vocab, "token id " + std::to_string(t) + " at position " +
                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                         std::to_string(vocab) + "): data and model disagree");
        std::memcpy(out + i * d, table + static_cast<int64_t>(t) * d, sizeof(T) * d);
    }
}

// dout: (n, d) → d_table: (vocab, d) accumulated, rows added in token order (deterministic)
template <class T>
void embedding_backward(const int32_t* tokens, const T* dout, T* d_table, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; ++i) {
        T* row = d_table + static_cast<int64_t>(tokens[i]) * d;
        for (int64_t j = 0; j < d; ++j) row[j] += dout[i * d + j];
    }
}

}  // namespace slm::cpu
