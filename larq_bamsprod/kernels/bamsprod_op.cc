// One BAMSProd step for one resource variable, as one CPU kernel.
//
// The reference is larq_bamsprod.update_rule.bamsprod_update; this kernel computes the same
// elementwise expressions in the same order, so that with bound_mode 0 or 1 it matches the
// reference up to TensorFlow's own vectorised sqrt/div rounding, and with bound_mode 2 up
// to the order in which mean(v_hat) is summed.
//
//   g     = clip(g, -L, L) if g is finite     (L: largest T whose square is finite)
//   m     = m + (g - m) * one_minus_beta_1
//   v     = v + (g*g - v) * one_minus_beta_2
//   v_hat = max(v_hat, v)
//   v_til = clip(v_hat, c * lower_scale, c * upper_scale)  (bound_mode 1: c = target,
//                                                            bound_mode 2: c = mean(v_hat),
//                                                            bound_mode 0: no clip)
//   w     = w - step_size * m / (sqrt(v_til) + epsilon)   (0 where the divisor is 0, which
//                                                           only epsilon == 0 allows)
//
// The complements 1 - beta are inputs, computed once per step in at least float32 by
// larq_bamsprod.update_rule.step_scalars, as every other path takes them.
//
// Memory traffic per element (T = 4 bytes): bound_mode 0/1 make one pass that reads g, w,
// m, v, v_hat and writes w, m, v, v_hat (36 bytes). bound_mode 2 needs mean(v_hat) of the
// *new* v_hat before any clip, so it makes two passes: the first updates m, v, v_hat and
// sums v_hat (28 bytes), the second reads m, v_hat, w and writes w (16 bytes).
//
// Work is split in fixed blocks of kBlock elements, run on the op's intra-op thread pool
// when the variable is large (kMinParallelBlocks); the mean is a sum of per-block partial
// sums taken in block order, so it does not depend on the number of threads.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/kernels/training_op_helpers.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace larq_bamsprod {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;
using CPUDevice = Eigen::ThreadPoolDevice;
using Index = std::int64_t;

constexpr Index kBlock = 4096;
#ifndef LARQ_MIN_PARALLEL_BLOCKS
#define LARQ_MIN_PARALLEL_BLOCKS 256
#endif
// Below this many blocks (1M elements), a variable is updated on the calling thread. The
// update is bound by memory bandwidth, and TensorFlow already runs the updates of different
// variables on different threads; on 2 cores, splitting variables of 64K-1M elements over
// the pool was measured 10-25% slower than not (docs/PERFORMANCE.md).
constexpr Index kMinParallelBlocks = LARQ_MIN_PARALLEL_BLOCKS;

REGISTER_OP("LarqBamsprodResourceApply")
    .Input("var: resource")
    .Input("m: resource")
    .Input("v: resource")
    .Input("v_hat: resource")
    .Input("grad: T")
    .Input("one_minus_beta_1: T")
    .Input("one_minus_beta_2: T")
    .Input("epsilon: T")
    .Input("step_size: T")
    .Input("lower_scale: T")
    .Input("upper_scale: T")
    .Input("target: T")
    .Attr("T: {float, double}")
    .Attr("bound_mode: int = 2")
    .Attr("use_locking: bool = false")
    .SetShapeFn(::tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
One BAMSProd step on `var` and its slots `m`, `v`, `v_hat` (larq_bamsprod).

bound_mode: 0 = no projection, 1 = clip to target * [lower_scale, upper_scale],
  2 = clip to mean(new v_hat) * [lower_scale, upper_scale]. `target` is ignored unless 1.
)doc");

template <typename T>
struct Coefficients {
  T one_minus_beta_1;
  T one_minus_beta_2;
  T epsilon;
  T step_size;
  T limit;  // SquareLimit<T>()
};

// The largest T whose exact square is at most the largest finite T, found as
// larq_bamsprod.update_rule.square_limit finds it (so both give the same value).
template <typename T>
T SquareLimit() {
  const double max = static_cast<double>(std::numeric_limits<T>::max());
  T x = std::sqrt(std::numeric_limits<T>::max());
  for (;;) {
    const double xd = static_cast<double>(x);
    if (std::isfinite(xd * xd) && xd * xd <= max) return x;
    x = std::nextafter(x, T(0));
  }
}

// clip(g, -limit, limit) for finite g; NaN and +-Inf pass through unchanged.
template <typename T>
inline T Saturate(T g, T limit) {
  const T max = std::numeric_limits<T>::max();
  if (g > limit && g <= max) return limit;
  if (g < -limit && g >= -max) return -limit;
  return g;
}

// NaN-propagating max/min in the argument order of tf.maximum(a, b)/tf.minimum(a, b): a NaN
// in `b` wins; `a` is NaN only after `b` was (v_hat = max(v_hat, v) sees v NaN first).
template <typename T>
inline T MaxNan(T a, T b) {
  return a >= b ? a : b;
}
template <typename T>
inline T MinNan(T a, T b) {
  return a <= b ? a : b;
}

