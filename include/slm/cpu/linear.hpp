#pragma once
// Linear layer y = x · Wᵀ on the CPU (Eigen GEMM). W is (out, in) as in PyTorch, so exported
// weights need no transpose. Parameter gradients accumulate (+=) so micro-batches add up;
// activation gradients overwrite.
#include <cstdint>

#include <Eigen/Dense>

namespace slm::cpu {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixView = Eigen::Map<RowMatrix<T>>;
template <class T>
using ConstMatrixView = Eigen::Map<const RowMatrix<T>>;

// x: (n, in), w: (out, in), y: (n, out)
template <class T>
void linear_forward(const T* x, const T* w, T* y, int64_t n, int64_t in, int64_t out) {
    MatrixView<T>(y, n, out).noalias() =
        ConstMatrixView<T>(x, n, in) * ConstMatrixView<T>(w, out, in).transpose();
}

// dy: (n, out) → dx: (n, in) overwritten, dw: (out, in) accumulated; each skipped when null, and
// then what only it reads (w for dx, x for dw) may be null too.
template <class T>
void linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t n, int64_t in,
                     int64_t out) {
    ConstMatrixView<T> dy_m(dy, n, out);
    if (dx) MatrixView<T>(dx, n, in).noalias() = dy_m * ConstMatrixView<T>(w, out, in);
    if (dw) MatrixView<T>(dw, out, in).noalias() += dy_m.transpose() * ConstMatrixView<T>(x, n, in);
}

}  // namespace slm::cpu
