// Fused CPU kernels of the AViT's inference path (float32, channels-last), built on first use
// by physviz.model.cpu_kernels. Each one replaces a chain of small eager ops (one memory pass
// and one dispatch each) by a single pass; the maths is that of the eager code it replaces.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

using at::Tensor;

namespace {

void check_float(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat, name, " must be a float32 CPU tensor");
}

// mean and sum of squared deviations over P of one (P, C) block, two passes (as accurate as torch's two-pass)
inline void block_moments(const float* x, int64_t P, int64_t C, float* mean, float* m2) {
  for (int64_t c = 0; c < C; ++c) mean[c] = 0.f;
  for (int64_t p = 0; p < P; ++p) {
    const float* row = x + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) mean[c] += row[c];
  }
  const float inv = 1.f / static_cast<float>(P);
  for (int64_t c = 0; c < C; ++c) {
    mean[c] *= inv;
    m2[c] = 0.f;
  }
  for (int64_t p = 0; p < P; ++p) {
    const float* row = x + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float d = row[c] - mean[c];
      m2[c] += d * d;
    }
  }
}

}  // namespace

// x (N, P, C) contiguous -> [mean (N, C), sum over P of (x - mean)^2 (N, C)]
std::vector<Tensor> channel_moments(const Tensor& x) {
  check_float(x, "x");
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "x must be a contiguous (N, P, C) tensor");
  const int64_t N = x.size(0), P = x.size(1), C = x.size(2);
  Tensor mean = at::empty({N, C}, x.options()), m2 = at::empty({N, C}, x.options());
  const float* px = x.data_ptr<float>();
  float* pm = mean.data_ptr<float>();
  float* ps = m2.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) block_moments(px + n * P * C, P, C, pm + n * C, ps + n * C);
  });
  return {mean, m2};
}

// x (N, P, C) contiguous -> (x - mean) / sqrt(var + eps), statistics over P (biased variance)
Tensor instance_standardize(const Tensor& x, double eps) {
  check_float(x, "x");
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "x must be a contiguous (N, P, C) tensor");
  const int64_t N = x.size(0), P = x.size(1), C = x.size(2);
  Tensor out = at::empty_like(x);
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
    std::vector<float> mean(C), scale(C);
    for (int64_t n = b; n < e; ++n) {
      const float* xn = px + n * P * C;
      float* on = po + n * P * C;
      block_moments(xn, P, C, mean.data(), scale.data());
      for (int64_t c = 0; c < C; ++c) scale[c] = 1.f / std::sqrt(scale[c] / static_cast<float>(P) + static_cast<float>(eps));
      for (int64_t p = 0; p < P; ++p) {
        const float* row = xn + p * C;
        float* orow = on + p * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) orow[c] = (row[c] - mean[c]) * scale[c];
      }
    }
  });
  return out;
}

// In place on a fused QKV product y (M, H*3*hd) laid out per token [h0: q k v | h1: q k v | ...]:
// adds the bias, then q <- q / sqrt(|q|^2 + cq^2) * gq + sq and k <- k / sqrt(|k|^2 + ck^2)
// (gq, sq of length hd). The rows of q and k are centred per head by their weights, so that is
// their LayerNorm up to the sqrt(hd) factors folded into gq, sq.
void qkv_epilogue_(Tensor& y, const Tensor& bias, const Tensor& gq, const Tensor& sq, double cq, double ck,
                   int64_t heads) {
  check_float(y, "y");
  TORCH_CHECK(y.dim() == 2 && y.is_contiguous(), "y must be a contiguous (M, 3*H*hd) tensor");
  const int64_t M = y.size(0), W = y.size(1), hd = W / (3 * heads);
  TORCH_CHECK(hd * 3 * heads == W && bias.numel() == W && gq.numel() == hd && sq.numel() == hd,
              "qkv_epilogue_: bias must have 3*H*hd entries and the affine hd");
  Tensor b = bias.contiguous(), g = gq.contiguous(), s = sq.contiguous();
  float* py = y.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  const float* pg = g.data_ptr<float>();
  const float* ps = s.data_ptr<float>();
  const float cq2 = static_cast<float>(cq * cq), ck2 = static_cast<float>(ck * ck);
  at::parallel_for(0, M, 16, [&](int64_t beg, int64_t end) {
    for (int64_t m = beg; m < end; ++m) {
      float* row = py + m * W;
      for (int64_t h = 0; h < heads; ++h) {
        float* q = row + h * 3 * hd;
        float* k = q + hd;
        float* v = k + hd;
        const float* bq = pb + h * 3 * hd;
        const float* bk = bq + hd;
        const float* bv = bk + hd;
        float ssq = 0.f, ssk = 0.f;
#pragma omp simd reduction(+ : ssq, ssk)
        for (int64_t i = 0; i < hd; ++i) {
          q[i] += bq[i];
          k[i] += bk[i];
          v[i] += bv[i];
          ssq += q[i] * q[i];
          ssk += k[i] * k[i];
        }
        const float rq = 1.f / std::sqrt(ssq + cq2), rk = 1.f / std::sqrt(ssk + ck2);
#pragma omp simd
        for (int64_t i = 0; i < hd; ++i) {
          q[i] = q[i] * rq * pg[i] + ps[i];
          k[i] *= rk;
        }
      }
    }
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("channel_moments", &channel_moments, "mean and centred sum of squares over P of (N, P, C)");
  m.def("instance_standardize", &instance_standardize, "(x - mean) / sqrt(var + eps) over P of (N, P, C)");
  m.def("qkv_epilogue_", &qkv_epilogue_, "bias and q/k RMS scaling of a fused QKV product, in place");
}