// x / y as the reference's tf.math.divide_no_nan computes it for y = sqrt(v_til) + epsilon.
// With epsilon > 0, y >= epsilon > 0 (or NaN), so divide_no_nan is the plain quotient; with
// epsilon == 0 (NoNan = true), y is 0 where no gradient was seen, and the step there is 0.
// Which one applies is decided once per call (Compute), not per element: a branch in the
// loop stops GCC from vectorising it (-fopt-info-vec: "control flow in loop"), and the
// select below divides by 1, never by 0, so that the compiler may compute it on every lane.
template <typename T, bool NoNan>
inline T Divide(T x, T y) {
  if (!NoNan) return x / y;
  const bool zero = y == T(0);
  const T quotient = x / (zero ? T(1) : y);
  return zero ? T(0) : quotient;
}

// Moments of one block; returns nothing. Shared by every mode's first pass.
template <typename T>
inline void UpdateMoments(const T* __restrict g, T* __restrict m, T* __restrict v,
                          T* __restrict vh, Index n, const Coefficients<T>& c) {
  for (Index i = 0; i < n; ++i) {
    const T gi = Saturate(g[i], c.limit);
    const T mi = m[i] + (gi - m[i]) * c.one_minus_beta_1;
    const T vi = v[i] + (gi * gi - v[i]) * c.one_minus_beta_2;
    m[i] = mi;
    v[i] = vi;
    vh[i] = MaxNan(vh[i], vi);
  }
}

// Single pass for bound_mode 0 (Clip = false) and 1 (Clip = true).
template <typename T, bool Clip, bool NoNan>
inline void FusedBlock(const T* __restrict g, T* __restrict w, T* __restrict m,
                       T* __restrict v, T* __restrict vh, Index n, const Coefficients<T>& c,
                       T lower, T upper) {
  for (Index i = 0; i < n; ++i) {
    const T gi = Saturate(g[i], c.limit);
    const T mi = m[i] + (gi - m[i]) * c.one_minus_beta_1;
    const T vi = v[i] + (gi * gi - v[i]) * c.one_minus_beta_2;
    const T vhi = MaxNan(vh[i], vi);
    m[i] = mi;
    v[i] = vi;
    vh[i] = vhi;
    T vt = vhi;
    if (Clip) vt = MinNan(MaxNan(vhi, lower), upper);
    w[i] = w[i] - Divide<T, NoNan>(c.step_size * mi, std::sqrt(vt) + c.epsilon);
  }
}

// Second pass of bound_mode 2.
template <typename T, bool NoNan>
inline void ApplyBlock(const T* __restrict m, const T* __restrict vh, T* __restrict w, Index n,
                       const Coefficients<T>& c, T lower, T upper) {
  for (Index i = 0; i < n; ++i) {
    const T vt = MinNan(MaxNan(vh[i], lower), upper);
    w[i] = w[i] - Divide<T, NoNan>(c.step_size * m[i], std::sqrt(vt) + c.epsilon);
  }
}

// Sum of one block in double, with independent lanes so that it vectorises.
template <typename T>
inline double SumBlock(const T* __restrict x, Index n) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  Index i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += static_cast<double>(x[i + j]);
  }
  double sum = 0;
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

// fn(std::true_type{}) or fn(std::false_type{}): a flag known once per call becomes a
// template argument of the per-element loops, which then hold no branch on it.
template <typename Fn>
void WithFlag(bool flag, Fn&& fn) {
  if (flag) {
    fn(std::true_type{});
  } else {
    fn(std::false_type{});
  }
}

template <typename T>
Eigen::TensorOpCost BlockCost(double loaded, double stored, double cycles) {
  const double bytes = static_cast<double>(kBlock * sizeof(T));
  return Eigen::TensorOpCost(loaded * bytes, stored * bytes, cycles * kBlock);
}

// Runs fn(first_block, last_block) over [0, blocks), on the intra-op pool if large enough.
template <typename T, typename Fn>
void ForBlocks(const CPUDevice& d, Index blocks, const Eigen::TensorOpCost& cost, Fn&& fn) {
  if (blocks < kMinParallelBlocks) {
    fn(Index(0), blocks);
    return;
  }
  d.parallelFor(blocks, cost, std::forward<Fn>(fn));
}

