#pragma once
// Eigen views of one attention head inside the fused (B·T, stride) buffers, so the CPU attention
// kernels run GEMMs on strided heads without copying them out.
#include <cstdint>

#include <Eigen/Dense>

namespace slm::attention {

namespace cpu_views {
template <class T>
using Rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// One head of a (B·T, stride) buffer: a (T × head_dim) matrix with row stride `stride`.
template <class T>
using Head = Eigen::Map<Rows<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstHead = Eigen::Map<const Rows<T>, 0, Eigen::OuterStride<>>;

template <class T>
ConstHead<T> head(const T* base, int64_t rows, int64_t cols, int64_t stride) {
    return ConstHead<T>(base, rows, cols, Eigen::OuterStride<>(stride));
}
template <class T>
Head<T> head(T* base, int64_t rows, int64_t cols, int64_t stride) {
    return Head<T>(base, rows, cols, Eigen::OuterStride<>(stride));
}
}  // namespace cpu_views

}  // namespace slm::attention