template <typename T>
class BamsprodApplyOp : public OpKernel {
 public:
  explicit BamsprodApplyOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("bound_mode", &bound_mode_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("use_locking", &use_exclusive_lock_));
    OP_REQUIRES(ctx, bound_mode_ >= 0 && bound_mode_ <= 2,
                ::tensorflow::errors::InvalidArgument("bound_mode must be 0, 1 or 2, got ",
                                                      bound_mode_));
  }

  void Compute(OpKernelContext* ctx) override {
    const std::vector<int> inputs = {0, 1, 2, 3};
    auto locks = ::tensorflow::MaybeLockVariableInputMutexesInOrder<CPUDevice, T>(
        ctx, use_exclusive_lock_, /*sparse=*/false, inputs);
    Tensor tensors[4];
    for (int i = 0; i < 4; ++i) {
      OP_REQUIRES_OK(ctx, ::tensorflow::GetInputTensorFromVariable<CPUDevice, T>(
                              ctx, i, use_exclusive_lock_, /*sparse=*/false, &tensors[i]));
      OP_REQUIRES(ctx, tensors[i].IsInitialized(),
                  ::tensorflow::errors::FailedPrecondition(
                      "Attempting to use uninitialized variable or slot: ",
                      requested_input(i)));
    }
    const Tensor& grad = ctx->input(4);
    for (int i = 0; i < 4; ++i) {
      OP_REQUIRES(ctx, tensors[i].shape().IsSameSize(grad.shape()),
                  ::tensorflow::errors::InvalidArgument(
                      "var, m, v, v_hat and grad must have the same shape; input ", i,
                      " has shape ", tensors[i].shape().DebugString(), ", grad has ",
                      grad.shape().DebugString()));
    }
    T scalar[7];
    for (int i = 0; i < 7; ++i) {
      const Tensor& s = ctx->input(5 + i);
      OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(s.shape()),
                  ::tensorflow::errors::InvalidArgument(
                      requested_input(5 + i), " must be a scalar, got shape ",
                      s.shape().DebugString()));
      scalar[i] = s.scalar<T>()();
    }
    const T lower_scale = scalar[4], upper_scale = scalar[5], target = scalar[6];
    static const T limit = SquareLimit<T>();
    const Coefficients<T> c{scalar[0], scalar[1], scalar[2], scalar[3], limit};

    const Index n = grad.NumElements();
    if (n == 0) return;
    const T* g = grad.flat<T>().data();
    T* w = tensors[0].flat<T>().data();
    T* m = tensors[1].flat<T>().data();
    T* v = tensors[2].flat<T>().data();
    T* vh = tensors[3].flat<T>().data();
    const Index blocks = (n + kBlock - 1) / kBlock;
    const CPUDevice& d = ctx->eigen_device<CPUDevice>();
    const bool no_nan = c.epsilon == T(0);

    if (bound_mode_ != 2) {
      const bool clip = bound_mode_ == 1;
      const T lower = clip ? target * lower_scale : T(0);
      const T upper = clip ? target * upper_scale : T(0);
      WithFlag(clip, [&](auto clip_flag) {
        WithFlag(no_nan, [&](auto no_nan_flag) {
          constexpr bool kClip = decltype(clip_flag)::value;
          constexpr bool kNoNan = decltype(no_nan_flag)::value;
          ForBlocks<T>(d, blocks, BlockCost<T>(5, 4, 16), [&](Index first, Index last) {
            for (Index b = first; b < last; ++b) {
              const Index lo = b * kBlock, len = std::min(kBlock, n - lo);
              FusedBlock<T, kClip, kNoNan>(g + lo, w + lo, m + lo, v + lo, vh + lo, len, c,
                                           lower, upper);
            }
          });
        });
      });
      return;
    }

    std::vector<double> partial(blocks);
    ForBlocks<T>(d, blocks, BlockCost<T>(4, 3, 10), [&](Index first, Index last) {
      for (Index b = first; b < last; ++b) {
        const Index lo = b * kBlock, len = std::min(kBlock, n - lo);
        UpdateMoments<T>(g + lo, m + lo, v + lo, vh + lo, len, c);
        partial[b] = SumBlock<T>(vh + lo, len);
      }
    });
    double sum = 0;
    for (Index b = 0; b < blocks; ++b) sum += partial[b];
    double mean_d = sum / static_cast<double>(n);
    if (std::isinf(sum)) {
      // Only T = double can get here with finite elements: scale by the largest first,
      // as update_rule._mean_without_overflow does.
      double largest = 0;
      for (Index i = 0; i < n; ++i) largest = std::max(largest, static_cast<double>(vh[i]));
      if (std::isfinite(largest)) {
        double scaled = 0;
        for (Index i = 0; i < n; ++i) scaled += static_cast<double>(vh[i]) / largest;
        mean_d = scaled / static_cast<double>(n) * largest;
      }
    }
    const T mean = static_cast<T>(mean_d);
    const T lower = mean * lower_scale;
    const T upper = mean * upper_scale;
    // Forward again: walking the blocks backwards, to reuse what is still in cache, was
    // measured no faster (benchmarks/update_step.py, docs/PERFORMANCE.md).
    WithFlag(no_nan, [&](auto no_nan_flag) {
      constexpr bool kNoNan = decltype(no_nan_flag)::value;
      ForBlocks<T>(d, blocks, BlockCost<T>(3, 1, 8), [&](Index first, Index last) {
        for (Index b = first; b < last; ++b) {
          const Index lo = b * kBlock, len = std::min(kBlock, n - lo);
          ApplyBlock<T, kNoNan>(m + lo, vh + lo, w + lo, len, c, lower, upper);
        }
      });
    });
  }

 private:
  int bound_mode_;
  bool use_exclusive_lock_;
};

#define REGISTER_CPU(T)                                                           \
  REGISTER_KERNEL_BUILDER(                                                        \
      Name("LarqBamsprodResourceApply").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      BamsprodApplyOp<T>);

REGISTER_CPU(float);
REGISTER_CPU(double);

#undef REGISTER_CPU

}  // namespace larq_bamsprod
